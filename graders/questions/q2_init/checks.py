"""Q2's public tests: the derived variances as closed forms.

They compare the student's functions, at the grader's random points, with what the reference
gives there (``ctx.expected("formulas")``, relative tolerance 1e-6; credit by the fraction of
points right) and, when every point is off in the same way, say how (a constant factor, an
ignored argument, the seed's var(y)-for-E[y^2] slip). The hidden test (``hidden.py``) measures
the rules in deep stacks instead.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graders.questions.api import CheckContext, Outcome, check
from graders.render.numbers import number

RTOL = 1e-6
"""Relative tolerance of the closed-form comparisons: far above rounding, far below any slip."""
SEED_RELU_RATIO = math.pi / (math.pi - 1)
"""How far the seed's part (c) answer is from He's: 2 pi / ((pi - 1) n_in) over 2 / n_in."""


def stack_calls(stack: Mapping[str, Any]) -> dict[str, list[list[int]]]:
    """The arguments at which the hidden Monte-Carlo test needs each rule's value (the probe
    asks the student's rules for them with the others, so ``make_inputs`` needs this too)."""
    widths = [int(w) for w in stack["widths"]]
    xavier = [int(w) for w in stack["xavier_widths"]]
    return {
        "forward_variance": [[w] for w in widths[:-1]],
        "relu_forward_variance": [[w] for w in widths[:-1]],
        "backward_variance": [[w] for w in widths[1:]],
        "xavier_variance": [[n_in, n_out] for n_in, n_out in itertools.pairwise(xavier)],
    }


EXACT_DIGITS = 6
"""Significant figures of a closed-form value checked at a relative tolerance of 1e-6."""


def exact(value: float) -> str:
    return number(value, EXACT_DIGITS)


def call_text(name: str, args: Sequence[Any]) -> str:
    return f"{name}({', '.join(str(a) for a in args)})"


# --- reading the probe's record ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RecordedValues:
    """One formula's values at the grader's points: a float, or why there is none."""

    name: str
    args: tuple[tuple[Any, ...], ...]
    values: tuple[float | str, ...]

    def lookup(self) -> dict[tuple[Any, ...], float | str]:
        return dict(zip(self.args, self.values, strict=True))


def recorded_values(ctx: CheckContext, name: str) -> RecordedValues | str:
    """The student's values for ``name`` at the grader's own arguments, or why not."""
    calls = [tuple(a) for a in ctx.inputs.values["calls"][name]]
    record = ctx.json("formulas")
    entry = record.get(name) if isinstance(record, dict) else None
    if not isinstance(entry, dict):
        return ctx.why_missing(name) if record is not None else ctx.why_missing("formulas")
    raw = entry.get("values")
    if not isinstance(raw, list) or len(raw) != len(calls):
        return f"the probe's record of {name} does not match the grader's {len(calls)} calls"
    values = [
        _number_or_reason(ctx, name, args, value) for args, value in zip(calls, raw, strict=True)
    ]
    reasons = {
        _failure(ctx, name, args) for args, value in zip(calls, raw, strict=True) if value is None
    }
    if len(reasons) == 1 and all(v is None for v in raw) and len(calls) > 1:
        return f"{name} failed at every one of the grader's {len(calls)} points: {reasons.pop()}"
    return RecordedValues(name=name, args=tuple(calls), values=tuple(values))


def _failure(ctx: CheckContext, name: str, args: tuple[Any, ...]) -> str:
    """The probe's words for a call that produced no value."""
    step = f"{name}[{', '.join(str(a) for a in args)}]"
    errors = [e for e in ctx.probe_errors(name) if e.step == step]
    return errors[0].message if errors else "no value was recorded"


def _number_or_reason(
    ctx: CheckContext, name: str, args: tuple[Any, ...], value: Any
) -> float | str:
    call = call_text(name, args)
    if value is None:
        return f"{call} failed: {_failure(ctx, name, args)}"
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"{call} returned {value!r}, not a finite number"
    return float(value)


