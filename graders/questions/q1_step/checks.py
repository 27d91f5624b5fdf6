"""Q1's public tests: the step activation, the open box of part (a), the n-box approximator's size.

Every network is evaluated here, in the grader's process, by ``graders.numerics.step_networks``
with the assignment's strict step (sigma(0) = 0), never with the student's own ``step``: a wrong
activation costs ``q1.step_function`` and nothing else, and a right network is right whatever
the student's helper does. Each part (a) case is graded apart (partial credit per case), and
the edges apart from the rest of the box, because the design gives most credit for the
interior and wants the boundary explained on its own. The edges are credited on f(0) and
f(delta) alone, so a box that is wrong inside (the wrong height, too narrow) loses the interior
test and only that; a network that is 0 all through (0, delta) is no box at all and has no
edges to credit.

None of these needs the reference's answers: a box is held to h and 0 themselves, and the step
to the assignment's definition, so the student kit runs them as they are.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from graders.numerics import step_networks as nets
from graders.questions.api import CheckContext, Outcome, check
from graders.render.numbers import number, numbers

STEP_TOLERANCE = 1e-12
"""step must give exactly 0 or 1; this only forgives 1.0 written as 0.9999999999999999."""
FLOAT_TYPES: dict[int, type[np.floating[Any]]] = {16: np.float16, 32: np.float32}
"""Reduced float precisions a network may come in (by bits), see ``_report``."""
FLOAT_TOL_ULPS = 8
"""A reduced-precision box is held to this many of its type's epsilons (times max(1, |h|))."""
INTERIOR = np.linspace(0.0, 1.0, 65)[1:-1]
"""Where, as fractions of delta, ``box_edges`` looks for a network that never switches on."""


EXACT_DIGITS = 6
"""Significant figures of a value held to a tolerance near 1e-12: enough to see it is off."""


def exact(value: float) -> str:
    return number(value, EXACT_DIGITS)


# --- step --------------------------------------------------------------------------------


@check("q1.step_function", "step(u) is 1 for u > 0 and 0 otherwise", needs=("step",))
def step_function(ctx: CheckContext) -> Outcome:
    u = np.asarray(ctx.inputs.arrays["step_u"], dtype=np.float64)
    y = (ctx.npz("step") or {}).get("y")
    if y is None or y.size != u.size or y.dtype.kind not in "biuf":
        got = "nothing usable" if y is None else f"{y.size} values"
        return Outcome.failed(
            f"step(u) on an array of {u.size} numbers gave {got}, expected one value per number",
            hint="step must work elementwise: step(np.array([-1.0, 0.0, 2.0])) -> [0, 0, 1].",
        )
    y = y.reshape(-1).astype(np.float64)
    expected = nets.step(u)  # the assignment's definition: the grader's own strict step
    wrong = np.flatnonzero(~(np.abs(y - expected) <= STEP_TOLERANCE))
    if wrong.size == 0:
        return Outcome.passed(
            f"step is right at all {u.size} of the grader's points, including step(0) = 0 "
            "and step(+-1e-9)"
        )
    shown = "; ".join(
        f"step({exact(u[i])}) = {exact(y[i])}, expected {exact(expected[i])}" for i in wrong[:4]
    )
    more = f" (and {wrong.size - 4} more)" if wrong.size > 4 else ""
    return Outcome.failed(
        f"step is wrong at {wrong.size} of {u.size} points: {shown}{more}. (Your networks are "
        "evaluated with the assignment's step, so this costs only this test.)",
        hint=_step_hint(u[wrong]),
        wrong=int(wrong.size),
        total=int(u.size),
    )


def _step_hint(wrong_u: np.ndarray) -> str:
    if np.any(wrong_u == 0):
        return (
            "sigma(u) = 1 only for u > 0 strictly, so step(0) must be 0: compare with u > 0, "
            "not u >= 0."
        )
    if np.any(np.abs(wrong_u) < 1e-6):
        return "Compare u with 0 exactly (u > 0): no rounding or tolerance, even at +-1e-9."
    return "step(u) must be 1.0 where u > 0 and 0.0 everywhere else, elementwise."


