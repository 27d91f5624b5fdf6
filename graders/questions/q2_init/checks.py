"""Q2's tests: the derived variances, as closed forms and as Monte-Carlo measurements.

The closed-form tests compare the student's functions, at the grader's random points, with
``reference.q2_init`` (relative tolerance 1e-6; credit by the fraction of points right) and,
when every point is off in the same way, say how (a constant factor, an ignored argument, the
seed's var(y)-for-E[y^2] slip). The hidden Monte-Carlo test does not trust formulas at all: it
takes the numbers the student's rules gave at the widths of a deep stack and *measures*, with
the reference's simulators, whether the signal keeps the size the derivation predicts through
that stack: the input's, or, through the non-square layers of the Xavier stack, the size
Glorot's rule itself gives there.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graders.questions.api import CheckContext, Outcome, check
from graders.render.numbers import number, numbers
from reference import q2_init as ref
from reference.q2_init import VarianceRule

RTOL = 1e-6
"""Relative tolerance of the closed-form comparisons: far above rounding, far below any slip."""
BAND = 4.0
"""A Monte-Carlo stack passes while every layer's E[h^2] stays within [1/BAND, BAND] times what
the assignment's rule gives there. Measured for correct rules at width 64 over 600 seeds: the
worst layer of a 10-layer ReLU stack was off by a factor 1.52 (linear: 1.13); a single
replicate's statistic varies with a log-sd of about 0.67 and its largest of 20,000 was 10, so
the mean of 32 replicates cannot reach 4 (nor 1/4). The stacks now drawn are wider (150-220;
over 150 seeds the worst layer was off 1.26 with ReLU, 1.06 linear, and 1.10 in the Xavier
stack's 40-50 / 180-220 layers). A rule off by 15 % per layer leaves the band within 10
layers; the seed's ReLU rule (x1.47 per layer) ends 46 times too large."""
MC_SAMPLES = 32
"""Independent replicates (fresh weights and inputs) per stack."""
MC_BATCH = 16
"""Inputs pushed through each replicate."""
SEED_RELU_RATIO = math.pi / (math.pi - 1)
"""How far the seed's part (c) answer is from He's: 2 pi / ((pi - 1) n_in) over 2 / n_in."""


def stack_calls(stack: Mapping[str, Any]) -> dict[str, list[list[int]]]:
    """The arguments at which the Monte-Carlo test needs each rule's value."""
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


def _g(value: float) -> str:
    return number(value, EXACT_DIGITS)


def _call_text(name: str, args: Sequence[Any]) -> str:
    return f"{name}({', '.join(str(a) for a in args)})"


# --- reading the probe's record ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Values:
    """One formula's values at the grader's points: a float, or why there is none."""

    name: str
    args: tuple[tuple[Any, ...], ...]
    values: tuple[float | str, ...]

    def lookup(self) -> dict[tuple[Any, ...], float | str]:
        return dict(zip(self.args, self.values, strict=True))


def _values(ctx: CheckContext, name: str) -> _Values | str:
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
    return _Values(name=name, args=tuple(calls), values=tuple(values))


def _failure(ctx: CheckContext, name: str, args: tuple[Any, ...]) -> str:
    """The probe's words for a call that produced no value."""
    step = f"{name}[{', '.join(str(a) for a in args)}]"
    errors = [e for e in ctx.probe_errors(name) if e.step == step]
    return errors[0].message if errors else "no value was recorded"


def _number_or_reason(
    ctx: CheckContext, name: str, args: tuple[Any, ...], value: Any
) -> float | str:
    call = _call_text(name, args)
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


def _compare(found: _Values, closed: Callable[..., float], formula: str) -> _Comparison:
    wrong: list[str] = []
    ratios: list[float] = []
    student: list[float] = []
    expected_all: list[float] = []
    for args, value in zip(found.args, found.values, strict=True):
        expected = float(closed(*args))
        if isinstance(value, str):
            wrong.append(value)
            continue
        student.append(value)
        expected_all.append(expected)
        if abs(value - expected) <= RTOL * abs(expected):
            continue
        ratios.append(value / expected if expected else math.inf)
        said = formula if formula == _g(expected) else f"{formula} = {_g(expected)}"
        wrong.append(f"{_call_text(found.name, args)} = {_g(value)}, expected {said}")
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
        return f" At every point your value is {_g(ratio)} times the expected one."
    if len(set(student)) == 1 and len(set(expected)) > 1:
        return (
            f" {name} returns {_g(student[0])} whatever its arguments: does it use a variable "
            "from elsewhere in the notebook instead of its own parameter?"
        )
    return ""


def _formula_outcome(
    ctx: CheckContext,
    name: str,
    closed: Callable[..., float],
    formula: str,
    hint: str,
) -> Outcome:
    found = _values(ctx, name)
    if isinstance(found, str):
        return Outcome.failed(f"Could not be checked: {found}", hint=hint)
    cmp = _compare(found, closed, formula)
    if not cmp.wrong:
        return Outcome.passed(
            f"{name} equals {formula} at all {cmp.total} of the grader's points "
            f"(relative tolerance {_g(RTOL)})."
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
        ref.activation_variance,
        "n_in * sigma2 * v2",
        "a_j = sum_i w_ij x_i is a sum of n_in independent zero-mean terms, each of variance "
        "var(w_ij) var(x_i) = sigma2 * v2.",
    )


@check("q2.forward_rule", "(b) forward rule s^2 = 1/n_in", needs=("formulas",))
def forward_rule(ctx: CheckContext) -> Outcome:
    return _formula_outcome(
        ctx,
        "forward_variance",
        ref.forward_variance,
        "1/n_in",
        "Set var(a_j) = n_in s^2 v^2 equal to v^2, the input's variance, and solve for s^2.",
    )


@check("q2.backward_rule", "(d) backward rule s^2 = 1/n_out", needs=("formulas",))
def backward_rule(ctx: CheckContext) -> Outcome:
    return _formula_outcome(
        ctx,
        "backward_variance",
        ref.backward_variance,
        "1/n_out",
        "Backwards, each input's gradient is a sum over the n_out outputs (g_in = W^T g_out), "
        "so it is the fan-out, n_out, that must cancel: s^2 = 1/n_out.",
    )


@check("q2.xavier_rule", "(e) Xavier/Glorot s^2 = 2/(n_in + n_out)", needs=("formulas",))
def xavier_rule(ctx: CheckContext) -> Outcome:
    return _formula_outcome(
        ctx,
        "xavier_variance",
        ref.xavier_variance,
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
    factor = _values(ctx, "relu_factor")
    rule = _values(ctx, "relu_forward_variance")
    parts, fractions, ratios = [], [], []
    for found, closed, formula in (
        (factor, ref.relu_factor, "2"),
        (rule, ref.relu_forward_variance, "2/n_in"),
    ):
        if isinstance(found, str):
            parts.append(f"Could not be checked: {found}.")
            fractions.append(0.0)
            continue
        cmp = _compare(found, closed, formula)
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


# --- Monte Carlo -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _StackRun:
    """One rule pushed through one stack: did the signal keep the expected size, in words."""

    rule: str
    ok: bool
    text: str
    moments: tuple[float, ...] = ()


@dataclass(frozen=True, kw_only=True)
class _Stack:
    """Which rule drives which stack, what the assignment's rule gives there, in words."""

    rule: str
    description: str
    widths: tuple[int, ...]
    activation: ref.Activation
    correct: VarianceRule
    """The assignment's rule, (n_in, n_out) -> variance: the measurement is held to its result."""
    versus: str = ""
    """The rule named where its result is not simply the input's size ('' there)."""

    @property
    def expected(self) -> tuple[float, ...]:
        """E[h^2] after each layer with the assignment's rule, from inputs of variance 1: each
        layer multiplies it by n_in s^2 (half that after a ReLU)."""
        gain = 0.5 if self.activation == "relu" else 1.0
        factors = (i * self.correct(i, o) * gain for i, o in itertools.pairwise(self.widths))
        return tuple(itertools.accumulate(factors, operator.mul))


def _stacks(stack: Mapping[str, Any]) -> tuple[_Stack, ...]:
    widths = tuple(int(w) for w in stack["widths"])
    xavier = tuple(int(w) for w in stack["xavier_widths"])
    path = " -> ".join(str(w) for w in widths)
    back = " -> ".join(str(w) for w in reversed(widths))
    return (
        _Stack(
            rule="forward_variance",
            description=f"linear stack {path}",
            widths=widths,
            activation="linear",
            correct=lambda n_in, _: ref.forward_variance(n_in),
        ),
        _Stack(
            rule="relu_forward_variance",
            description=f"ReLU stack {path}",
            widths=widths,
            activation="relu",
            correct=lambda n_in, _: ref.relu_forward_variance(n_in),
        ),
        # Backwards, g_in = W^T g_out is a forward pass through the reversed widths, and the
        # reversed pass's fan-in is the forward layer's fan-out: the rule's own argument.
        _Stack(
            rule="backward_variance",
            description=f"gradients flowing back through the same stack ({back})",
            widths=widths[::-1],
            activation="linear",
            correct=lambda n_out, _: ref.backward_variance(n_out),
        ),
        # Non-square layers: 1/n_in, 1/n_out, 1/sqrt(n_in n_out) and Glorot's rule all differ.
        _Stack(
            rule="xavier_variance",
            description=(
                f"linear stack {' -> '.join(str(w) for w in xavier)} (narrow and wide layers in "
                "turn, where 2/(n_in + n_out) multiplies the signal by 2 n_in/(n_in + n_out) "
                "per layer)"
            ),
            widths=xavier,
            activation="linear",
            correct=ref.xavier_variance,
            versus="2/(n_in + n_out)",
        ),
    )


def _rule_from(found: _Values | str, needed: Sequence[Sequence[int]]) -> VarianceRule | str:
    """A (n_in, n_out) -> variance rule replaying the student's numbers at ``needed``, or why not.

    ``needed`` are the rule's own arguments (from ``stack_calls``); a one-argument rule is
    looked up by the layer's fan-in, which ``_stacks`` arranges to be the right width.
    """
    if isinstance(found, str):
        return found
    table = found.lookup()
    for args in map(tuple, needed):
        value = table.get(args, f"{_call_text(found.name, args)} was not recorded")
        if isinstance(value, str):
            return value
        if value < 0:
            return f"{_call_text(found.name, args)} = {_g(value)} is negative, not a variance"

    def rule(n_in: int, n_out: int) -> float:
        key = (n_in,) if len(needed[0]) == 1 else (n_in, n_out)
        return float(table[key])

    return rule


def _run_stack(stack: _Stack, rule: VarianceRule | str, rng: np.random.Generator) -> _StackRun:
    label = f"{stack.rule}, {stack.description}"
    if isinstance(rule, str):
        return _StackRun(rule=stack.rule, ok=False, text=f"{label}: could not be measured: {rule}")
    with np.errstate(all="ignore"):
        estimates = ref.mc_deep_forward(
            stack.widths,
            rule,
            rng=rng,
            samples=MC_SAMPLES,
            batch=MC_BATCH,
            activation=stack.activation,
        )
    moments = tuple(e.value for e in estimates)
    ratios = tuple(m / e for m, e in zip(moments, stack.expected, strict=True))
    ok = all(math.isfinite(r) and 1 / BAND <= r <= BAND for r in ratios)
    text = f"{label}: E[h^2] after layers 1..{len(moments)} = {numbers(moments, 3)}"
    if stack.versus:
        text += f", where {stack.versus} gives {numbers(stack.expected, 3)}"
    if not ok:
        text += f" ({_drift(ratios, stack.versus)})"
    return _StackRun(rule=stack.rule, ok=ok, text=text, moments=moments)


def _drift(ratios: Sequence[float], versus: str) -> str:
    """How the signal left the band: measured over expected, at the layer furthest out."""
    last = ratios[-1]
    if not math.isfinite(last):
        return "it overflowed: the signal explodes"
    if last <= 0:
        return "it reached 0: the signal vanishes"
    layer = max(range(len(ratios)), key=lambda i: abs(math.log(ratios[i])))
    per_layer = ratios[layer] ** (1 / (layer + 1))
    way = "explodes" if per_layer > 1 else "vanishes"
    said = f"the signal {way}, by about x{number(per_layer, 3)} per layer"
    if not versus:
        return said
    return (
        f"layer {layer + 1} gives {number(ratios[layer], 3)} times what {versus} gives: "
        f"compared with it, {said}"
    )


@check(
    "q2.monte_carlo",
    "Your rules keep a deep stack's signal at the size their derivations predict",
    needs=("formulas",),
)
def monte_carlo(ctx: CheckContext) -> Outcome:
    stack = ctx.inputs.values["stack"]
    rng = np.random.default_rng(int(stack["seed"]))
    needed = stack_calls(stack)
    runs = [
        _run_stack(s, _rule_from(_values(ctx, s.rule), needed[s.rule]), rng) for s in _stacks(stack)
    ]
    right = sum(r.ok for r in runs)
    criterion = (
        f"Measured with your own rules' values: {MC_SAMPLES} random stacks, each fed "
        f"{MC_BATCH} Gaussian inputs of variance 1; each layer's mean E[h^2] must stay within "
        f"[{_g(1 / BAND)}, {_g(BAND)}] times what the assignment's rule gives: 1 at every layer "
        "of the first three stacks, and in the Xavier stack the product of its layers' "
        "2 n_in/(n_in + n_out)."
    )
    texts = " | ".join(r.text for r in sorted(runs, key=lambda r: r.ok))
    details = {r.rule: list(r.moments) for r in runs}
    if right == len(runs):
        return Outcome(fraction=1.0, message=f"{texts}. {criterion}", details=details)
    return Outcome(
        fraction=right / len(runs),
        message=f"{right} of {len(runs)} rules keep the signal at the size they should. {texts}. "
        + criterion,
        hint=(
            f"Look again at {', '.join(r.rule for r in runs if not r.ok)}. A rule off by a "
            "factor c multiplies the signal by about c at every layer: over 10 layers c = 1.47 "
            "makes it 47 times larger and c = 0.5 a thousand times smaller."
        ),
        details=details,
    )


CHECKS = (activation_variance, forward_rule, relu_factor, backward_rule, xavier_rule, monte_carlo)
