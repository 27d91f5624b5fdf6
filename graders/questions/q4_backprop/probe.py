# Kernel-side probe for Q4: the student's weights before and after training, and their
# forward pass and one backprop step on grader-injected weights.
#
# Notebooks hold their network in several ways, and all of them are followed:
# * where: lists `weights` / `biases` (the assignment), dicts of the same names, one dict such
#   as `params = {"W1": ..., "b1": ...}`, or separate globals `w1, w2, w3, b1, b2, b3` (with
#   or without a `weights` list aliasing them); the one the student's functions use is chosen;
# * how: weights (n_in, n_out) or (n_out, n_in); biases (n,), (1, n) or (n, 1);
# * the calls: feed_forward_sample on a flat 784-vector, a (1, 784) row or a 28x28 image;
#   functions that take the arrays (or the learning rate) as extra parameters, named like the
#   notebook's globals; train_one_sample updating in place or returning the new arrays.
# The injected weights are given in the student's own place and layout; everything saved is
# turned back into the canonical (n_in, n_out) / (n,) layout the checks read.
import inspect
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # defined by the probe runtime the cell runs first; never imported in the kernel
    from graders.kernel.probe_runtime import Array, BadValue, Context, MissingName, as_array
# Annotations naming the runtime's types are quoted: they stay unevaluated in the kernel. The
# student's values (globals, the keys of their dicts) are Any: a notebook may hold anything.

WEIGHT_NAME = re.compile(r"^(?:w|W|weights?|Weights?|theta|Theta)_?(\d)$")
BIAS_NAME = re.compile(r"^(?:b|B|bias|biases|Bias|Biases)_?(\d)$")
PARAMS_DICTS = ("params", "parameters", "network", "net", "nn", "model", "theta", "weights_dict")
LEARNING_RATE_NAMES = ("learning_rate", "lr", "eta", "alpha", "rate", "step_size", "LEARNING_RATE")
LEARNING_RATE_GLOBALS = ("LEARNING_RATE", "learning_rate", "lr")
"""Globals set to the grader's rate when train_one_sample takes none, wherever they are read."""
READ_RATE_GLOBALS = ("LR", "eta", "ETA", "alpha", "ALPHA", "step_size", "STEP_SIZE", "rate")
"""Further names of a global rate, set only when train_one_sample (or a helper it calls) reads
them: a notebook may use such a name for something else."""
TRAIN_NAMES = ("x_train", "X_train", "train_images", "train_x", "x_tr", "images", "data")


def layer_list(value: Any, what: str) -> "list[Array]":
    if isinstance(value, np.ndarray) and value.dtype != object:
        value = list(value) if value.ndim == 3 else [value]
    if not isinstance(value, list | tuple | np.ndarray):
        raise BadValue(
            f"`{what}` should be a list of arrays, one per layer; got {type(value).__name__}"
        )
    return [as_array(v, f"{what}[{i}]") for i, v in enumerate(value)]


def _is_layers(value: Any) -> bool:
    return (isinstance(value, list | tuple) and len(value) > 0) or (
        isinstance(value, np.ndarray) and (value.dtype == object or value.ndim == 3)
    )


def _numbered(keys: Iterable[str], pattern: re.Pattern[str]) -> list[str]:
    """Keys matching ``pattern`` in layer order (the digit in the name), or [] if not all do."""
    found = []
    for key in keys:
        match = pattern.match(str(key))
        if match is None:
            return []
        found.append((int(match.group(1)), key))
    numbers = [n for n, _ in found]
    if len(set(numbers)) != len(numbers):
        return []
    return [key for _, key in sorted(found)]


def _dict_keys(value: Any) -> tuple[list[str], list[str]] | None:
    """(weight keys, bias keys) of a dict holding both, layer order; None if it does not."""
    if not isinstance(value, dict):
        return None
    arrays = [k for k, v in value.items() if isinstance(k, str) and isinstance(v, np.ndarray)]
    w = _numbered([k for k in arrays if WEIGHT_NAME.match(k)], WEIGHT_NAME)
    b = _numbered([k for k in arrays if BIAS_NAME.match(k)], BIAS_NAME)
    if w and len(w) == len(b):
        return w, b
    return None


