"""Q4's ``q4.backprop_step``: one ``train_one_sample`` call on the grader's weights changes each
layer's weights and biases by -lr times the loss gradient.

The updates are compared, not the weights (an update is ~1e-4 of a weight and would hide in
it), and the reference's own gradient is held to finite differences first, so "expected" is
the true gradient and not just another implementation's opinion. A wrong layer is named with
the known mistake it matches (``diagnose``), else with its scale or a finite-difference quote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q4_backprop import diagnose
from graders.questions.q4_backprop.checks.shared import LAYERS, injected_params
from graders.render.numbers import number
from reference import q4_numpy as ref

UPDATE_RTOL = 1e-6
"""An update may differ from the reference by this fraction of the layer's largest update."""


@dataclass(frozen=True, kw_only=True)
class StepSample:
    """One grader sample: what the probe recorded after train_one_sample, and the reference."""

    index: int
    before: ref.Params
    expected: ref.Params
    found: Mapping[str, np.ndarray]
    """``w0, b0, ...`` after the student's step, canonical layout; empty if the call failed."""


def _update_ok(found: np.ndarray | None, before: np.ndarray, expected: np.ndarray) -> bool:
    """Compare the *updates*: they are ~1e-4 of the weights, which would hide them."""
    if found is None or found.shape != before.shape or not np.all(np.isfinite(found)):
        return False
    want = expected - before
    scale = float(np.max(np.abs(want)))
    return bool(np.allclose(found - before, want, rtol=0.0, atol=UPDATE_RTOL * scale + 1e-15))


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
    arrays = ctx.inputs.arrays
    lr = float(ctx.inputs.values["learning_rate"])
    before = injected_params(ctx)
    out = []
    for i, (x, y) in enumerate(zip(arrays["train_samples"], arrays["train_labels"], strict=True)):
        found = {k.split(".", 1)[1]: v for k, v in data.items() if k.startswith(f"s{i}.")}
        expected = ref.train_one_sample(before, x, int(y), lr)
        out.append(StepSample(index=i, before=before, expected=expected, found=found))
    return out


def _mistake_for(
    ctx: CheckContext, samples: Sequence[StepSample], wrong: Sequence[tuple[str, int]]
) -> diagnose.KnownMistake | None:
    """The known mistake whose updates match the student's on every wrong layer."""
    arrays, lr = ctx.inputs.arrays, float(ctx.inputs.values["learning_rate"])
    for mistake in diagnose.KNOWN_MISTAKES:
        variants = [
            StepSample(
                index=s.index,
                before=s.before,
                expected=mistake.update(
                    s.before,
                    arrays["train_samples"][s.index],
                    int(arrays["train_labels"][s.index]),
                    lr,
                ),
                found=s.found,
            )
            for s in samples
        ]
        if all(_layer_ok(v, kind, layer) for v in variants for kind, layer in wrong):
            return mistake
    return None


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


def _fd_evidence(
    ctx: CheckContext, sample: StepSample, kind: str, layer: int, points: Sequence[diagnose.FdPoint]
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
    points: Sequence[diagnose.FdPoint],
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
    mistake = _mistake_for(ctx, samples, wrong)
    if mistake is not None:
        return f"The update of {names} {mistake.message}", mistake.hint
    kind, layer = wrong[0]
    scale = _scale_of_update(samples, kind, layer)
    if scale is not None and math.isclose(scale, -1.0, rel_tol=1e-3):
        return (
            f"The update of {names} has the wrong sign (gradient ascent)",
            "Update with parameter -= learning_rate * gradient.",
        )
    if scale is not None:
        lr = float(ctx.inputs.values["learning_rate"])
        return (
            f"The update of {names} is {number(scale)} times the expected one",
            f"Use the learning_rate argument (the grader passed {number(lr, 6)}) and no other "
            "factor.",
        )
    evidence = _fd_evidence(ctx, first, kind, layer, points)
    return (
        f"The update of {names} differs from -lr * the loss gradient"
        + (f": {evidence}" if evidence else ""),
        "Check the backward pass of the layers named: delta of the output layer = softmax "
        "output - one_hot(y); delta of a hidden layer = (delta_next @ W_next.T) * dsigmoid(z); "
        "gradient of W = outer(a_prev, delta), of b = delta.",
    )


@check("q4.backprop_step", "train_one_sample: one SGD step on the grader's weights")
def backprop_step(ctx: CheckContext) -> Outcome:
    """A third per layer, half for its weights and half for its biases, over all samples.

    The reference update is held to finite differences of the loss first, so "expected" below
    is -lr times the true gradient, not just another implementation's opinion.
    """
    arrays = ctx.inputs.arrays
    _, points = diagnose.verified_gradients(
        injected_params(ctx), arrays["train_samples"][0], int(arrays["train_labels"][0])
    )
    data = ctx.npz("train_step") or {}
    samples = _step_samples(ctx, data)
    n_layers = len(LAYERS) - 1
    scores = {
        (kind, layer): all(_layer_ok(s, kind, layer) for s in samples)
        for layer in range(n_layers)
        for kind in ("weights", "biases")
    }
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
