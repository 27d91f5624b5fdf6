# Kernel-side probe for Q1, run as source in the student's kernel (graders/kernel/probe_runtime.py).
# It only calls the student's functions and stores what they return; the grader evaluates
# the networks in its own process.
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # defined by the probe runtime the cell runs first; never imported in the kernel
    from graders.kernel.probe_runtime import Array, BadValue, Context, as_array
# Annotations naming the runtime's types are quoted: they stay unevaluated in the kernel.


def network_arrays(params: Any, what: str) -> "dict[str, Array]":
    """(w_hidden, b_hidden, w_out, b_out) as float arrays, or BadValue saying what is wrong."""
    if isinstance(params, dict):
        keys = ("w_hidden", "b_hidden", "w_out", "b_out")
        if not all(k in params for k in keys):
            raise BadValue(f"{what} returned a dict without the keys {keys}")
        params = [params[k] for k in keys]
    if not isinstance(params, list | tuple) or len(params) != 4:
        kind = type(params).__name__
        size = f" of {len(params)}" if isinstance(params, list | tuple) else ""
        raise BadValue(
            f"{what} should return (w_hidden, b_hidden, w_out, b_out); got a {kind}{size}"
        )
    names = ("w_hidden", "b_hidden", "w_out", "b_out")
    arrays = {n: as_array(p, f"{what}: {n}") for n, p in zip(names, params, strict=False)}
    arrays["bits"] = np.array([float_bits(p) for p in params])
    return arrays


def float_bits(value: Any) -> int:
    """Bits of the float type an array came in (64 for lists, ints and Python floats).

    A float32 network (torch's default) has its edges at float32(delta): the grader needs to
    know to judge it at that precision.
    """
    try:
        if hasattr(value, "detach"):
            value = value.detach()
            return 8 * int(value.element_size()) if value.is_floating_point() else 64
        dtype = np.asarray(value).dtype
        return 8 * dtype.itemsize if dtype.kind == "f" and dtype.itemsize < 8 else 64
    except Exception:  # an exotic type: judge it at full precision
        return 64


def step_values(step: Callable[[Any], Any], u: "Array") -> "tuple[Array, bool]":
    """step at every u: one vectorised call, or one call per number for a scalar-only step.

    ``1.0 if u > 0 else 0.0`` is a correct answer too; it just cannot take an array.
    """
    try:
        y = as_array(step(u.copy()), "step(u)")
        if y.size == u.size:
            return y.reshape(u.shape), False
    except Exception:  # a scalar-only step raises on an array; try it number by number
        pass
    values = [as_array(step(float(v)), f"step({float(v)!r})").reshape(-1) for v in u]
    bad = [float(v) for v, y in zip(u, values, strict=True) if y.size != 1]
    if bad:
        raise BadValue(f"step({bad[0]!r}) did not return one number")
    return np.array([float(y[0]) for y in values]), True


def probe(ctx: "Context") -> None:
    with ctx.step("step"):
        step = ctx.get("step", callable_=True)
        u = ctx.arrays["step_u"]
        y, elementwise = step_values(step, u)
        ctx.save_arrays("step", {"u": u, "y": y, "elementwise": np.array(elementwise)})

    box_network = None
    with ctx.step("box_network"):
        box_network = ctx.get("box_network", callable_=True)
    if box_network is not None:
        out = {}
        for i, (h, delta) in enumerate(ctx.values["box_cases"]):
            with ctx.step(f"box_network[{i}]"):
                arrays = network_arrays(box_network(h, delta), f"box_network({h}, {delta})")
                out.update({f"case{i}.{k}": v for k, v in arrays.items()})
        ctx.save_arrays("box_network", out)

    approx = None
    with ctx.step("box_approximation"):
        approx = ctx.get("box_approximation", callable_=True)
    if approx is not None:
        out = {}
        for j, spec in enumerate(ctx.values["functions"]):
            f = eval("lambda x: " + spec["expr"], {"np": np})  # grader-chosen expression
            for n in ctx.values["ns"]:
                with ctx.step(f"box_approximation[f{j}, n={n}]"):
                    what = f"box_approximation(f, {spec['B']}, {n})"
                    arrays = network_arrays(approx(f, spec["B"], n), what)
                    out.update({f"f{j}.n{n}.{k}": v for k, v in arrays.items()})
        ctx.save_arrays("box_approximation", out)
