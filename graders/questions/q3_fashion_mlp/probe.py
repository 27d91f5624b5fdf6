# Kernel-side probe for Q3: the trained model's weights and structure, its histories, the
# sampled images, the logits of the student's model with the grader's weights loaded (the
# architecture judged by behaviour), the trained model's logits on the whole test set (read by
# the probe from the raw IDX file, not from the student's dataset objects), and the training
# set-up read from the live objects (the optimizer, the training DataLoader, the model's modules).
#
# The Linear layers are taken in the order forward applies them (forward hooks on a CPU copy,
# on the grader's images), not in the order __init__ created them: a model that creates
# `self.out` first is the same network.
import copy
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # defined by the probe runtime the cell runs first; never imported in the kernel
    import torch

    from graders.kernel.probe_runtime import Array, BadValue, Context, MissingName, as_array
# Annotations naming the runtime's types (or torch's, imported only inside functions) are
# quoted: they stay unevaluated in the kernel.


HISTORY_ALIASES = {
    "train_loss_history": (
        "train_loss_history", "train_losses", "training_losses", "train_loss_list",
        "train_loss_hist", "loss_history", "train_loss", "losses_train", "train_history",
    ),
    "test_loss_history": (
        "test_loss_history", "test_losses", "testing_losses", "test_loss_list",
        "test_loss_hist", "val_losses", "valid_losses", "validation_losses", "test_loss",
        "val_loss", "losses_test", "test_history",
    ),
    "test_accuracy_history": (
        "test_accuracy_history", "test_accuracies", "test_accs", "test_acc_history",
        "accuracy_history", "val_accuracies", "test_accuracy", "test_acc",
    ),
}  # fmt: skip
HISTORY_DICTS = ("history", "histories", "hist", "losses", "log", "logs", "metrics")
INDEX_ALIASES = (
    "random_indices", "random_idx", "random_index", "sample_indices", "sample_idx", "indices",
    "idx", "idxs", "rand_idx", "rand_indices", "samples_idx", "random_samples", "choices",
)  # fmt: skip
PROBABILITY_ALIASES = (
    "sample_probabilities", "sample_probs", "probabilities", "probs", "sample_probas",
    "predicted_probabilities", "class_probabilities",
)  # fmt: skip


def _series(value: Any) -> list[float] | None:
    """A history as floats (a list of numbers or 0-d tensors, or a 1-D array); None if not."""
    if isinstance(value, dict | str | bytes) or not hasattr(value, "__len__"):
        return None
    try:
        out = [float(as_array(v, "history").reshape(-1)[0]) for v in value]
    except Exception:
        return None
    return out


def find_history(
    ns: Mapping[str, Any], canonical: str
) -> tuple[str, list[float]] | tuple[None, None]:
    """(name it was found under, values): the assignment's name, a name real students use,
    or a key of a dict such as ``history = {"train_loss": [...]}``; (None, None) if none."""
    for name in HISTORY_ALIASES[canonical]:
        values = _series(ns.get(name)) if name in ns else None
        if values is not None:
            return name, values
    for holder in HISTORY_DICTS:
        d = ns.get(holder)
        if isinstance(d, dict):
            for key in HISTORY_ALIASES[canonical]:
                values = _series(d.get(key)) if key in d else None
                if values is not None:
                    return f"{holder}[{key!r}]", values
    return None, None


def _index_list(value: Any, longest: int = 64) -> list[int] | None:
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.dtype.kind not in "iu" or array.ndim != 1 or not 1 <= len(array) <= longest:
        return None
    return [int(i) for i in array]


def plotting_cell_names(ns: Mapping[str, Any]) -> list[str]:
    """Identifiers used in the cells that drew images (``imshow``), from IPython's history."""
    cells = [c for c in ns.get("In", []) if isinstance(c, str) and "imshow" in c]
    names = []
    for cell in cells:
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", cell):
            if word not in names:
                names.append(word)
    return names