def _layer_dict_keys(value: Any) -> list[Any] | None:
    """A dict of one kind (weights only or biases only), in layer order."""
    if not isinstance(value, dict) or not value:
        return None
    keys = list(value)
    if not all(isinstance(value[k], np.ndarray) for k in keys):
        return None
    digits = [re.search(r"(\d+)", str(k)) for k in keys]
    if all(d is not None for d in digits):
        numbers = [int(d.group(1)) for d in digits if d is not None]
        return [keys[i] for i in sorted(range(len(keys)), key=lambda i: (numbers[i], i))]
    return keys


class Store:
    """Where and how the notebook keeps its weights and biases, to read and to replace them."""

    def __init__(
        self,
        kind: str,
        describe: str,
        names: Iterable[str],
        wkeys: Iterable[Any] = (),
        bkeys: Iterable[Any] = (),
        aliases: Iterable[str] = (),
    ):
        self.kind = kind
        self.describe = describe
        self.names = tuple(names)  # the globals the store lives in
        self.wkeys = tuple(wkeys)
        self.bkeys = tuple(bkeys)
        self.aliases = tuple(aliases)  # `weights`/`biases` lists beside separate globals

    def read(self, ns: Mapping[str, Any], what: str = "") -> "tuple[list[Array], list[Array]]":
        label = f" ({what})" if what else ""
        if self.kind == "lists":
            return (
                layer_list(ns["weights"], "weights" + label),
                layer_list(ns["biases"], "biases" + label),
            )
        if self.kind == "dicts":
            ws, bs = ns["weights"], ns["biases"]
            return (
                [as_array(ws[k], f"weights[{k!r}]") for k in self.wkeys],
                [as_array(bs[k], f"biases[{k!r}]") for k in self.bkeys],
            )
        if self.kind == "params":
            d = ns[self.names[0]]
            return (
                [as_array(d[k], f"{self.names[0]}[{k!r}]") for k in self.wkeys],
                [as_array(d[k], f"{self.names[0]}[{k!r}]") for k in self.bkeys],
            )
        return (
            [as_array(ns[k], f"`{k}`") for k in self.wkeys],
            [as_array(ns[k], f"`{k}`") for k in self.bkeys],
        )

    def write(self, ns: dict[str, Any], ws: "Sequence[Array]", bs: "Sequence[Array]") -> None:
        if self.kind == "lists":
            ns["weights"] = container_like(ns.get("weights", []), ws)
            ns["biases"] = container_like(ns.get("biases", []), bs)
        elif self.kind == "dicts":
            ns["weights"] = dict(zip(self.wkeys, ws, strict=True))
            ns["biases"] = dict(zip(self.bkeys, bs, strict=True))
        elif self.kind == "params":
            d = dict(ns[self.names[0]])
            d.update(zip(self.wkeys, ws, strict=True))
            d.update(zip(self.bkeys, bs, strict=True))
            ns[self.names[0]] = d
        else:
            ns.update(zip(self.wkeys, ws, strict=True))
            ns.update(zip(self.bkeys, bs, strict=True))
            if "weights" in self.aliases:
                ns["weights"] = container_like(ns["weights"], ws)
            if "biases" in self.aliases:
                ns["biases"] = container_like(ns["biases"], bs)


TEMPLATE_STORE = ("weights", "biases")


def candidate_stores(ns: Mapping[str, Any], n_layers: int) -> list[Store]:
    found: list[Store] = []
    w, b = ns.get("weights"), ns.get("biases")
    if _is_layers(w) and _is_layers(b):
        found.append(Store("lists", "the lists `weights` and `biases`", ("weights", "biases")))
    wk, bk = _layer_dict_keys(w), _layer_dict_keys(b)
    if wk and bk and len(wk) == len(bk):
        found.append(
            Store("dicts", "the dicts `weights` and `biases`", ("weights", "biases"), wk, bk)
        )
    for name in [*PARAMS_DICTS, *sorted(k for k in ns if k not in PARAMS_DICTS)]:
        keys = _dict_keys(ns.get(name)) if not name.startswith("_") else None
        if keys:
            found.append(Store("params", f"the dict `{name}`", (name,), *keys))
            break
    arrays = [k for k, v in ns.items() if isinstance(v, np.ndarray) and v.dtype != object]
    for case in (str.lower, str.upper):
        wk = _numbered([k for k in arrays if WEIGHT_NAME.match(k) and k[0] == case(k[0])],
                       WEIGHT_NAME)  # fmt: skip
        bk = _numbered([k for k in arrays if BIAS_NAME.match(k)], BIAS_NAME)
        if len(wk) == n_layers and len(bk) == n_layers:
            aliases = [n for n in ("weights", "biases") if _is_layers(ns.get(n))]
            found.append(
                Store(
                    "globals",
                    f"the globals {', '.join(wk)} and {', '.join(bk)}",
                    (*wk, *bk),
                    wk,
                    bk,
                    aliases,
                )
            )
            break
    return found


