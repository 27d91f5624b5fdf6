"""Q2's hidden test ``q2.monte_carlo``: the student's rules keep a deep stack's signal in size.

Hidden, so it runs only in the grader (the student kit has none of this module). It does not
trust formulas at all: it takes the numbers the student's rules gave at the widths of a deep
stack and *measures*, with the reference's simulators, whether the signal keeps the size the
derivation predicts through that stack: the input's, or, through the non-square layers of the
Xavier stack, the size Glorot's rule itself gives there.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from graders.questions.api import (
    Argument,
    CheckContext,
    ExpectationContext,
    Outcome,
    check,
    expectation,
)
from graders.questions.q2_init.checks import (
    RecordedValues,
    call_text,
    exact,
    recorded_values,
    stack_calls,
)
from graders.render.numbers import number, numbers
from reference import q2_init as ref
from reference.q2_init import FloatArray, VarianceRule

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


def _rule_from(found: RecordedValues | str, needed: Sequence[Sequence[int]]) -> VarianceRule | str:
    """A (n_in, n_out) -> variance rule replaying the student's numbers at ``needed``, or why not.

    ``needed`` are the rule's own arguments (from ``stack_calls``); a one-argument rule is
    looked up by the layer's fan-in, which ``_stacks`` arranges to be the right width.
    """
    if isinstance(found, str):
        return found
    table = found.lookup()
    for args in map(tuple, needed):
        value = table.get(args, f"{call_text(found.name, args)} was not recorded")
        if isinstance(value, str):
            return value
        if value < 0:
            return f"{call_text(found.name, args)} = {exact(value)} is negative, not a variance"

    def rule(n_in: int, n_out: int) -> float:
        key = (n_in,) if len(needed[0]) == 1 else (n_in, n_out)
        return float(table[key])

    return rule


def _stack_rng(seed: int, index: int) -> np.random.Generator:
    """Stack ``index``'s own generator: its draws do not depend on the other stacks' rules."""
    return np.random.default_rng([seed, index])


def _unit_replicates(stack: _Stack, rng: np.random.Generator) -> FloatArray:
    """The stack's replicate statistics (layers x samples) with weights of std 1."""
    ones = [1.0] * (len(stack.widths) - 1)
    return ref.mc_deep_replicates(
        stack.widths, ones, rng=rng, samples=MC_SAMPLES, batch=MC_BATCH, activation=stack.activation
    )


@expectation("unit_stacks", ahead=True, kit_arguments=lambda _inputs: ())
def unit_stacks(ctx: ExpectationContext, _arguments: Mapping[str, Argument]) -> dict[str, Any]:
    """Every stack simulated with unit weights, from its own generator: the check scales these
    by the student's stds (``mc_deep_replicates``), so the simulation runs while the kernel
    does, before the student's numbers exist. Hidden: the kit stores none."""
    stack = ctx.inputs.values["stack"]
    seed = int(stack["seed"])
    return {s.rule: _unit_replicates(s, _stack_rng(seed, i)) for i, s in enumerate(_stacks(stack))}


def _scaled(stack: _Stack, rule: VarianceRule, unit: FloatArray | None) -> FloatArray | None:
    """The replicates ``rule`` gives, from the unit ones: None where scaling is not exact
    (a std of 0, a non-finite one, a signal that over- or underflows), which simulates."""
    if unit is None:
        return None
    variances = np.array([rule(i, o) for i, o in itertools.pairwise(stack.widths)], dtype=float)
    with np.errstate(all="ignore"):
        gains = np.cumprod(variances)
    if not (np.all(np.isfinite(gains)) and np.all(variances > 0) and np.all(gains > 1e-280)):
        return None
    scaled: FloatArray = unit * gains[:, None]
    return scaled if np.all(np.isfinite(scaled)) else None


def _run_stack(
    stack: _Stack, rule: VarianceRule | str, rng: np.random.Generator, unit: FloatArray | None
) -> _StackRun:
    label = f"{stack.rule}, {stack.description}"
    if isinstance(rule, str):
        return _StackRun(rule=stack.rule, ok=False, text=f"{label}: could not be measured: {rule}")
    replicates = _scaled(stack, rule, unit)
    if replicates is not None:
        moments = tuple(float(m) for m in replicates.mean(axis=1))
    else:
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
    seed = int(stack["seed"])
    needed = stack_calls(stack)
    units = ctx.expected("unit_stacks")
    runs = [
        _run_stack(
            s,
            _rule_from(recorded_values(ctx, s.rule), needed[s.rule]),
            _stack_rng(seed, i),
            units.get(s.rule),
        )
        for i, s in enumerate(_stacks(stack))
    ]
    right = sum(r.ok for r in runs)
    criterion = (
        f"Measured with your own rules' values: {MC_SAMPLES} random stacks, each fed "
        f"{MC_BATCH} Gaussian inputs of variance 1; each layer's mean E[h^2] must stay within "
        f"[{exact(1 / BAND)}, {exact(BAND)}] times what the assignment's rule gives: 1 at every "
        "layer of the first three stacks, and in the Xavier stack the product of its layers' "
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


CHECKS = (monte_carlo,)
EXPECTATIONS = (unit_stacks,)
