"""Q4's ``q4.backprop_step``: one ``train_one_sample`` call on the grader's weights changes each
layer's weights and biases by -lr times the loss gradient.

The updates are compared, not the weights (an update is ~1e-4 of a weight and would hide in
it), against the reference's step on the same inputs (``ctx.expected("train_step")``), whose
gradient the reference side holds to finite differences first, so "expected" is the true
gradient and not just another implementation's opinion. A wrong layer is named with the known
mistake it matches (``evidence``; the mistakes' own steps are ``mistake_steps``), else with its
scale or a finite-difference quote (``fd_points``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from graders.numerics.numpy_mlp import Params
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q4_backprop.checks.evidence import (
    KNOWN_MISTAKES,
    FdPoint,
    KnownMistake,
    fd_points,
)
from graders.questions.q4_backprop.checks.shared import (
    LAYERS,
    TEMPLATE_LEARNING_RATE,
    injected_params,
    params_at,
    stored_as_float32,
)
from graders.render.numbers import number

UPDATE_RTOL = 1e-5
"""An update may differ from the reference by this fraction of the layer's largest update.

float32 arithmetic (weights cast, the gradient computed in float32) stays within 3e-7 of it; the
subtlest known mistake (delta propagated through already updated weights) is off by more than
1e-3, because a step changes the weights by about lr times their gradient."""
FLOAT32_ULPS = 4
"""Weights stored back as float32 are the float64 ones rounded twice (cast, then updated): each
entry may also be off by this many float32 units in the last place of its value."""


@dataclass(frozen=True, kw_only=True)
class StepSample:
    """One grader sample: what the probe recorded after train_one_sample, and the reference."""

    index: int
    before: Params
    expected: Params
    found: Mapping[str, np.ndarray]
    """``w0, b0, ...`` after the student's step, canonical layout; empty if the call failed."""


def _update_ok(found: np.ndarray | None, before: np.ndarray, expected: np.ndarray) -> bool:
    """Compare the *updates*: they are ~1e-4 of the weights, which would hide them. Weights
    stored as float32 are compared at float32's precision."""
    if found is None or found.shape != before.shape or not np.all(np.isfinite(found)):
        return False
    want = expected - before
    scale = float(np.max(np.abs(want)))
    allowed = np.full(want.shape, UPDATE_RTOL * scale + 1e-15)
    if stored_as_float32(found):
        allowed += FLOAT32_ULPS * float(np.finfo(np.float32).eps) * np.abs(expected)
    return bool(np.all(np.abs((found - before) - want) <= allowed))


def _found(sample: StepSample, kind: str, layer: int) -> np.ndarray | None:
    value = sample.found.get(f"{kind[0]}{layer}")
    if value is None:
        return None
    return value.reshape(-1) if kind == "biases" else value


def _layer_ok(sample: StepSample, kind: str, layer: int) -> bool:
    before = (sample.before.weights if kind == "weights" else sample.before.biases)[layer]
    expected = (sample.expected.weights if kind == "weights" else sample.expected.biases)[layer]
    return _update_ok(_found(sample, kind, layer), before, expected)


def _step_samples(ctx: CheckContext, data: Mapping[str, np.ndarray]) -> list[StepSample]:
    before = injected_params(ctx)
    steps = ctx.expected("train_step")
    out = []
    for i in range(len(ctx.inputs.arrays["train_labels"])):
        found = {k.split(".", 1)[1]: v for k, v in data.items() if k.startswith(f"s{i}.")}
        expected = params_at(steps, f"s{i}.")
        out.append(StepSample(index=i, before=before, expected=expected, found=found))
    return out