# --- part (a): the box --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Box:
    """One grader case of part (a): the report, or why there is none."""

    h: float
    delta: float
    report: nets.BoundaryReport | None
    problem: str = ""
    peak: float = 0.0
    """The largest |output| strictly inside (0, delta): 0 for a network that never switches on."""
    middle: float = 0.0
    """The output at delta / 2."""
    switches: tuple[float, ...] = ()
    """Where the network's neurons switch (its breakpoints)."""

    @property
    def label(self) -> str:
        return f"box_network({exact(self.h)}, {exact(self.delta)})"


def _boxes(ctx: CheckContext) -> list[_Box]:
    arrays = ctx.npz("box_network") or {}
    boxes = []
    for i, (h, delta) in enumerate(ctx.inputs.values["box_cases"]):
        keys = [f"case{i}.{name}" for name in nets.PARAM_NAMES]
        if not all(k in arrays for k in keys):
            errors = [e for e in ctx.probe_errors("box_network") if e.step == f"box_network[{i}]"]
            why = errors[0].message if errors else ctx.why_missing("box_network")
            boxes.append(_Box(h=h, delta=delta, report=None, problem=why))
            continue
        bits = arrays.get(f"case{i}.bits", np.full(4, 64))
        try:
            report = _report([arrays[k] for k in keys], h, delta, bits.reshape(-1)[:4])
        except ValueError as exc:  # a shape or NaN the grader refuses, in its own words
            boxes.append(_Box(h=h, delta=delta, report=None, problem=str(exc)))
            continue
        net = nets.as_network([arrays[k] for k in keys], n_hidden=2)
        inside = net(INTERIOR * delta)
        boxes.append(
            _Box(
                h=h,
                delta=delta,
                report=report,
                peak=float(max(abs(report.inside_zero), abs(report.inside_delta), *abs(inside))),
                middle=float(net(np.array([delta / 2]))[0]),
                switches=tuple(float(x) for x in net.breakpoints()),
            )
        )
    return boxes


def _unused_argument(boxes: Sequence[_Box]) -> str:
    """Words for boxes that are all the same whatever the grader's h (or delta), else ''."""
    seen = [b for b in boxes if b.report is not None]
    if len(seen) < 2:
        return ""
    if len({b.middle for b in seen}) == 1 and len({b.h for b in seen}) > 1 and seen[0].middle:
        same = f"is {exact(seen[0].middle)} in the middle of every box, whatever h is"
        name = "h"
    elif len({b.switches for b in seen}) == 1 and len({b.delta for b in seen}) > 1:
        same = f"switches at x = {exact_list(seen[0].switches)} for every box, whatever delta is"
        name = "delta"
    else:
        return ""
    return (
        f" Your network {same}: does box_network use its argument {name}, or a variable from "
        "elsewhere in the notebook?"
    )


def _report(
    params: Sequence[np.ndarray], h: float, delta: float, bits: np.ndarray
) -> nets.BoundaryReport:
    """The grader's boundary report, at the precision the student's arrays came in.

    A float32 network (torch's default) has its right edge at float32(delta), not at delta:
    its edges are checked there, and its outputs are held to float32 rounding, not to 1e-9.
    The probe records the bits of (w_hidden, b_hidden, w_out, b_out); lists count as 64.
    """
    edge_type = FLOAT_TYPES.get(int(bits[1])) if bits.size == 4 else None
    coarse = FLOAT_TYPES.get(int(np.min(bits))) if bits.size == 4 else None
    rounding = float(np.finfo(coarse if coarse is not None else np.float64).eps)
    report = nets.boundary_report(
        params, h, float(edge_type(delta)) if edge_type else delta, rounding
    )
    if coarse is None:
        return report
    tol = FLOAT_TOL_ULPS * float(np.finfo(coarse).eps) * max(1.0, abs(h))
    return replace(report, tol=max(report.tol, tol))