def find_indices(ns: Mapping[str, Any]) -> tuple[str, list[int]] | tuple[None, None]:
    """(name, indices) of the sampled test images: `random_indices`, a usual other name, or
    an integer sequence the image-plotting cell uses; (None, None) if none."""
    for name in INDEX_ALIASES:
        found = _index_list(ns[name]) if name in ns else None
        if found is not None:
            return name, found
    for name in plotting_cell_names(ns):  # a handful of indices, not a batch's labels
        found = _index_list(ns[name], 16) if name in ns and not name.startswith("_") else None
        if found is not None:
            return name, found
    return None, None


def find_probabilities(
    ns: Mapping[str, Any], count: int | None
) -> "tuple[str, Array] | tuple[None, None]":
    """(name, rows) of the sampled images' class probabilities: rows of 10 numbers, under the
    assignment's name or a usual other one; one holding ``count`` rows wins over the others
    (``probabilities`` is often the last image's row, ``probs`` the list of all of them)."""
    found = []
    for alias in PROBABILITY_ALIASES:
        value: Any = ns.get(alias)  # a student's value: anything
        if not (isinstance(value, list | tuple | np.ndarray) or hasattr(value, "detach")):
            continue
        try:
            rows = [as_array(p, alias).reshape(-1) for p in value]
        except Exception:
            continue
        if rows and all(r.shape == (10,) for r in rows):
            found.append((alias, np.stack(rows)))
    for alias, stacked in found:
        if len(stacked) == count:
            return alias, stacked
    if found:  # the assignment's name first, in PROBABILITY_ALIASES's order
        return found[0]
    value = ns.get("sample_probabilities")  # wrong shape: kept, so the check can say so
    if isinstance(value, list | tuple | np.ndarray):
        rows = [as_array(p, "sample_probabilities").reshape(-1) for p in value]
        if rows and len({r.shape for r in rows}) == 1:
            return "sample_probabilities", np.stack(rows)
    return None, None


def find_model(ctx: "Context") -> "tuple[str, torch.nn.Module]":
    import torch

    value = ctx.ns.get("model")
    if isinstance(value, torch.nn.Module):
        return "model", value
    found = [  # a loss module, or a module without weights (an nn.ReLU()), is not the model
        (k, v)
        for k, v in ctx.ns.items()
        if isinstance(v, torch.nn.Module)
        and not isinstance(v, torch.nn.modules.loss._Loss)
        and any(True for _ in v.parameters())
        and not k.startswith("_")
    ]
    if not found:
        raise MissingName("no torch.nn.Module instance found (expected one named `model`)")
    found.sort(key=lambda kv: -sum(p.numel() for p in kv[1].parameters()))
    return found[0]


def linears(model: "torch.nn.Module") -> "list[tuple[str, torch.nn.Linear]]":
    """The Linear layers in the order they were registered (``named_modules``)."""
    import torch

    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def traced_calls(model: "torch.nn.Module", images: "Array") -> tuple[list[str], str]:
    """The names of the modules a forward pass over ``images`` calls, in the order their calls
    return (a leaf such as a Linear layer: the order forward applies it), one entry per call;
    and the error the pass raised, or ""."""
    import torch

    calls: list[str] = []
    handles = [
        module.register_forward_hook(lambda _m, _i, _o, name=name: calls.append(name))
        for name, module in model.named_modules()
    ]
    try:
        with torch.no_grad():
            model(model_input(model, images))
    except Exception as exc:
        return calls, f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        for handle in handles:
            handle.remove()
    return calls, ""


def model_input(model: "torch.nn.Module", images: "Array") -> "torch.Tensor":
    """The grader's images in the model's own floating dtype: a model trained in float64
    (``.double()``) takes doubles, and float32 ones would fail its first layer."""
    import torch

    x = torch.from_numpy(images)
    for param in model.parameters():
        if param.dtype.is_floating_point:
            return x.to(param.dtype)
    return x