def notebook_rates(ctx: CheckContext) -> dict[str, float]:
    """The notebook's globals named like a learning rate (``train_meta``: hostile JSON, so only
    the finite positive numbers under identifier names are kept)."""
    meta = ctx.json("train_meta")
    rates = meta.get("notebook_rates") if isinstance(meta, dict) else None
    if not isinstance(rates, dict):
        return {}
    return {
        name: float(value)
        for name, value in list(rates.items())[:20]
        if isinstance(name, str)
        and name.isidentifier()
        and len(name) <= 40
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    }


def other_rates(ctx: CheckContext) -> dict[float, str]:
    """Learning rates an update made without the one passed would use, in words naming what
    holds them: ``a learning rate of 0.003 (the global LEARNING_RATE, the template's default)``."""
    holders: dict[float, list[str]] = {}
    for name, value in notebook_rates(ctx).items():
        holders.setdefault(value, []).append(f"the global {name}")
    holders.setdefault(TEMPLATE_LEARNING_RATE, []).append("the template's default")
    lr = float(ctx.inputs.values["learning_rate"])
    return {
        rate: f"a learning rate of {number(rate, 6)} ({', '.join(names)})"
        for rate, names in holders.items()
        if not math.isclose(rate, lr)
    }


def _mistake_for(
    ctx: CheckContext, samples: Sequence[StepSample], wrong: Sequence[tuple[str, int]]
) -> tuple[KnownMistake, str] | None:
    """The known mistake whose updates match the student's on every wrong layer, at the rate
    passed or at one the notebook holds (then said, as the second value). The student kit holds
    the mistakes' steps at the rate passed and the template's only: at another rate it names
    no mistake (the points are the same; the words are plainer)."""
    lr = float(ctx.inputs.values["learning_rate"])
    for rate, words in {lr: "", **other_rates(ctx)}.items():
        steps = ctx.optional_expected("mistake_steps", rate=rate)
        if steps is None:
            continue
        for mistake in KNOWN_MISTAKES:
            if _matches(samples, wrong, steps, mistake):
                return mistake, words
    return None


def _matches(
    samples: Sequence[StepSample],
    wrong: Sequence[tuple[str, int]],
    steps: Mapping[str, np.ndarray],
    mistake: KnownMistake,
) -> bool:
    """Whether ``mistake``'s steps (at one rate) give the student's update on every wrong layer."""
    for s in samples:
        variant = StepSample(
            index=s.index,
            before=s.before,
            expected=params_at(steps, f"{mistake.name}.s{s.index}."),
            found=s.found,
        )
        if not all(_layer_ok(variant, kind, layer) for kind, layer in wrong):
            return False
    return True


def _scale_of_update(samples: Sequence[StepSample], kind: str, layer: int) -> float | None:
    """c when the student's update is c times the reference's (sign, learning rate)."""
    s = samples[0]
    found = _found(s, kind, layer)
    before = (s.before.weights if kind == "weights" else s.before.biases)[layer]
    expected = (s.expected.weights if kind == "weights" else s.expected.biases)[layer]
    if found is None or found.shape != before.shape:
        return None
    want, got = (expected - before).reshape(-1), (found - before).reshape(-1)
    denom = float(want @ want)
    if denom == 0:
        return None
    c = float(want @ got) / denom
    tolerance = 1e-5 * max(abs(c), 1.0) * float(np.max(np.abs(want)))
    return c if np.allclose(got, c * want, rtol=0, atol=tolerance) else None


def _rate_hint(ctx: CheckContext) -> str:
    """How train_one_sample should get its learning rate, given how the probe passed it."""
    lr = number(float(ctx.inputs.values["learning_rate"]), 6)
    meta = ctx.json("train_meta")
    how = meta.get("learning_rate_passed") if isinstance(meta, dict) else None
    set_raw = meta.get("globals_set") if isinstance(meta, dict) else None
    names = (
        [n for n in set_raw if isinstance(n, str) and n.isidentifier()][:5]
        if isinstance(set_raw, list)
        else []
    )
    if how != "none":
        return (
            f"Update with the learning_rate argument train_one_sample is called with (the grader "
            f"passed {lr}), not the global LEARNING_RATE or a number typed into the function."
        )
    if names:
        return (
            "train_one_sample takes no learning-rate parameter, so the grader set the global "
            f"{', '.join(names)} to {lr} before calling it; update with that global (or give it "
            "the assignment's signature train_one_sample(sample, y, learning_rate) and use the "
            "argument), not a number typed into the function."
        )
    return (
        "train_one_sample takes no learning-rate parameter and reads no global the grader could "
        "set (LEARNING_RATE, learning_rate or lr): give it the assignment's signature "
        "train_one_sample(sample, y, learning_rate) and update with that argument."
    )