# --- closed forms --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Comparison:
    """The student's formula against the closed form at every grader point."""

    right: int
    total: int
    wrong: tuple[str, ...]
    pattern: str
    """How the wrong values are wrong, when they are all wrong the same way; else ''."""
    ratio: float | None
    """value / expected when it is the same at every point (within 1e-6), else None."""

    @property
    def fraction(self) -> float:
        return self.right / self.total if self.total else 0.0


def _compare(found: RecordedValues, expected_values: Sequence[float], formula: str) -> _Comparison:
    """The student's values against the reference's at the same points, in the same order."""
    wrong: list[str] = []
    ratios: list[float] = []
    student: list[float] = []
    expected_all: list[float] = []
    for args, value, want in zip(found.args, found.values, expected_values, strict=True):
        expected = float(want)
        if isinstance(value, str):
            wrong.append(value)
            continue
        student.append(value)
        expected_all.append(expected)
        if abs(value - expected) <= RTOL * abs(expected):
            continue
        ratios.append(value / expected if expected else math.inf)
        said = formula if formula == exact(expected) else f"{formula} = {exact(expected)}"
        wrong.append(f"{call_text(found.name, args)} = {exact(value)}, expected {said}")
    ratio = _constant(ratios) if len(ratios) == len(found.args) else None
    return _Comparison(
        right=len(found.args) - len(wrong),
        total=len(found.args),
        wrong=tuple(wrong),
        pattern=_pattern(found.name, student, expected_all, ratio, len(wrong)),
        ratio=ratio,
    )


def _constant(values: Sequence[float]) -> float | None:
    if not values or not all(math.isfinite(v) for v in values):
        return None
    mid = float(np.median(values))
    return mid if all(abs(v - mid) <= 1e-6 * abs(mid) for v in values) else None


def _pattern(
    name: str, student: list[float], expected: list[float], ratio: float | None, wrong: int
) -> str:
    if wrong < 2 or len(student) < 2:
        return ""
    if ratio is not None:
        return f" At every point your value is {exact(ratio)} times the expected one."
    if len(set(student)) == 1 and len(set(expected)) > 1:
        return (
            f" {name} returns {exact(student[0])} whatever its arguments: does it use a variable "
            "from elsewhere in the notebook instead of its own parameter?"
        )
    return ""


def expected_values(ctx: CheckContext, name: str) -> list[float]:
    """What the reference gives for ``name`` at each of the grader's calls, in their order."""
    values: list[float] = ctx.expected("formulas")[name]
    return values


def _formula_outcome(ctx: CheckContext, name: str, formula: str, hint: str) -> Outcome:
    found = recorded_values(ctx, name)
    if isinstance(found, str):
        return Outcome.failed(f"Could not be checked: {found}", hint=hint)
    cmp = _compare(found, expected_values(ctx, name), formula)
    if not cmp.wrong:
        return Outcome.passed(
            f"{name} equals {formula} at all {cmp.total} of the grader's points "
            f"(relative tolerance {exact(RTOL)})."
        )
    return Outcome(
        fraction=cmp.fraction,
        message=_wrong_message(name, cmp),
        hint=hint,
        details={"right": cmp.right, "total": cmp.total},
    )


def _wrong_message(name: str, cmp: _Comparison) -> str:
    if cmp.total == 1:
        return f"{cmp.wrong[0]}."
    more = f" (and {len(cmp.wrong) - 3} more)" if len(cmp.wrong) > 3 else ""
    return (
        f"{name} is right at {cmp.right} of {cmp.total} of the grader's points: "
        + "; ".join(cmp.wrong[:3])
        + more
        + "."
        + cmp.pattern
    )


@check("q2.activation_variance", "(a) var(a_j) = n_in s^2 v^2", needs=("formulas",))
def activation_variance(ctx: CheckContext) -> Outcome:
    return _formula_outcome(
        ctx,
        "activation_variance",
        "n_in * sigma2 * v2",
        "a_j = sum_i w_ij x_i is a sum of n_in independent zero-mean terms, each of variance "
        "var(w_ij) var(x_i) = sigma2 * v2.",
    )