def _unevaluated(boxes: Sequence[_Box]) -> Outcome | None:
    """One clear failure when no case could be evaluated, instead of the same reason n times."""
    problems = {b.problem for b in boxes if b.report is None}
    if len(problems) == 1 and all(b.report is None for b in boxes):
        return Outcome.failed(f"Could not be checked: {problems.pop()}")
    return None


def _student_step_note(ctx: CheckContext) -> str:
    """A reminder when the student's own step is not strict, since that explains a lot."""
    data = ctx.npz("step") or {}
    u, y = ctx.inputs.arrays["step_u"], data.get("y")
    if y is None or y.size != u.size:
        return ""
    at_zero = y.reshape(-1)[np.asarray(u) == 0]
    if at_zero.size and not np.all(at_zero == 0):
        return (
            f" Note: your step(0) is {exact(float(at_zero[0]))}; the grader uses the assignment's "
            "step, which is 0 at u = 0."
        )
    return ""


@check(
    "q1.box_interior",
    "The box network is h inside (0, delta) and 0 outside [0, delta]",
    needs=("box_network",),
)
def box_interior(ctx: CheckContext) -> Outcome:
    boxes = _boxes(ctx)
    if (nothing := _unevaluated(boxes)) is not None:
        return nothing
    lines, right = [], 0
    for box in boxes:
        if box.report is None:
            lines.append(f"{box.label}: could not be evaluated: {box.problem}")
            continue
        problems = box.report.shape_problems(exact)
        if problems:
            lines.append(f"{box.label}: " + "; ".join(problems))
        else:
            right += 1
    if right == len(boxes):
        beside = max(b.report.offset / b.delta for b in boxes if b.report is not None)
        return Outcome.passed(
            f"For all {len(boxes)} of the grader's (h, delta), your network is exactly h on the "
            "open interval (0, delta) and 0 outside [0, delta] (checked on grids and "
            f"{exact(beside)} * delta beside each edge)."
        )
    return Outcome(
        fraction=right / len(boxes),
        message=f"{right} of {len(boxes)} boxes are right inside and outside. "
        + " | ".join(lines)
        + "."
        + _unused_argument(boxes),
        hint=(
            "The grader computes w_out . step(w_hidden * x + b_hidden) + b_out with step(0) = 0. "
            "Work out by hand which hidden neuron is on for x < 0, 0 < x < delta and x > delta."
            + _student_step_note(ctx)
        ),
        details={"right": right, "total": len(boxes)},
    )


@check("q1.box_edges", "The box is open: f(0) = 0 and f(delta) = 0", needs=("box_network",))
def box_edges(ctx: CheckContext) -> Outcome:
    boxes = _boxes(ctx)
    if (nothing := _unevaluated(boxes)) is not None:
        return nothing
    lines: list[str] = []
    hints: set[str] = set()
    right = 0
    for box in boxes:
        r = box.report
        if r is None:
            lines.append(f"{box.label}: could not be evaluated: {box.problem}")
            continue
        if box.peak <= r.tol:
            lines.append(
                f"{box.label}: the edges cannot be credited because the network is 0 all "
                "through (0, delta) as well: there is no box whose edges could be open (see "
                "the interior test)"
            )
            continue
        wrong = [
            (n, v)
            for n, v, ok in (("0", r.at_zero, r.zero_ok), ("delta", r.at_delta, r.delta_ok))
            if not ok
        ]
        if not wrong:
            right += 1
            continue
        said = ", ".join(f"f({n}) = {exact(v)}, expected 0" for n, v in wrong)
        lines.append(f"{box.label}: {said}")
        hints.update(_edge_hint(n, v, r.h, r.tol) for n, v in wrong)
    if right == len(boxes):
        return Outcome.passed(
            f"For all {len(boxes)} of the grader's boxes, f(0) = 0 and f(delta) = 0 exactly: "
            "the box is open, as asked."
        )
    why = (
        ". The box is open: f(x) = h only for 0 < x < delta, so at x = 0 and at x = delta "
        "the network must already be off."
    )
    return Outcome(
        fraction=right / len(boxes),
        message=f"{right} of {len(boxes)} boxes are right at both edges. "
        + " | ".join(lines)
        + why,
        hint=" ".join(sorted(hints)) + _student_step_note(ctx),
        details={"right": right, "total": len(boxes)},
    )