def referenced_names(ns: Mapping[str, Any], *function_names: str) -> set[str]:
    """Global names the student's functions (and the functions they call) read."""
    seen: set[int] = set()
    names: set[str] = set()
    todo = [ns.get(n) for n in function_names]
    while todo:
        fn = todo.pop()
        code = getattr(fn, "__code__", None)
        if code is None or id(code) in seen or len(seen) > 50:
            continue
        seen.add(id(code))
        codes = [code]
        while codes:
            c = codes.pop()
            names.update(c.co_names)
            codes += [k for k in c.co_consts if hasattr(k, "co_names")]
        todo += [ns[n] for n in list(names) if callable(ns.get(n)) and hasattr(ns[n], "__code__")]
    return names


def find_store(ns: Mapping[str, Any], n_layers: int) -> Store:
    stores = candidate_stores(ns, n_layers)
    if not stores:
        present = sorted(
            k
            for k, v in ns.items()
            if not k.startswith("_") and isinstance(v, np.ndarray | list | tuple | dict)
            and (WEIGHT_NAME.match(k) or BIAS_NAME.match(k) or k in ("weights", "biases"))
        )  # fmt: skip
        raise MissingName(
            "the network's parameters were not found: expected the lists `weights` and "
            "`biases` (or dicts of those names, one dict such as `params` with keys W1, b1, "
            f"..., or globals w1, w2, w3 and b1, b2, b3); found {present or 'none of these'}"
        )
    used = referenced_names(ns, "feed_forward_sample", "train_one_sample")
    for store in stores:
        if used & set(store.names):
            return store
    return stores[0]


def layout(
    weights: "Sequence[Array]", biases: "Sequence[Array]", layers: Sequence[int]
) -> tuple[str, str]:
    """How the student stores layer i: 'in_out' or 'out_in', and the bias shape."""
    first = weights[0].shape if weights else ()
    orient = "out_in" if first == (layers[1], layers[0]) else "in_out"
    bias_shape = "flat"
    if biases and biases[0].ndim == 2:
        bias_shape = "row" if biases[0].shape[0] == 1 else "column"
    return orient, bias_shape


def to_student(w: "Array", b: "Array", orient: str, bias_shape: str) -> "tuple[Array, Array]":
    w = w.T.copy() if orient == "out_in" else w.copy()
    b = {"flat": b.copy(), "row": b.reshape(1, -1).copy(), "column": b.reshape(-1, 1).copy()}[
        bias_shape
    ]
    return w, b


def to_canonical(w: "Array", b: "Array", orient: str) -> "tuple[Array, Array]":
    return (w.T if orient == "out_in" else w), b.reshape(-1)


def container_like(template: Any, items: Sequence[Any]) -> "Array | tuple[Any, ...] | list[Any]":
    if isinstance(template, np.ndarray):
        out = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            out[i] = item
        return out
    return type(template)(items) if isinstance(template, tuple) else list(items)


def inject(ctx: "Context", store: Store, orient: str, bias_shape: str) -> None:
    layers = ctx.values["layers"]
    ws: list[Array] = []
    bs: list[Array] = []
    for i in range(len(layers) - 1):
        w, b = to_student(ctx.arrays[f"w{i}"], ctx.arrays[f"b{i}"], orient, bias_shape)
        ws.append(w)
        bs.append(b)
    store.write(ctx.ns, ws, bs)


def save_params(
    ctx: "Context", name: str, weights: "Sequence[Array]", biases: "Sequence[Array]", orient: str
) -> None:
    arrays: dict[str, Array] = {}
    for i, (w, b) in enumerate(zip(weights, biases, strict=False)):
        w, b = to_canonical(w, b, orient) if w.ndim == 2 else (w, b.reshape(-1))
        arrays[f"w{i}"] = w
        arrays[f"b{i}"] = b
    ctx.save_arrays(name, arrays)


