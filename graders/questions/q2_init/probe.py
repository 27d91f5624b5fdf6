# Kernel-side probe for Q2: call each formula function at the grader's points.
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # defined by the probe runtime the cell runs first; never imported in the kernel
    from graders.kernel.probe_runtime import BadValue, Context, as_array
# Annotations naming the runtime's types are quoted: they stay unevaluated in the kernel.


def one_number(value: Any, what: str) -> float:
    """A formula's value as a float: numpy scalars, 0-d arrays, tensors and [x] all count."""
    if value is None:
        raise BadValue(f"{what} returned None (is a `return` missing?)")
    array = as_array(value, what)
    if array.size != 1:
        raise BadValue(f"{what} returned {array.size} numbers (shape {array.shape}), expected one")
    return float(array.reshape(-1)[0])


def probe(ctx: "Context") -> None:
    results = {}
    for name, calls in ctx.values["calls"].items():
        fn = None
        with ctx.step(name):
            fn = ctx.get(name, callable_=True)
        if fn is None:
            continue
        values = []
        for args in calls:
            value = None
            shown = ", ".join(str(a) for a in args)
            with ctx.step(f"{name}[{shown}]"):
                value = one_number(fn(*args), f"{name}({shown})")
            values.append(value)
        results[name] = {"args": calls, "values": values}
    ctx.save_json("formulas", results)