def traced_copy_calls(model: "torch.nn.Module", images: "Array") -> tuple[list[str], str]:
    """``traced_calls`` on a CPU copy in eval mode (the student's model is left as it is)."""
    try:
        clone = cpu_eval_copy(model)
    except Exception as exc:
        return [], f"the model could not be copied ({type(exc).__name__}: {str(exc)[:200]})"
    return traced_calls(clone, images)


def linears_in_use(
    model: "torch.nn.Module", images: "Array"
) -> "tuple[list[tuple[str, torch.nn.Linear]], str, str]":
    """(the Linear layers of ``model`` in the order forward applies them, one entry per
    application; how the order was found: "forward" or "definition"; the forward pass's error
    or ""), traced on a CPU copy. When the pass raises or applies no Linear module
    (``F.linear`` on the weights), the registration order stands in."""
    defined = dict(linears(model))
    calls, error = traced_copy_calls(model, images)
    used = [(name, defined[name]) for name in calls if name in defined]
    if error or not used:
        return list(defined.items()), "definition", error
    return used, "forward", ""


def cpu_eval_copy(model: "torch.nn.Module") -> "torch.nn.Module":
    clone = copy.deepcopy(model).cpu()
    clone.eval()
    return clone


SETUP_FIELDS = ("lr", "initial_lr", "momentum", "dampening", "weight_decay", "nesterov")
"""What the probe reads of each of the optimizer's param_groups (a scheduler adds initial_lr)."""
LOSS_NAMES = ("loss", "criterion", "loss_fn", "loss_function", "lossfn")


def _setting(value: Any) -> "bool | float | str | None":
    """A param_group entry as plain data: a bool, a number (a tensor lr included), or its
    type's name when it is neither."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return float(value)
    except Exception:
        return type(value).__name__


def describe_optimizer(name: str, optimizer: Any, model_params: set[int]) -> dict[str, Any]:
    groups, held, total = [], 0, 0
    for group in list(optimizer.param_groups)[:20]:
        params = list(group.get("params", []))
        entry: dict[str, Any] = {k: _setting(group[k]) for k in SETUP_FIELDS if k in group}
        entry["params"] = len(params)
        groups.append(entry)
        total += len(params)
        held += sum(id(p) in model_params for p in params)
    return {
        "name": name,
        "class": type(optimizer).__name__,
        "module": type(optimizer).__module__,
        "groups": groups,
        "params": total,
        "model_params_held": held,
    }


def find_optimizers(ns: Mapping[str, Any], model_params: set[int]) -> list[dict[str, Any]]:
    """Every torch optimizer in the namespace: `optimizer` first, then the one holding most of
    the model's parameters."""
    import torch

    found = [
        describe_optimizer(k, v, model_params)
        for k, v in ns.items()
        if isinstance(v, torch.optim.Optimizer) and not k.startswith("_")
    ]
    found.sort(key=lambda d: (d["name"] != "optimizer", -d["model_params_held"]))
    return found[:5]


def stepped_optimizers(
    ns: Mapping[str, Any], model_params: set[int]
) -> list[dict[str, Any]] | None:
    """The optimizers that stepped on the model's parameters while the notebook ran (the
    compatibility layer counts every ``step()``), most steps first; None where the kernel kept
    no count."""
    import torch

    steps = ns.get("__dlgrader_steps__")
    if not isinstance(steps, dict):
        return None
    names = {
        id(v): k
        for k, v in ns.items()
        if isinstance(v, torch.optim.Optimizer) and not k.startswith("_")
    }
    found: list[dict[str, Any]] = []
    for entry in list(steps.values())[:10_000]:  # all of them: dummies first hide nothing
        if not isinstance(entry, dict):
            continue
        params = entry.get("params")
        held = sum(p in model_params for p in params[:1000]) if isinstance(params, list) else 0
        if not held:
            continue  # what trained another model is not this model's set-up
        ref = entry.get("ref")
        live = ref() if callable(ref) else None
        count = entry.get("steps")
        found.append(
            {
                "class": str(entry.get("class"))[:100],
                "module": str(entry.get("module"))[:200],
                "steps": count if isinstance(count, int) else 0,
                "model_params_held": held,
                "name": names.get(id(live)) if isinstance(live, torch.optim.Optimizer) else None,
            }
        )
    found.sort(key=lambda d: -d["steps"])
    return found[:5]