def call_helper(ctx: "Context", name: str) -> "Array":
    """sigmoid/dsigmoid on the whole vector of test points; softmax row by row (it is 1-D)."""
    fn = ctx.get(name, callable_=True)
    if name != "softmax":
        return as_array(fn(ctx.arrays["z"].copy()), name)
    rows = [as_array(fn(row.copy()), name).reshape(-1) for row in ctx.arrays["softmax_in"]]
    if any(r.shape != rows[0].shape for r in rows):
        raise BadValue(f"softmax returned arrays of different shapes: {[r.shape for r in rows]}")
    return np.stack(rows)


def extra_arguments(
    fn: Callable[..., Any], ns: Mapping[str, Any], lead: int, *, lr: float | None = None
) -> tuple[dict[str, Any] | None, str]:
    """Keyword arguments for ``fn``'s parameters after the ``lead`` (sample, label) ones: the
    learning rate for one named like it, the notebook's global of the same name (the injected
    weights) for the others. A required parameter neither can fill is named in the error."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return {}, "keyword" if lr is not None else "none"
    params = list(signature.parameters.values())
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = [p for p in params if p.kind in kinds]
    if any(p.kind == inspect.Parameter.POSITIONAL_ONLY for p in positional[lead:]):
        return None, "positional-only parameters"
    rest = positional[lead:] + [p for p in params if p.kind == inspect.Parameter.KEYWORD_ONLY]
    kwargs: dict[str, Any] = {}
    how = "none"
    for i, p in enumerate(rest):
        if lr is not None and p.name in LEARNING_RATE_NAMES:
            kwargs[p.name], how = lr, "keyword"
        elif p.name in ns and not callable(ns[p.name]) and p.name not in LEARNING_RATE_NAMES:
            kwargs[p.name] = ns[p.name]
        elif p.default is not inspect.Parameter.empty:
            continue
        elif lr is not None and i == 0 and p.kind != inspect.Parameter.KEYWORD_ONLY:
            kwargs[p.name], how = lr, "positional"  # (sample, y, rate) whatever its name
        else:
            raise BadValue(
                f"{fn.__name__}{signature} has a parameter `{p.name}` the grader cannot fill: "
                "it calls (sample, y) and fills further parameters only with the learning rate "
                "(named learning_rate or lr) or with the notebook's globals of the same name "
                "(such as weights, biases)"
            )
    if (
        lr is not None
        and how == "none"
        and any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in params)
    ):
        return {"*": lr}, "positional"
    return kwargs, how


def notebook_rates(ns: Mapping[str, Any]) -> dict[str, float]:
    """The notebook's globals named like a learning rate that hold one number (not a bool),
    so the grader can tell an update made with one of them instead of the rate it passed."""
    found: dict[str, float] = {}
    for name in (*LEARNING_RATE_GLOBALS, *READ_RATE_GLOBALS):
        value: Any = ns.get(name)
        if type(value) not in (int, float, np.float64, np.float32, np.int64, np.int32):
            continue  # exact types: a subclass could run the student's code in float()
        number = float(value)
        if math.isfinite(number):
            found[name] = number
    return found


def call(fn: Callable[..., Any], leading: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
    if "*" in kwargs:
        return fn(*leading, kwargs["*"])
    return fn(*leading, **kwargs)


FORWARD_SHAPES = (("flat", (784,)), ("row", (1, 784)), ("image", (28, 28)))


def call_forward(
    fn: Callable[..., Any], sample: "Array", y: int, kwargs: Mapping[str, Any]
) -> tuple[Any, str]:
    """feed_forward_sample on a flat 784-vector, else a (1, 784) row, else a 28x28 image; if
    every shape fails, the error of the flat one (what the assignment specifies)."""
    errors: list[Exception] = []
    for name, shape in FORWARD_SHAPES:
        try:
            return call(fn, (sample.reshape(shape).copy(), y), kwargs), name
        except Exception as exc:
            errors.append(exc)
    raise errors[0]


def arrays_in(value: Any, depth: int = 0) -> "list[Array]":
    """Every numeric array in a returned value (tuples, lists, dicts), in order."""
    if depth > 3:
        return []
    if isinstance(value, np.ndarray) and value.dtype != object:
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple | np.ndarray):
        return [a for v in value for a in arrays_in(v, depth + 1)]
    return []


def returned_params(
    returned: Any, layers: Sequence[int], orient: str
) -> "tuple[list[Array], list[Array]] | None":
    """The updated (weights, biases) a train_one_sample returned instead of updating in place,
    told apart by shape (in any order: (weights, biases), (w1, b1, w2, ...), a dict); None if
    the value holds no full set."""
    sizes = [(layers[i], layers[i + 1]) for i in range(len(layers) - 1)]
    want = [(n_out, n_in) if orient == "out_in" else (n_in, n_out) for n_in, n_out in sizes]
    ws: list[Array] = []
    bs: list[Array] = []
    for a in arrays_in(returned):
        if len(ws) < len(want) and a.shape == want[len(ws)]:
            ws.append(a)
        elif len(bs) < len(sizes) and a.ndim <= 2 and a.size == sizes[len(bs)][1]:
            bs.append(a)
    if len(ws) == len(want) and len(bs) == len(sizes):
        return ws, bs
    return None


def training_images(ns: Mapping[str, Any]) -> "tuple[str, Array] | tuple[None, None]":
    """The array the notebook trains on: MNIST-shaped images, a name with "train" first."""
    found = []
    for name, value in list(ns.items()):
        if name.startswith("_") or not isinstance(value, np.ndarray):
            continue
        if value.dtype.kind not in "uif" or value.ndim not in (2, 3) or len(value) < 100:
            continue
        if value.shape[1:] not in ((784,), (28, 28)):
            continue
        rank = 0 if name in TRAIN_NAMES[:4] else 1 if "train" in name.lower() else 2
        found.append((rank, -len(value), name, value))
    if not found:
        return None, None
    _, _, name, value = min(found, key=lambda item: item[:3])
    return name, value


def input_scale(ctx: "Context") -> None:
    """The range of the pixels the notebook trained on, so the grader can measure its network
    on the same preprocessing (the course's starter code never divides by 255)."""
    name, images = training_images(ctx.ns)
    if images is None:  # not the student's error: the grader then assumes the assignment's /255
        ctx.save_json("input_scale", {"name": None})
        return
    with np.errstate(all="ignore"):
        low, high = float(np.min(images)), float(np.max(images))
        mean = float(np.mean(images, dtype=np.float64))
    ctx.save_json(
        "input_scale",
        {
            "name": name,
            "shape": [int(n) for n in images.shape],
            "dtype": str(images.dtype),
            "min": low,
            "max": high,
            "mean": mean,
        },
    )


def probe(ctx: "Context") -> None:
    layers = ctx.values["layers"]
    with ctx.step("input_scale"):
        input_scale(ctx)
    helpers = {}
    for name in ("sigmoid", "dsigmoid", "softmax"):
        with ctx.step(f"helpers[{name}]"):  # one step each: a broken softmax keeps sigmoid's data
            helpers[name] = call_helper(ctx, name)
    with ctx.step("helpers"):
        ctx.save_arrays("helpers", helpers)

    orient, bias_shape = "in_out", "flat"
    store = final_w = final_b = None
    with ctx.step("final_weights"):
        store = find_store(ctx.ns, len(layers) - 1)
        final_w, final_b = store.read(ctx.ns)
        orient, bias_shape = layout(final_w, final_b, layers)
        save_params(ctx, "final", final_w, final_b, orient)
    ctx.save_json(
        "layout",
        {
            "orientation": orient,
            "bias_shape": bias_shape,
            "store": store.describe if store is not None else None,
            "shapes": [list(w.shape) for w in (final_w or [])],
            "bias_shapes": [list(b.shape) for b in (final_b or [])],
        },
    )

    with ctx.step("initial_weights"):
        if store is None:
            raise MissingName("the network's parameters were not found (see final_weights)")
        if not all(name in ctx.snapshots for name in store.names):
            raise MissingName(
                f"no cell defined {store.describe} before they were trained, so the initial "
                "values are unknown"
            )
        init_w, init_b = store.read(ctx.snapshots, "initial")
        save_params(ctx, "init", init_w, init_b, layout(init_w, init_b, layers)[0])

    # The grader injects its own weights for the function checks, so they need only where the
    # functions read them: without a store found (the init cell raised, say), the template's.
    inject_store = store or Store("lists", "the lists `weights` and `biases`", TEMPLATE_STORE)

    forward = None
    with ctx.step("feed_forward_sample"):
        forward = ctx.get("feed_forward_sample", callable_=True)
    if forward is not None:
        index, losses, shapes = [], [], []
        guesses: list[np.ndarray] = []
        for i, (sample, y) in enumerate(
            zip(ctx.arrays["samples"], ctx.arrays["labels"], strict=False)
        ):
            with ctx.step(f"feed_forward_sample[{i}]"):
                inject(ctx, inject_store, orient, bias_shape)
                kwargs, _ = extra_arguments(forward, ctx.ns, 2)
                if kwargs is None:
                    raise BadValue("feed_forward_sample has positional-only extra parameters")
                result, shape = call_forward(forward, sample, int(y), kwargs)
                if not isinstance(result, tuple | list) or len(result) != 2:
                    raise BadValue("feed_forward_sample should return (loss, one_hot_guess)")
                loss = as_array(result[0], "loss").reshape(-1)
                guess = as_array(result[1], "one_hot_guess").reshape(-1)
                if loss.size != 1:
                    raise BadValue(f"the loss should be one number, got shape {loss.shape}")
                if guesses and guess.shape != guesses[0].shape:
                    raise BadValue(
                        f"one_hot_guess has shape {guess.shape}, before {guesses[0].shape}"
                    )
                index.append(i)
                losses.append(float(loss[0]))
                guesses.append(guess)
                shapes.append(shape)
        if losses:  # `index` keeps samples aligned when some of them raised
            ctx.save_arrays(
                "forward",
                {
                    "index": np.array(index),
                    "losses": np.array(losses),
                    "guesses": np.stack(guesses),
                },
            )
            ctx.save_json("forward_meta", {"input_shapes": shapes, "count": len(losses)})

    train = None
    with ctx.step("train_one_sample"):
        train = ctx.get("train_one_sample", callable_=True)
    if train is not None:
        arrays = {}
        lr = ctx.values["learning_rate"]
        how = "none"
        rate_globals = notebook_rates(ctx.ns)  # the notebook's own values, before any is set
        globals_set: list[str] = []
        for i, (sample, y) in enumerate(
            zip(ctx.arrays["train_samples"], ctx.arrays["train_labels"], strict=False)
        ):
            with ctx.step(f"train_one_sample[{i}]"):
                inject(ctx, inject_store, orient, bias_shape)
                kwargs, how = extra_arguments(train, ctx.ns, 2, lr=lr)
                if kwargs is None:
                    raise BadValue("train_one_sample has positional-only extra parameters")
                if how == "none":  # the student's function reads a global learning rate
                    globals_set = [n for n in rate_globals if n in LEARNING_RATE_GLOBALS]
                    read = referenced_names(ctx.ns, "train_one_sample")
                    globals_set += [n for n in rate_globals if n in read and n not in globals_set]
                    for name in globals_set:
                        ctx.ns[name] = lr
                returned = call(train, (sample.copy(), int(y)), kwargs)
                new_w, new_b = inject_store.read(ctx.ns)
                injected = [ctx.arrays[f"w{k}"] for k in range(len(new_w))]
                canonical = [
                    to_canonical(w, b, orient)[0] for w, b in zip(new_w, new_b, strict=False)
                ]
                untouched = all(
                    np.array_equal(a, b) for a, b in zip(canonical, injected, strict=False)
                )
                if untouched and returned is not None:
                    found = returned_params(returned, layers, orient)
                    if found is not None:
                        new_w = [as_array(w, "returned weights") for w in found[0]]
                        new_b = [as_array(b, "returned biases") for b in found[1]]
                for k, (w, b) in enumerate(zip(new_w, new_b, strict=False)):
                    w, b = to_canonical(w, b, orient)
                    arrays[f"s{i}.w{k}"] = w
                    arrays[f"s{i}.b{k}"] = b
        ctx.save_json(
            "train_meta",
            {
                "learning_rate_passed": how,
                "globals_set": globals_set,
                "notebook_rates": rate_globals,
            },
        )
        if arrays:
            ctx.save_arrays("train_step", arrays)