def _edge_hint(edge: str, value: float, h: float, tol: float) -> str:
    if edge == "delta" and abs(value - h) <= tol:
        return (
            "f(delta) = h means the neuron that should end the box switches off only after "
            "delta: with step(0) = 0, step(x - delta) is still 0 at x = delta, so "
            "h*(step(x) - step(x - delta)) gives h there. A neuron that is on exactly while "
            "x < delta, step(delta - x), is already off at x = delta."
        )
    if edge == "0" and abs(value - h) <= tol:
        return (
            "f(0) = h means the box is already on at x = 0: a neuron that is on exactly while "
            "x > 0, step(x), is still off at x = 0 because step(0) = 0."
        )
    return f"At x = {edge} exactly, work out by hand which hidden neurons are on (step(0) = 0)."


# --- part (b): n boxes ---------------------------------------------------------------------


def approx_network(
    ctx: CheckContext, arrays: dict[str, np.ndarray], j: int, n: int
) -> nets.StepNetwork | str:
    """The student's network for function j and n boxes, or why there is none."""
    keys = [f"f{j}.n{n}.{name}" for name in nets.PARAM_NAMES]
    if not all(k in arrays for k in keys):
        step = f"box_approximation[f{j}, n={n}]"
        errors = [e for e in ctx.probe_errors("box_approximation") if e.step == step]
        return errors[0].message if errors else ctx.why_missing("box_approximation")
    try:
        return nets.as_network([arrays[k] for k in keys], label="approximation network")
    except ValueError as exc:
        return str(exc)


@check(
    "q1.approx_neurons",
    "box_approximation uses 2n hidden neurons for n boxes",
    needs=("box_approximation",),
)
def approx_neurons(ctx: CheckContext) -> Outcome:
    arrays = ctx.npz("box_approximation") or {}
    ns: Sequence[int] = ctx.inputs.values["ns"]
    wrong: list[str] = []
    reasons: set[str] = set()
    sizes: set[int] = set()
    total = 0
    for j, _ in enumerate(ctx.inputs.values["functions"]):
        for n in ns:
            total += 1
            net = approx_network(ctx, arrays, j, n)
            if isinstance(net, str):
                wrong.append(f"n = {n}: {net}")
                reasons.add(net)
                continue
            sizes.add(net.n_hidden)
            if net.n_hidden != 2 * n:
                wrong.append(f"n = {n}: {net.n_hidden} hidden neurons, expected {2 * n}")
    if len(wrong) == total and len(reasons) == 1:
        return Outcome.failed(f"Could not be checked: every call failed: {reasons.pop()}")
    if not wrong:
        return Outcome.passed(f"2n hidden neurons for every n the grader tried ({exact_list(ns)}).")
    more = f" (and {len(wrong) - 4} more)" if len(wrong) > 4 else ""
    same = (
        f". box_approximation gives {sizes.pop()} hidden neurons whatever n is: does it use "
        "its argument n, or a variable from elsewhere in the notebook?"
        if len(sizes) == 1 and len(wrong) == total
        else ""
    )
    return Outcome(
        fraction=(total - len(wrong)) / total,
        message=f"{len(wrong)} of {total} calls did not give 2n hidden neurons: "
        + "; ".join(wrong[:4])
        + more
        + same,
        hint="n boxes need 2n hidden neurons, two per box, as in part (a).",
        details={"wrong": len(wrong), "total": total},
    )


def exact_list(values: Sequence[float]) -> str:
    return numbers(values, EXACT_DIGITS)


CHECKS = (step_function, box_interior, box_edges, approx_neurons)
"""The public tests, in the rubric's order (the hidden one is in ``hidden.py``)."""