def _base_dataset(dataset: Any) -> Any:
    import torch

    for _ in range(10):
        if not isinstance(dataset, torch.utils.data.Subset):
            break
        dataset = dataset.dataset
    return dataset


def _transform_steps(transform: Any, depth: int = 0) -> list[dict[str, Any]]:
    """A torchvision transform as plain steps, a ``Compose`` opened (nested ones too):
    each step's type, and a ``Normalize``'s mean and std as lists of floats."""
    if transform is None or depth > 5:
        return []
    inner = getattr(transform, "transforms", None)
    if isinstance(inner, list | tuple):
        steps: list[dict[str, Any]] = []
        for part in list(inner)[:20]:
            steps += _transform_steps(part, depth + 1)
        return steps[:20]
    step: dict[str, Any] = {"type": type(transform).__name__[:60]}
    if step["type"] == "Normalize":
        try:
            step["mean"] = [float(v) for v in np.asarray(transform.mean, float).reshape(-1)[:4]]
            step["std"] = [float(v) for v in np.asarray(transform.std, float).reshape(-1)[:4]]
        except Exception:
            step["unreadable"] = True
    return [step]


def input_transform(ns: Mapping[str, Any]) -> "dict[str, Any] | None":
    """The transform of the data the model was trained on, as plain steps: the grader applies
    its ``Normalize`` to its own images when it measures the trained weights (a model trained
    on normalized inputs, measured on raw pixels, would seem untrained). The training data
    first (a loader or dataset with ``train=True`` or a name saying train), else any other."""
    import torch

    found = []
    for name, value in list(ns.items())[:5000]:
        if name.startswith("_"):
            continue
        if isinstance(value, torch.utils.data.DataLoader):
            base = _base_dataset(value.dataset)
        elif isinstance(value, torch.utils.data.Dataset):
            base = _base_dataset(value)
        else:
            continue
        train = getattr(base, "train", None) is True
        found.append((not train, "train" not in name.lower(), name, base))
        if len(found) >= 50:
            break
    found.sort(key=lambda entry: entry[:2])
    for _, _, name, base in found:
        steps = _transform_steps(getattr(base, "transform", None))
        if steps:
            return {"found_on": name, "steps": steps}
    return None


def describe_loader(name: str, loader: Any, training_data: Any) -> dict[str, Any]:
    batch_size = loader.batch_size
    if batch_size is None:  # a batch_sampler of its own
        batch_size = getattr(loader.batch_sampler, "batch_size", None)
    base = _base_dataset(loader.dataset)
    try:
        size = len(loader.dataset)
    except Exception:
        size = None
    train = getattr(base, "train", None)
    return {
        "name": name,
        "batch_size": batch_size if isinstance(batch_size, int) else None,
        "dataset_size": size,
        "train": train if isinstance(train, bool) else None,
        "wraps_training_data": training_data is not None
        and (loader.dataset is training_data or base is training_data),
        "drop_last": bool(loader.drop_last),
        "sampler": type(loader.sampler).__name__,
    }