@check("q2.forward_rule", "(b) forward rule s^2 = 1/n_in", needs=("formulas",))
def forward_rule(ctx: CheckContext) -> Outcome:
    return _formula_outcome(
        ctx,
        "forward_variance",
        "1/n_in",
        "Set var(a_j) = n_in s^2 v^2 equal to v^2, the input's variance, and solve for s^2.",
    )


@check("q2.backward_rule", "(d) backward rule s^2 = 1/n_out", needs=("formulas",))
def backward_rule(ctx: CheckContext) -> Outcome:
    return _formula_outcome(
        ctx,
        "backward_variance",
        "1/n_out",
        "Backwards, each input's gradient is a sum over the n_out outputs (g_in = W^T g_out), "
        "so it is the fan-out, n_out, that must cancel: s^2 = 1/n_out.",
    )


@check("q2.xavier_rule", "(e) Xavier/Glorot s^2 = 2/(n_in + n_out)", needs=("formulas",))
def xavier_rule(ctx: CheckContext) -> Outcome:
    return _formula_outcome(
        ctx,
        "xavier_variance",
        "2/(n_in + n_out)",
        "Xavier/Glorot compromises between 1/n_in (forward) and 1/n_out (backward) with the "
        "harmonic mean of the two: 2/(n_in + n_out).",
    )


RELU_HINT = (
    "A ReLU keeps exactly half of the second moment of a symmetric pre-activation: "
    "E[y^2] = var(a)/2. The next layer sees E[y^2], not var(y): Var(w . y) = n_in s^2 E[y^2] "
    "whether or not y has mean 0. So n_in s^2 v^2 / 2 = v^2 gives s^2 = 2/n_in: the factor is 2."
)
SEED_RELU_HINT = (
    "Your rule is pi/(pi-1) ~ 1.467 times 2/n_in: that is what setting var(y) = "
    "E[y^2] - (E[y])^2 = n_in s^2 v^2 (pi-1)/(2 pi) equal to v^2 gives. But the next layer "
    "sees the second moment E[y^2], not var(y): Var(w . y) = n_in s^2 E[y^2] whether or not y "
    "has mean 0, and E[y^2] = var(a)/2. So n_in s^2 v^2 / 2 = v^2: s^2 = 2/n_in, factor 2."
)


@check("q2.relu_factor", "(c) ReLU factor 2: s^2 = 2/n_in", needs=("formulas",))
def relu_factor(ctx: CheckContext) -> Outcome:
    factor = recorded_values(ctx, "relu_factor")
    rule = recorded_values(ctx, "relu_forward_variance")
    parts, fractions, ratios = [], [], []
    for found, formula in ((factor, "2"), (rule, "2/n_in")):
        if isinstance(found, str):
            parts.append(f"Could not be checked: {found}.")
            fractions.append(0.0)
            continue
        cmp = _compare(found, expected_values(ctx, found.name), formula)
        fractions.append(cmp.fraction)
        ratios.append(cmp.ratio)
        if cmp.wrong:
            parts.append(_wrong_message(found.name, cmp))
        elif cmp.total == 1:
            parts.append(f"{found.name}() = {formula}, right.")
        else:
            parts.append(f"{found.name} equals {formula} at all {cmp.total} points.")
    fraction = sum(fractions) / 2
    seed_slip = any(r is not None and abs(r - SEED_RELU_RATIO) <= 1e-6 for r in ratios)
    if fraction == 1.0:
        return Outcome.passed(" ".join(parts))
    return Outcome(
        fraction=fraction,
        message=" ".join(parts)
        + " (relu_factor() and relu_forward_variance each carry half of this test.)",
        hint=SEED_RELU_HINT if seed_slip else RELU_HINT,
        details={"factor": fractions[0], "rule": fractions[1]},
    )


CHECKS = (activation_variance, forward_rule, relu_factor, backward_rule, xavier_rule)
"""The public tests, in the rubric's order (the hidden Monte-Carlo test is in ``hidden.py``)."""
