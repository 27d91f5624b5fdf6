"""Q1's hidden test ``q1.approx_converges``: the n-box approximation's sup error falls like 1/n.

Hidden, so it runs only in the grader: the student kit has none of this module. The grader's
own smooth functions are approximated by the student's ``box_approximation`` at growing n, and
the largest error on [-B, B] (always including every edge of the boxes, where a gap or an
overlap shows as a spike) must fall like 1/n.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graders.numerics.step_networks import StepNetwork
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q1_step.checks import FLOAT_TYPES, approx_network, exact, exact_list
from graders.render.numbers import number, numbers
from reference import q1_step as ref

MIN_SLOPE = -0.8
"""Steepest allowed least-squares slope of log(sup error) against log(n); 1/n gives -1."""
BOUND_FACTOR = 4.0
"""n * error must stay below this times max|f'| * B. Midpoint heights give at most 1x,
endpoint heights 2x (measured over the whole function pool); 4x leaves a margin for any
reasonable choice of heights and still rejects an error that is O(1/n) only on paper."""
LIPSCHITZ_GRID = 100_001
"""Points used to estimate max|f'| on [-B, B] by finite differences."""
SPAN_TOL = 0.01
"""How far (relative to B) the outermost box edges may be from -B and B before it is said."""


@dataclass(frozen=True, kw_only=True)
class _Convergence:
    """How one hidden function's sup error behaves as n grows."""

    ok: bool
    text: str
    errors: tuple[float, ...] = ()
    slope: float = float("nan")


def _lipschitz(f: Callable[[np.ndarray], np.ndarray], big_b: float) -> float:
    x = np.linspace(-big_b, big_b, LIPSCHITZ_GRID)
    return float(np.max(np.abs(np.gradient(np.asarray(f(x), dtype=np.float64), x))))


def _edge_spike(f: Callable[[np.ndarray], np.ndarray], net: StepNetwork, big_b: float) -> str:
    """Words for an error that peaks exactly at a box edge (a gap or an overlap), else ''."""
    x = ref.error_grid(net, big_b)
    err = np.abs(np.asarray(f(x), dtype=np.float64) - net(x))
    at = int(np.argmax(err))
    on_edge = np.isin(x, net.breakpoints())
    if not on_edge[at] or np.max(err[~on_edge], initial=0.0) > 0.5 * err[at]:
        return ""
    return (
        f" The largest error, {exact(err[at])}, is exactly at x = {exact(x[at])}, an edge of your "
        f"boxes, where your network gives {exact(float(net(x[at])))} and f gives "
        f"{exact(float(f(np.array([x[at]]))[0]))}; just beside it the error is at most "
        f"{exact(float(np.max(err[~on_edge], initial=0.0)))}. Neighbouring boxes must meet without "
        "a gap or an overlap: make each box half-open, e.g. [e_k, e_(k+1))."
    )


def _span_note(net: StepNetwork, big_b: float) -> str:
    """Words for a network whose edges do not run from -B to B (B ignored, most likely)."""
    edges = net.breakpoints()
    if edges.size == 0:
        return ""
    low, high = float(edges[0]), float(edges[-1])
    if abs(low + big_b) <= SPAN_TOL * big_b and abs(high - big_b) <= SPAN_TOL * big_b:
        return ""
    return (
        f" Your boxes' edges run from {exact(low)} to {exact(high)}, not from -B to "
        f"B = {exact(big_b)}: "
        "does box_approximation use its argument B, or a variable from elsewhere in the "
        "notebook?"
    )


def _measured_b(big_b: float, bits: np.ndarray | None) -> float:
    """[-B, B] for a float64 network; a hair less for a float32 one (torch's default).

    A float32 network's outermost edges sit at float32(+-B), up to half a float32 step off
    +-B; between the two, its output is 0 while f(B) need not be. That sliver is rounding,
    not approximation error, so it is left out: 16 float32 epsilons of B (about 2e-6 B).
    """
    coarse = FLOAT_TYPES.get(int(np.min(bits))) if bits is not None and bits.size else None
    if coarse is None:
        return big_b
    return big_b * (1.0 - 16 * float(np.finfo(coarse).eps))


def _convergence(ctx: CheckContext, j: int, spec: Mapping[str, Any]) -> _Convergence:
    expr, big_b = str(spec["expr"]), float(spec["B"])
    f = eval("lambda x: " + expr, {"np": np})  # the grader's own expression, never the student's
    label = f"f(x) = {expr} on [-{exact(big_b)}, {exact(big_b)}]"
    arrays = ctx.npz("box_approximation") or {}
    ns: Sequence[int] = ctx.inputs.values["ns"]
    errors, nets = [], []
    for n in ns:
        net = approx_network(ctx, arrays, j, n)
        if isinstance(net, str):
            return _Convergence(ok=False, text=f"{label}: n = {n} could not be evaluated: {net}")
        errors.append(ref.sup_error(f, net, _measured_b(big_b, arrays.get(f"f{j}.n{n}.bits"))))
        nets.append(net)
    err = np.array(errors)
    if not np.all(np.isfinite(err)):
        return _Convergence(ok=False, text=f"{label}: the network's output is not finite")
    slope = float(np.polyfit(np.log(ns), np.log(np.maximum(err, 1e-300)), 1)[0])
    worst = float(np.max(err * np.asarray(ns)))
    bound = BOUND_FACTOR * _lipschitz(f, big_b) * big_b
    ok = slope <= MIN_SLOPE and worst <= bound
    text = (
        f"{label}: sup error {numbers(err, 3)} for n = {exact_list(ns)}; "
        f"slope {number(slope, 3)} (need <= {exact(MIN_SLOPE)}), largest n * error "
        f"{number(worst, 3)} (allowed {number(bound, 3)})"
    )
    if not ok:
        text += "." + _edge_spike(f, nets[-1], big_b) + _span_note(nets[-1], big_b)
    return _Convergence(ok=ok, text=text, errors=tuple(errors), slope=slope)


@check(
    "q1.approx_converges",
    "The n-box approximation's sup error falls like 1/n",
    needs=("box_approximation",),
)
def approx_converges(ctx: CheckContext) -> Outcome:
    functions = ctx.inputs.values["functions"]
    results = [_convergence(ctx, j, spec) for j, spec in enumerate(functions)]
    right = sum(r.ok for r in results)
    criterion = (
        "Criterion: for each of the grader's own smooth f, the largest |f(x) - network(x)| on "
        "[-B, B] (a 4097-point grid plus every edge of your boxes and the numbers just beside "
        f"it) must fall like 1/n: the least-squares slope of log(error) against log(n) must be "
        f"<= {exact(MIN_SLOPE)} (1/n gives -1), and n * error must stay below "
        f"{exact(BOUND_FACTOR)} * max|f'| * B (height f(midpoint) gives at most max|f'| * B)."
    )
    details = {
        "slopes": [r.slope for r in results],
        "errors": [list(r.errors) for r in results],
    }
    texts = " | ".join(r.text for r in results)
    if right == len(results):
        return Outcome(fraction=1.0, message=f"{texts}. {criterion}", details=details)
    return Outcome(
        fraction=right / len(results),
        message=f"{right} of {len(results)} functions converge like 1/n. {texts} {criterion}",
        hint=(
            "Split [-B, B] into n equal boxes that together cover every point exactly once and "
            "give box k the value of f inside it (e.g. at its midpoint): the error is then at "
            "most max|f'| * B / n."
        ),
        details=details,
    )


CHECKS = (approx_converges,)