def loader_lengths(ns: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``len()`` of each DataLoader of the notebook, the number of batches it yields: indices
    drawn with ``np.random.choice(len(testDataLoader), ...)`` lie below one of them."""
    import torch

    found = []
    for name, value in list(ns.items()):
        if isinstance(value, torch.utils.data.DataLoader) and not name.startswith("_"):
            try:
                length = len(value)
            except Exception:  # a sampler without a length: nothing to compare with
                continue
            if isinstance(length, int):
                found.append({"name": name, "batches": length})
        if len(found) >= 200:
            break
    return found


def find_train_loader(ns: Mapping[str, Any]) -> "dict[str, Any] | None":
    """`trainDataLoader`, else the DataLoader over the training dataset (`trainingdata`, or a
    dataset built with train=True), else one whose name says train; None if there is none."""
    import torch

    loaders = [
        (k, v)
        for k, v in ns.items()
        if isinstance(v, torch.utils.data.DataLoader) and not k.startswith("_")
    ]
    training_data = ns.get("trainingdata")
    found = [describe_loader(k, v, training_data) for k, v in loaders[:20]]
    ranked = sorted(
        found,
        key=lambda d: (
            d["name"] != "trainDataLoader",
            not d["wraps_training_data"],
            d["train"] is not True,
            "train" not in d["name"].lower(),
        ),
    )
    best = ranked[0] if ranked else None
    if best is None or (
        best["name"] != "trainDataLoader"
        and not best["wraps_training_data"]
        and best["train"] is not True
        and "train" not in best["name"].lower()
    ):
        return None
    return best


def describe_modules(model: "torch.nn.Module", called: set[str]) -> list[dict[str, Any]]:
    """Each submodule: its name and type, whether torch defines the type, whether forward called
    it, and a dropout's p."""
    import torch

    modules = []
    for name, module in list(model.named_modules())[1:200]:
        entry: dict[str, Any] = {
            "name": name,
            "type": type(module).__name__,
            "torch": type(module).__module__.startswith("torch."),
            "used": name in called,
        }
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            entry["p"] = float(module.p)
        modules.append(entry)
    return modules


def random_in_training(model: "torch.nn.Module", images: "Array") -> "bool | None":
    """Whether two forward passes over the same images differ in training mode (dropout, in a
    module or through F.dropout); None when the pass raises."""
    import torch

    try:
        clone = copy.deepcopy(model).cpu()
        x = model_input(clone, images)
        clone.train()
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            first, second = clone(x), clone(x)
        return not bool(torch.equal(first, second))
    except Exception:
        return None


def find_losses(ns: Mapping[str, Any]) -> list[dict[str, Any]]:
    import torch

    found = []
    for k, v in ns.items():
        if isinstance(v, torch.nn.modules.loss._Loss) and not k.startswith("_"):
            smoothing = getattr(v, "label_smoothing", 0.0)
            found.append(
                {
                    "name": k,
                    "class": type(v).__name__,
                    "label_smoothing": _setting(smoothing),
                    "reduction": str(getattr(v, "reduction", "")),
                }
            )
    found.sort(key=lambda d: d["name"] not in LOSS_NAMES)
    return found[:5]


def training_setup(ctx: "Context", model: "torch.nn.Module") -> dict[str, Any]:
    """The set-up the notebook trained with, from the live objects: the optimizer(s), the
    training DataLoader, the model's modules, the loss module(s), and the notebook's own
    LEARNING_RATE and BATCH_SIZE."""
    calls, error = traced_copy_calls(model, ctx.arrays["images"])
    model_params = {id(p) for p in model.parameters()}
    setup: dict[str, Any] = {
        "traced": not error,
        "optimizers": find_optimizers(ctx.ns, model_params),
        "stepped": stepped_optimizers(ctx.ns, model_params),
        "model_params": len(list(model.parameters())),
        "train_loader": find_train_loader(ctx.ns),
        "modules": describe_modules(model, set(calls)),
        "random_in_training": random_in_training(model, ctx.arrays["images"]),
        "losses": find_losses(ctx.ns),
    }
    for key in ("LEARNING_RATE", "BATCH_SIZE"):
        value = ctx.ns.get(key)
        setup[key] = value if isinstance(value, int | float | type(None)) else str(value)[:100]
    return setup


def probe(ctx: "Context") -> None:
    import torch

    name, model = None, None
    with ctx.step("model"):
        name, model = find_model(ctx)
        layers, order, forward_error = linears_in_use(model, ctx.arrays["images"])
        used = {n for n, _ in layers}
        params = list(model.parameters())
        try:  # the student's objects: a failure here must not lose the weights
            inputs = input_transform(ctx.ns)
        except Exception:
            inputs = None
        ctx.save_json(
            "model_summary",
            {
                "name": name,
                "class": type(model).__name__,
                "linear_layers": [
                    {
                        "name": n,
                        "in": m.in_features,
                        "out": m.out_features,
                        "bias": m.bias is not None,
                    }
                    for n, m in layers
                ],
                "order": order,
                "forward_error": forward_error,
                "unused_linear_layers": [
                    {"name": n, "in": m.in_features, "out": m.out_features}
                    for n, m in linears(model)
                    if n not in used
                ][:20],
                "module_types": sorted({type(m).__name__ for m in model.modules()}),
                "parameter_count": int(sum(p.numel() for p in params)),
                "device": str(params[0].device) if params else "none",
                "repr": repr(model)[:4000],
                "input_transform": inputs,
            },
        )
        ctx.save_arrays(
            "state_dict",
            {
                k: v.detach().cpu().float()
                for k, v in model.state_dict().items()
                if v.dtype.is_floating_point
            },
        )

    with ctx.step("histories"):
        histories: dict[str, object] = {}
        found_as = {}
        for key in HISTORY_ALIASES:
            name, values = find_history(ctx.ns, key)
            if values is not None:
                histories[key] = values
                found_as[key] = name
        histories["names"] = found_as
        for key in ("EPOCHS", "TRAIN_LIMIT", "DEVICE", "BATCH_SIZE"):
            if key in ctx.ns:
                histories[key] = (
                    ctx.ns[key]
                    if isinstance(ctx.ns[key], int | str | type(None))
                    else str(ctx.ns[key])
                )
        ctx.save_json("histories", histories)
        missing = [k for k in ("train_loss_history", "test_loss_history") if k not in histories]
        if missing:
            raise MissingName(
                "no loss history found for "
                + " or ".join(f"`{k}` (looked for {', '.join(HISTORY_ALIASES[k][1:5])}, ...)"
                              for k in missing)
            )  # fmt: skip

    with ctx.step("samples"):
        samples: dict[str, object] = {}
        name, indices = find_indices(ctx.ns)
        if indices is not None:
            samples["random_indices"] = indices
            samples["name"] = name
        samples["loader_lengths"] = loader_lengths(ctx.ns)
        ctx.save_json("samples", samples)
        name, probs = find_probabilities(ctx.ns, len(indices) if indices else None)
        if probs is not None:
            ctx.save_arrays("sample_probabilities", {"probabilities": probs})
            samples["probabilities_name"] = name
            ctx.save_json("samples", samples)
        if indices is None:
            raise MissingName(
                "no sampled test-image indices found: expected `random_indices` (or idx, "
                "indices, sample_indices, ..., or integers the cell calling imshow uses)"
            )

    if model is None:
        return

    with ctx.step("training_setup"):
        ctx.save_json("training_setup", training_setup(ctx, model))

    with ctx.step("reference_weights_logits"):
        clone = cpu_eval_copy(model)
        layers, _, _ = linears_in_use(clone, ctx.arrays["images"])
        want = list(zip(ctx.values["layers"][:-1], ctx.values["layers"][1:], strict=False))
        have = [(m.in_features, m.out_features) for _, m in layers]
        if have != want:
            raise BadValue(f"the model's Linear layers are {have}; expected {want}")
        with torch.no_grad():
            for i, (_, m) in enumerate(layers):  # by position, in the order forward uses them
                m.weight.copy_(torch.from_numpy(ctx.arrays[f"ref.w{i}"]))
                if m.bias is not None:
                    m.bias.copy_(torch.from_numpy(ctx.arrays[f"ref.b{i}"]))
            logits = clone(model_input(clone, ctx.arrays["images"]))
        ctx.save_arrays("reference_logits", {"logits": logits.float()})
