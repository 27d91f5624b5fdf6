# Kernel-side probe for Q4: the student's weights before and after training, and their
# forward pass and one backprop step on grader-injected weights. Layouts students commonly use
# (weights stored (out, in); biases (n,), (1, n) or (n, 1)) are detected and recorded, and the
# injected weights are given in the student's own layout.
import inspect
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # defined by the probe runtime the cell runs first; never imported in the kernel
    from graders.kernel.probe_runtime import BadValue, MissingName, as_array


def layer_list(value, what):
    if isinstance(value, np.ndarray) and value.dtype != object:
        value = list(value) if value.ndim == 3 else [value]
    if not isinstance(value, list | tuple | np.ndarray):
        raise BadValue(
            f"`{what}` should be a list of arrays, one per layer; got {type(value).__name__}"
        )
    return [as_array(v, f"{what}[{i}]") for i, v in enumerate(value)]


def layout(weights, biases, layers):
    """How the student stores layer i: 'in_out' or 'out_in', and the bias shape."""
    first = weights[0].shape if weights else ()
    orient = "out_in" if first == (layers[1], layers[0]) else "in_out"
    bias_shape = "flat"
    if biases and biases[0].ndim == 2:
        bias_shape = "row" if biases[0].shape[0] == 1 else "column"
    return orient, bias_shape


def to_student(w, b, orient, bias_shape):
    w = w.T.copy() if orient == "out_in" else w.copy()
    b = {"flat": b.copy(), "row": b.reshape(1, -1).copy(), "column": b.reshape(-1, 1).copy()}[
        bias_shape
    ]
    return w, b


def to_canonical(w, b, orient):
    return (w.T if orient == "out_in" else w), b.reshape(-1)


def container_like(template, items):
    if isinstance(template, np.ndarray):
        out = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            out[i] = item
        return out
    return type(template)(items) if isinstance(template, tuple) else list(items)


def inject(ctx, orient, bias_shape):
    layers = ctx.values["layers"]
    ws, bs = [], []
    for i in range(len(layers) - 1):
        w, b = to_student(ctx.arrays[f"w{i}"], ctx.arrays[f"b{i}"], orient, bias_shape)
        ws.append(w)
        bs.append(b)
    ctx.ns["weights"] = container_like(ctx.ns.get("weights", []), ws)
    ctx.ns["biases"] = container_like(ctx.ns.get("biases", []), bs)


def save_params(ctx, name, weights, biases, orient):
    arrays = {}
    for i, (w, b) in enumerate(zip(weights, biases, strict=False)):
        w, b = to_canonical(w, b, orient) if w.ndim == 2 else (w, b.reshape(-1))
        arrays[f"w{i}"] = w
        arrays[f"b{i}"] = b
    ctx.save_arrays(name, arrays)


def call_helper(ctx, name):
    """sigmoid/dsigmoid on the whole vector of test points; softmax row by row (it is 1-D)."""
    fn = ctx.get(name, callable_=True)
    if name != "softmax":
        return as_array(fn(ctx.arrays["z"].copy()), name)
    rows = [as_array(fn(row.copy()), name).reshape(-1) for row in ctx.arrays["softmax_in"]]
    if any(r.shape != rows[0].shape for r in rows):
        raise BadValue(f"softmax returned arrays of different shapes: {[r.shape for r in rows]}")
    return np.stack(rows)