def _scaled_update(ctx: CheckContext, names: str, scale: float) -> tuple[str, str]:
    """An update c times the reference's: made with another learning rate (the template's
    default, a global of the notebook, a typed-in number) or with another constant factor."""
    lr = float(ctx.inputs.values["learning_rate"])
    effective = scale * lr
    sign = " and with the wrong sign (gradient ascent)" if scale < 0 else ""
    for rate, words in other_rates(ctx).items():
        if math.isclose(abs(effective), rate, rel_tol=1e-3):
            return (
                f"The update did not scale with the learning rate passed: the grader passed "
                f"{number(lr, 6)}, and the update of {names} is the one {words} gives{sign}",
                _rate_hint(ctx),
            )
    return (
        f"The update of {names} is {number(scale)} times the expected one: it did not scale "
        f"with the learning rate passed, as if the rate were {number(effective)} instead of "
        f"the {number(lr, 6)} the grader passed",
        f"{_rate_hint(ctx)} Use no other factor: parameter -= learning_rate * gradient.",
    )


def _fd_evidence(
    ctx: CheckContext, sample: StepSample, kind: str, layer: int, points: Sequence[FdPoint]
) -> str:
    """The largest checked coordinate of this layer: what the loss gradient says, what changed."""
    mine = [p for p in points if p.at.kind == kind and p.at.layer == layer]
    found = _found(sample, kind, layer)
    if (
        not mine
        or found is None
        or found.shape
        != (sample.before.weights if kind == "weights" else sample.before.biases)[layer].shape
    ):
        return ""
    point = max(mine, key=lambda p: abs(p.finite_difference))
    lr = float(ctx.inputs.values["learning_rate"])
    before = (sample.before.weights if kind == "weights" else sample.before.biases)[layer]
    got = float(found[point.at.index] - before[point.at.index])
    return (
        f"at {point.at} the loss gradient is {number(point.finite_difference)} (finite "
        f"differences), so the step should change it by -lr * gradient = "
        f"{number(-lr * point.finite_difference)}; yours changed it by {number(got)}"
    )


def _before(sample: StepSample, kind: str, layer: int) -> np.ndarray:
    return (sample.before.weights if kind == "weights" else sample.before.biases)[layer]


def _unchanged(sample: StepSample, wrong: Sequence[tuple[str, int]]) -> bool:
    return all(
        np.array_equal(found, _before(sample, kind, layer))
        for kind, layer in wrong
        if (found := _found(sample, kind, layer)) is not None
    )


