"""Q4's ``q4.final_accuracy``: the grader's own test accuracy of the trained weights, on the real
MNIST test set, against the threshold calibrated for the profile.

Recomputed from the final weights with ``graders.numerics.numpy_mlp``; the accuracy the
notebook printed is not read here (``q4.reported_consistent`` holds it to this measurement). The
test images are put through the same pixel scaling the notebook trained on, and a low accuracy
is explained by its likeliest cause (a network never trained, a failing cell).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from graders.numerics.numpy_mlp import Params, evaluate_dataset
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.common import first_cell_error, load_test_set
from graders.questions.q4_backprop.checks.backprop import step_verified
from graders.questions.q4_backprop.checks.shared import canonical_params
from graders.render.numbers import number, percent


@dataclass(frozen=True, kw_only=True)
class Pixels:
    """The preprocessing a notebook trained on, as an affine map of the 0-255 pixel values.

    The network is measured on the grader's test images put through the same map, and held
    to the threshold calibrated for that kind of input: the course's starter code never
    divides by 255, and a correct backprop on raw pixels learns more slowly (saturated
    sigmoids), so it has its own calibrated threshold.
    """

    scale: float
    shift: float
    kind: str
    """``unit`` (x / 255), ``raw`` (0-255 as stored) or ``affine`` (another linear rescaling)."""
    words: str
    """How the report names it."""

    @property
    def large(self) -> bool:
        """Raw 0-255 pixels, or another range reaching above 10: what saturates sigmoids."""
        return self.kind == "raw" or (self.kind == "affine" and 255 * self.scale + self.shift > 10)


UNIT_WORDS = "pixels divided by 255, as the assignment loads them"


def _pixels(ctx: CheckContext) -> tuple[Pixels, str]:
    """The notebook's pixel scale from the range of its training images, and a note when the
    grader had to assume the assignment's ``/ 255``."""
    unit = Pixels(scale=1 / 255, shift=0.0, kind="unit", words=UNIT_WORDS)
    info = ctx.json("input_scale")
    fields = info if isinstance(info, dict) else {}
    low, high, name = fields.get("min"), fields.get("max"), fields.get("name")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (low, high)):
        if info is None:
            why = ctx.why_missing("input_scale")
        elif "min" in fields:
            why = "their range is not finite"
        else:
            why = "no global array of shape (N, 784) or (N, 28, 28), such as `x_train`"
        return unit, f"The training images were not found ({why}): /255 assumed."
    assert isinstance(low, int | float) and isinstance(high, int | float)
    where = f"`{name}`" if isinstance(name, str) and name.isidentifier() else "the training images"
    if abs(low) <= 1e-3 and abs(high - 1.0) <= 1e-3:
        return unit, ""
    if abs(low) <= 1e-3 and abs(high - 255.0) <= 0.5:
        words = f"raw 0-255 pixels, as {where} holds them (never divided by 255)"
        return Pixels(scale=1.0, shift=0.0, kind="raw", words=words), ""
    if high <= low:
        return unit, f"{where} holds one value only ({number(low)}): /255 assumed."
    words = (
        f"pixels rescaled to [{number(low)}, {number(high)}], as {where} holds them "
        f"(the grader applies the same linear map to its test images)"
    )
    return Pixels(scale=(high - low) / 255.0, shift=float(low), kind="affine", words=words), ""


UNIT_KEY = "q4.min_test_accuracy"
RAW_KEY = "q4.min_test_accuracy_raw"


def _threshold_key(ctx: CheckContext, pixels: Pixels) -> tuple[str, bool]:
    """The threshold that applies, and whether the raw-pixel one was withheld.

    The raw-pixel threshold is calibrated on a *correct* backprop slowed by saturated sigmoids,
    and the pixel range it is chosen by is the notebook's own account (the probe reads the
    training array after the notebook ran). A network trained on /255 pixels is the same
    function on raw pixels with its first layer divided by 255, so a notebook could rescale
    both and claim the lower threshold for a network its wrong backprop left short of the
    assignment's. The grader therefore grants it only where it has verified the update itself.
    """
    if not pixels.large:
        return UNIT_KEY, False
    if step_verified(ctx):
        return RAW_KEY, False
    return UNIT_KEY, True


