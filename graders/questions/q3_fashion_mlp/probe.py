# Kernel-side probe for Q3: the trained model's weights and structure, its histories, the
# sampled images, the logits of the student's model with the grader's weights loaded (the
# architecture judged by behaviour), and the trained model's logits on the whole test set
# (read by the probe from the raw IDX file, not from the student's dataset objects).
import copy
import gzip
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # defined by the probe runtime the cell runs first; never imported in the kernel
    from graders.kernel.probe_runtime import BadValue, MissingName, as_array


def find_model(ctx):
    import torch

    value = ctx.ns.get("model")
    if isinstance(value, torch.nn.Module):
        return "model", value
    found = [
        (k, v)
        for k, v in ctx.ns.items()
        if isinstance(v, torch.nn.Module) and not k.startswith("_")
    ]
    if not found:
        raise MissingName("no torch.nn.Module instance found (expected one named `model`)")
    found.sort(key=lambda kv: -sum(p.numel() for p in kv[1].parameters()))
    return found[0]


def linears(model):
    import torch

    return [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def read_idx_images(path):
    with open(path, "rb") as fh:
        opener = gzip.open if fh.read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    count, rows, cols = (int.from_bytes(data[i : i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def cpu_eval_copy(model):
    clone = copy.deepcopy(model).cpu()
    clone.eval()
    return clone


def probe(ctx):
    import torch

    name, model = None, None
    with ctx.step("model"):
        name, model = find_model(ctx)
        layers = linears(model)
        params = list(model.parameters())
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
                "module_types": sorted({type(m).__name__ for m in model.modules()}),
                "parameter_count": int(sum(p.numel() for p in params)),
                "device": str(params[0].device) if params else "none",
                "repr": repr(model)[:4000],
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
        for key in ("train_loss_history", "test_loss_history", "test_accuracy_history"):
            if key in ctx.ns:
                histories[key] = [float(as_array(v, key).reshape(-1)[0]) for v in ctx.ns[key]]
        for key in ("EPOCHS", "TRAIN_LIMIT", "DEVICE", "BATCH_SIZE"):
            if key in ctx.ns:
                histories[key] = (
                    ctx.ns[key]
                    if isinstance(ctx.ns[key], int | str | type(None))
                    else str(ctx.ns[key])
                )
        ctx.save_json("histories", histories)
        if "train_loss_history" not in histories or "test_loss_history" not in histories:
            raise MissingName(
                "the notebook does not define both `train_loss_history` and `test_loss_history`"
            )

    with ctx.step("samples"):
        samples = {}
        if "random_indices" in ctx.ns:
            samples["random_indices"] = [
                int(i) for i in as_array(ctx.ns["random_indices"], "random_indices").reshape(-1)
            ]
        ctx.save_json("samples", samples)
        if "sample_probabilities" in ctx.ns:
            probs = [
                as_array(p, "sample_probabilities").reshape(-1)
                for p in ctx.ns["sample_probabilities"]
            ]
            if probs:
                ctx.save_arrays("sample_probabilities", {"probabilities": np.stack(probs)})
        if "random_indices" not in samples:
            raise MissingName("the notebook does not define `random_indices`")

    if model is None:
        return

    with ctx.step("reference_weights_logits"):
        clone = cpu_eval_copy(model)
        layers = linears(clone)
        want = list(zip(ctx.values["layers"][:-1], ctx.values["layers"][1:], strict=False))
        have = [(m.in_features, m.out_features) for _, m in layers]
        if have != want:
            raise BadValue(f"the model's Linear layers are {have}; expected {want}")
        with torch.no_grad():
            for i, (_, m) in enumerate(layers):
                m.weight.copy_(torch.from_numpy(ctx.arrays[f"ref.w{i}"]))
                if m.bias is not None:
                    m.bias.copy_(torch.from_numpy(ctx.arrays[f"ref.b{i}"]))
            logits = clone(torch.from_numpy(ctx.arrays["images"]))
        ctx.save_arrays("reference_logits", {"logits": logits})

    with ctx.step("test_logits"):
        clone = cpu_eval_copy(model)
        images = read_idx_images(ctx.values["test_images_file"])
        outputs = []
        with torch.no_grad():
            for start in range(0, len(images), 1000):
                batch = torch.from_numpy(images[start : start + 1000].astype(np.float32) / 255.0)[
                    :, None
                ]
                outputs.append(clone(batch).float())
        ctx.save_arrays("test_logits", {"logits": torch.cat(outputs)})