def _describe_wrong_layers(
    ctx: CheckContext,
    samples: Sequence[StepSample],
    wrong: Sequence[tuple[str, int]],
    points: Sequence[FdPoint],
) -> tuple[str, str]:
    names = ", ".join(f"{kind}[{layer}]" for kind, layer in wrong)
    first = next(s for s in samples if any(not _layer_ok(s, k, lay) for k, lay in wrong))
    if not first.found:
        reason = ctx.why_missing(f"train_one_sample[{first.index}]")
        return f"train_one_sample failed on grader sample {first.index}: {reason}", ""
    if _unchanged(first, wrong):
        return (
            f"{names} did not change after train_one_sample",
            "train_one_sample must update the global `weights` and `biases` in place "
            "(weights[i] -= learning_rate * gradient), or return the new (weights, biases).",
        )
    lr = float(ctx.inputs.values["learning_rate"])
    found_mistake = _mistake_for(ctx, samples, wrong)
    if found_mistake is not None:
        mistake, rate_words = found_mistake
        if not rate_words:
            return f"The update of {names} {mistake.message}", mistake.hint
        return (
            f"The update did not scale with the learning rate passed: the update of {names} "
            f"{mistake.message}, made with {rate_words} instead of the {number(lr, 6)} the "
            "grader passed",
            f"{mistake.hint} {_rate_hint(ctx)}",
        )
    kind, layer = wrong[0]
    scale = _scale_of_update(samples, kind, layer)
    if scale is not None and math.isclose(scale, -1.0, rel_tol=1e-3):
        return (
            f"The update of {names} has the wrong sign (gradient ascent)",
            "Update with parameter -= learning_rate * gradient.",
        )
    if scale is not None and not math.isclose(scale, 1.0, rel_tol=1e-3):  # ~1: precision, not rate
        every = len(wrong) == 2 * (len(LAYERS) - 1)
        return _scaled_update(ctx, "every layer's weights and biases" if every else names, scale)
    evidence = _fd_evidence(ctx, first, kind, layer, points)
    return (
        f"The update of {names} differs from -lr * the loss gradient"
        + (f": {evidence}" if evidence else ""),
        "Check the backward pass of the layers named: delta of the output layer = softmax "
        "output - one_hot(y); delta of a hidden layer = (delta_next @ W_next.T) * dsigmoid(z); "
        "gradient of W = outer(a_prev, delta), of b = delta.",
    )


def layer_scores(ctx: CheckContext) -> dict[tuple[str, int], bool]:
    """(weights or biases, layer) -> whether ``train_one_sample`` updated it right on every
    grader sample; computed once per question (``q4.final_accuracy`` reads it too)."""

    def compute() -> dict[tuple[str, int], bool]:
        samples = _step_samples(ctx, ctx.npz("train_step") or {})
        return {
            (kind, layer): bool(samples) and all(_layer_ok(s, kind, layer) for s in samples)
            for layer in range(len(LAYERS) - 1)
            for kind in ("weights", "biases")
        }

    return ctx.once("q4.backprop_step.layer_scores", compute)


def step_verified(ctx: CheckContext) -> bool:
    """Whether the grader found every layer's update right (``q4.backprop_step`` passes)."""
    return all(layer_scores(ctx).values())


@check("q4.backprop_step", "train_one_sample: one SGD step on the grader's weights")
def backprop_step(ctx: CheckContext) -> Outcome:
    """A third per layer, half for its weights and half for its biases, over all samples.

    The reference update is held to finite differences of the loss first (by the reference side,
    before any value reaches this check), so "expected" below is -lr times the true gradient,
    not just another implementation's opinion.
    """
    points = fd_points(ctx.expected("fd_points"))
    data = ctx.npz("train_step") or {}
    samples = _step_samples(ctx, data)
    n_layers = len(LAYERS) - 1
    scores = layer_scores(ctx)
    fraction = sum(0.5 / n_layers for ok in scores.values() if ok)
    wrong = [key for key, ok in scores.items() if not ok]
    checked = (
        f"on {len(samples)} grader samples; the expected update is -lr * the loss gradient, "
        "confirmed by finite differences"
    )
    if not wrong:
        return Outcome.passed(f"Every layer's update is right ({checked}).")
    if not data:
        return Outcome.failed(f"Could not be checked: {ctx.why_missing('train_one_sample')}")
    message, hint = _describe_wrong_layers(ctx, samples, wrong, points)
    right = [f"{k}[{lay}]" for (k, lay), ok in scores.items() if ok]
    if right:
        message += f". Correct: {', '.join(right)}"
    return Outcome(fraction=fraction, message=message + f" ({checked}).", hint=hint)