def _test_set(
    ctx: CheckContext, pixels: Pixels, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The grader's test images on the notebook's pixel scale: the first ``limit`` (else the
    profile's TEST_LIMIT, as the notebook is told)."""
    if limit is None:
        limit = ctx.profile.parameters_for("q4").get("TEST_LIMIT")
    if pixels.kind in ("unit", "raw"):  # exactly as the notebook computes them
        return load_test_set(ctx, "MNIST", pixels=pixels.kind, limit=limit)
    raw, labels = load_test_set(ctx, "MNIST", pixels="raw", limit=limit)
    return raw.astype(np.float64) * pixels.scale + pixels.shift, labels


def _never_trained(ctx: CheckContext, final: Params) -> bool:
    initial, _ = canonical_params(ctx.npz("init") or {})
    return initial is not None and all(
        np.array_equal(a, b)
        for a, b in zip(
            (*initial.weights, *initial.biases), (*final.weights, *final.biases), strict=True
        )
    )


def _why_low(ctx: CheckContext, final: Params) -> tuple[str, str]:
    """The likeliest cause of a low accuracy, as (sentence, hint)."""
    cause = first_cell_error(ctx)
    if _never_trained(ctx, final):
        return (
            "Your final weights are exactly your initial weights: the network was never "
            f"trained{f' ({cause})' if cause else ''}.",
            "Run the training cell: EPOCHS epochs of train_one_epoch() over x_train, with the "
            "data read from DATA_ROOT.",
        )
    return (
        f"Note: {cause}." if cause else "",
        "Train for EPOCHS epochs with train_one_sample over the whole training set, in order; "
        "check q4.init and q4.backprop_step first.",
    )


@dataclass(frozen=True, kw_only=True)
class Measured:
    """The grader's own measurement of the final weights on its test images."""

    params: Params
    correct: int
    total: int
    loss: float
    """Mean cross-entropy; inf where a softmax output underflowed to 0 for a true class."""
    pixels: Pixels
    note: str
    """Said when the pixel scale had to be assumed ("" otherwise)."""

    @property
    def accuracy(self) -> float:
        return self.correct / self.total


def measure_final(ctx: CheckContext, limit: int | None = None) -> Measured | Outcome:
    """The final weights measured on the first ``limit`` test images (else the profile's
    TEST_LIMIT), or the failed Outcome saying why they cannot be."""
    if not ctx.has("final"):
        return Outcome.failed(f"Could not be checked: {ctx.why_missing('final_weights')}")
    params, problem = canonical_params(ctx.npz("final") or {})
    if params is None:
        return Outcome.failed(
            f"Final weights: {problem}",
            hint="Keep the trained network in the global lists `weights` and `biases`.",
        )
    pixels, note = _pixels(ctx)
    x, y = _test_set(ctx, pixels, limit)
    with np.errstate(all="ignore"):
        loss, correct = evaluate_dataset(params, x, y)
    return Measured(
        params=params, correct=correct, total=len(y), loss=loss, pixels=pixels, note=note
    )


@check("q4.final_accuracy", "The grader's own test accuracy of the trained weights")
def final_accuracy(ctx: CheckContext) -> Outcome:
    """Recomputed from the final weights on the real test set; printed numbers are never read
    here (``q4.reported_consistent`` holds them to this measurement).

    The threshold alone decides. Final weights equal to the initial ones only explain a
    failure: a notebook that initializes and trains in one cell has its snapshot taken after
    training, and must not fail for it.
    """
    m = measure_final(ctx)
    if isinstance(m, Outcome):
        return m
    key, withheld = _threshold_key(ctx, m.pixels)
    required = ctx.threshold(key)
    details = {
        "accuracy": m.accuracy,
        "correct": m.correct,
        "total": m.total,
        "mean_loss": m.loss,
        "pixels": m.pixels.kind,
        "threshold_key": key,
    }
    measured = (
        f"The grader's test accuracy of your final weights is {percent(m.accuracy)} "
        f"({m.correct} / {m.total} test images, mean loss {number(m.loss)}) on "
        f"{m.pixels.words}; at least {percent(required)} is required "
        + (
            f"(profile {ctx.profile.name}): the lower threshold for raw pixels "
            f"({percent(ctx.threshold(RAW_KEY))}) is for a train_one_sample the grader has "
            "verified (q4.backprop_step), and yours was not."
            if withheld
            else f"for that input (profile {ctx.profile.name})."
        )
    )
    if m.note:
        measured = f"{measured} {m.note}"
    if m.accuracy >= required:
        return Outcome.passed(measured, **details)
    why, hint = _why_low(ctx, m.params)
    return Outcome.failed(f"{measured} {why}".strip(), hint=hint, **details)