def train_call(fn):
    """How to pass the learning rate: by keyword, by position, or not at all (a global)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return "keyword"
    if "learning_rate" in params:
        return "keyword"
    positional = [
        p
        for p in params.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    if len(positional) >= 3 or any(p.kind == p.VAR_POSITIONAL for p in positional):
        return "positional"
    return "none"


def call_forward(fn, sample, y):
    """feed_forward_sample on a flat 784-vector, or on a 28x28 image if the flat one fails."""
    try:
        return fn(sample.copy(), y), "flat"
    except Exception:
        return fn(sample.reshape(28, 28).copy(), y), "image"


def probe(ctx):
    layers = ctx.values["layers"]
    helpers = {}
    for name in ("sigmoid", "dsigmoid", "softmax"):
        with ctx.step(f"helpers[{name}]"):  # one step each: a broken softmax keeps sigmoid's data
            helpers[name] = call_helper(ctx, name)
    with ctx.step("helpers"):
        ctx.save_arrays("helpers", helpers)

    orient, bias_shape = "in_out", "flat"
    final_w = final_b = None
    with ctx.step("final_weights"):
        final_w = layer_list(ctx.get("weights"), "weights")
        final_b = layer_list(ctx.get("biases"), "biases")
        orient, bias_shape = layout(final_w, final_b, layers)
        save_params(ctx, "final", final_w, final_b, orient)
    ctx.save_json(
        "layout",
        {
            "orientation": orient,
            "bias_shape": bias_shape,
            "shapes": [list(w.shape) for w in (final_w or [])],
            "bias_shapes": [list(b.shape) for b in (final_b or [])],
        },
    )

    with ctx.step("initial_weights"):
        if "weights" not in ctx.snapshots or "biases" not in ctx.snapshots:
            raise MissingName(
                "no cell defined both `weights` and `biases`, so the initial values are unknown"
            )
        init_w = layer_list(ctx.snapshots["weights"], "weights (initial)")
        init_b = layer_list(ctx.snapshots["biases"], "biases (initial)")
        save_params(ctx, "init", init_w, init_b, layout(init_w, init_b, layers)[0])

    forward = None
    with ctx.step("feed_forward_sample"):
        forward = ctx.get("feed_forward_sample", callable_=True)
    if forward is not None:
        inject(ctx, orient, bias_shape)
        index, losses, shapes = [], [], []
        guesses: list[np.ndarray] = []
        for i, (sample, y) in enumerate(
            zip(ctx.arrays["samples"], ctx.arrays["labels"], strict=False)
        ):
            with ctx.step(f"feed_forward_sample[{i}]"):
                result, shape = call_forward(forward, sample, int(y))
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
        how = train_call(train)
        if how == "none":  # the student's function reads a global learning rate
            for name in ("LEARNING_RATE", "learning_rate", "lr"):
                if name in ctx.ns and isinstance(ctx.ns[name], int | float):
                    ctx.ns[name] = lr
        for i, (sample, y) in enumerate(
            zip(ctx.arrays["train_samples"], ctx.arrays["train_labels"], strict=False)
        ):
            with ctx.step(f"train_one_sample[{i}]"):
                inject(ctx, orient, bias_shape)
                if how == "keyword":
                    returned = train(sample.copy(), int(y), learning_rate=lr)
                elif how == "positional":
                    returned = train(sample.copy(), int(y), lr)
                else:
                    returned = train(sample.copy(), int(y))
                new_w = layer_list(ctx.ns["weights"], "weights")
                new_b = layer_list(ctx.ns["biases"], "biases")
                injected = [ctx.arrays[f"w{k}"] for k in range(len(new_w))]
                canonical = [
                    to_canonical(w, b, orient)[0] for w, b in zip(new_w, new_b, strict=False)
                ]
                untouched = all(
                    np.array_equal(a, b) for a, b in zip(canonical, injected, strict=False)
                )
                if untouched and isinstance(returned, tuple | list) and len(returned) == 2:
                    new_w = layer_list(returned[0], "returned weights")
                    new_b = layer_list(returned[1], "returned biases")
                for k, (w, b) in enumerate(zip(new_w, new_b, strict=False)):
                    w, b = to_canonical(w, b, orient)
                    arrays[f"s{i}.w{k}"] = w
                    arrays[f"s{i}.b{k}"] = b
        ctx.save_json("train_meta", {"learning_rate_passed": how})
        if arrays:
            ctx.save_arrays("train_step", arrays)
