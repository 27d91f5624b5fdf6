"""Q3's ``q3.test_accuracy``, and the grader's own measure of the trained weights that it, the
history comparison and the sample probabilities are all scored on.

No number the student's code computed is used: the trained weights the probe saved go into the
reference network when they fit it (extra tensors such as a buffer are passed over), else into
an MLP of the student's own layer sizes with ReLU between them, so that a wrong architecture
costs the architecture test and not every test after it. The Linear layers are loaded in the
order the student's forward applies them (the probe traced it), not the order ``__init__``
created them in. The probe's own run of the student's
model on the test images is never scored: a forward pass can return anything (one looked the
labels up in the test set's file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from graders.numerics import relu_mlp
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.common import load_test_set
from graders.questions.q3_fashion_mlp.checks.shared import (
    DATASET,
    LAYERS,
    N_CLASSES,
    FloatArray,
    parameter,
    real,
    used_order_state,
    why,
)
from graders.render.numbers import number

UNTRAINED_BELOW = 0.2
"""Accuracies below this are called untrained in the message: 300 random initialisations of the
network scored 0.05-0.19 on the 1,000-image test slice (mean 0.10)."""


# -- the grader's own measure of the trained weights ---------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Measure:
    """The trained model's outputs on the grader's test set, and what they score."""

    logits: FloatArray
    labels: np.ndarray
    accuracy: float
    loss: float
    source: str
    """Which forward pass produced ``logits``, in words for the student."""


REFERENCE_SOURCE = "the reference 784-256-128-64-10 network loaded with your trained weights"


def _mapped(ctx: CheckContext) -> tuple[relu_mlp.Pairs | None, str]:
    """The student's trained weights in the assignment's network, or None and why not."""
    state = used_order_state(ctx)
    if state is None:
        return None, f"no trained weights were saved ({why(ctx, 'model')})"
    try:
        return relu_mlp.fitted_pairs(state), ""
    except ValueError as exc:
        return None, f"your weights do not fit the reference network: {exc}"


def _linear_chain(state: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (weight, bias) pairs of a stack of Linear layers from 784 inputs to 10 outputs, in
    the order the state holds them (torch's (out, in) weights; ``used_order_state`` puts them
    in the order forward applies them); [] when there is none."""
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    values = list(state.values())
    width = LAYERS[0]
    for weight, bias in pairwise(values):
        if weight.ndim == 2 and bias.shape == (weight.shape[0],) and weight.shape[1] == width:
            pairs.append((weight, bias))
            width = weight.shape[0]
            if width == N_CLASSES:
                return pairs
    return []


@dataclass(frozen=True, kw_only=True)
class Measuring:
    """The network the grader measures the student's trained weights with, and in words."""

    pairs: relu_mlp.Pairs
    """The Linear layers' (weight, bias), float32, for ``relu_mlp``: ReLU between them."""
    source: str


@dataclass(frozen=True, kw_only=True)
class InputNormalization:
    """The notebook's ``Normalize`` steps as one: its model saw ``(x - shift) / scale``."""

    shift: float
    scale: float
    words: str


def _normalize_step(step: object) -> tuple[float, float] | None:
    """A ``Normalize`` step's (mean, std) for one grey channel, or None if it is not one the
    grader can apply (several different values, a zero or absurd std, no numbers at all)."""
    if not isinstance(step, dict):
        return None
    means, stds = step.get("mean"), step.get("std")
    if not isinstance(means, list) or not isinstance(stds, list) or not means or not stds:
        return None
    mean_values = {real(v) for v in means}
    std_values = {real(v) for v in stds}
    if len(mean_values) != 1 or len(std_values) != 1:
        return None
    (mean,), (std,) = mean_values, std_values
    if mean is None or std is None or not 1e-6 <= abs(std) <= 1e6 or abs(mean) > 1e6:
        return None
    return mean, std


def input_normalization(ctx: CheckContext) -> InputNormalization | None:
    """What the notebook's transform does to a pixel, as far as the grader applies it: every
    ``Normalize`` step of the training data's transform, in order (the probe read them from the
    live dataset); None when there is none, or one the grader cannot apply."""
    summary = ctx.json("model_summary")
    found = summary.get("input_transform") if isinstance(summary, dict) else None
    steps = found.get("steps") if isinstance(found, dict) else None
    if not isinstance(steps, list):
        return None
    shift, scale, shown = 0.0, 1.0, []
    for step in steps[:20]:
        if not isinstance(step, dict) or step.get("type") != "Normalize":
            continue
        pair = _normalize_step(step)
        if pair is None:
            return None
        mean, std = pair
        shift, scale = shift + mean * scale, scale * std
        shown.append(f"Normalize({number(mean)}, {number(std)})")
    if not shown:
        return None
    return InputNormalization(shift=shift, scale=scale, words=" then ".join(shown))


def measuring_model(ctx: CheckContext) -> Measuring | Outcome:
    """The student's trained weights in the reference network when they fit it, else in an MLP
    of their own layer sizes, on the grader's images as the notebook's transform normalized
    them; an Outcome saying why when neither can be built. Never the student's own forward
    pass."""
    measuring = _measuring_model(ctx)
    normalization = input_normalization(ctx)
    if isinstance(measuring, Outcome) or normalization is None:
        return measuring
    return Measuring(
        pairs=relu_mlp.with_input_normalization(
            measuring.pairs, normalization.shift, normalization.scale
        ),
        source=f"{measuring.source}, the images normalized as your training data was "
        f"({normalization.words})",
    )


def _measuring_model(ctx: CheckContext) -> Measuring | Outcome:
    pairs, not_mapped = _mapped(ctx)
    source = REFERENCE_SOURCE
    if pairs is None:
        state = used_order_state(ctx)
        chain = _linear_chain(state) if state is not None else []
        if not chain:
            if state is None:
                return Outcome.failed(f"No trained model to measure: {why(ctx, 'model')}")
            return Outcome.failed(
                f"The grader could not measure your trained model: {not_mapped}, and its "
                "weights are not a stack of Linear layers from 784 inputs to 10 outputs either. "
                "The grader measures the weights itself; it does not take the outputs your own "
                "code computes.",
                hint="Keep your trained model in `model` (an nn.Module of Linear layers) and "
                "make sure every cell runs from top to bottom on a machine without a GPU.",
            )
        pairs = relu_mlp.as_pairs(chain)
        sizes = "-".join(str(n) for n in (LAYERS[0], *(w.shape[0] for w, _ in chain)))
        source = (
            f"an MLP of your own layer sizes ({sizes}, ReLU between them) loaded with your "
            "trained weights, because they do not fit the assignment's network"
        )
    return Measuring(pairs=pairs, source=source)


def measure_trained(ctx: CheckContext) -> Measure | Outcome:
    """The student's trained weights measured by the grader on its own copy of the test set,
    once per question (the accuracy, history and sample checks all read it)."""
    return ctx.once("q3.measure_trained", lambda: _measure(ctx))


def _measure(ctx: CheckContext) -> Measure | Outcome:
    measuring = measuring_model(ctx)
    if isinstance(measuring, Outcome):
        return measuring
    images, labels = load_test_set(ctx, DATASET)
    loss, accuracy, logits = relu_mlp.evaluate(measuring.pairs, images, labels)
    wide = logits.astype(np.float64)
    for array in (wide, labels):
        array.flags.writeable = False  # shared by the checks: none may change what others see
    return Measure(
        logits=wide, labels=labels, accuracy=accuracy, loss=loss, source=measuring.source
    )


# -- q3.test_accuracy ----------------------------------------------------------------------------


@check("q3.test_accuracy", "Test accuracy of your trained model, measured by the grader")
def test_accuracy(ctx: CheckContext) -> Outcome:
    need = ctx.threshold("q3.min_test_accuracy")
    measure = measure_trained(ctx)
    if isinstance(measure, Outcome):
        return measure
    n = len(measure.labels)
    details = {"accuracy": measure.accuracy, "threshold": need, "test_images": n}
    found = (
        f"The grader measured a test accuracy of {number(measure.accuracy)} on all {n} test images "
        f"with {measure.source}"
    )
    if measure.accuracy >= need:
        return Outcome.passed(f"{found}; at least {number(need)} was needed.", **details)
    untrained = " (about chance, 0.10: the weights look untrained)"
    epochs = parameter(ctx, "EPOCHS", 0)
    return Outcome.failed(
        f"{found}{untrained if measure.accuracy < UNTRAINED_BELOW else ''}; at least "
        f"{number(need)} is needed under the {ctx.profile.name!r} profile"
        f"{f' after {epochs} epochs' if epochs else ''}.",
        hint="Train with CrossEntropyLoss on the logits and SGD(model.parameters(), "
        "lr=LEARNING_RATE), calling zero_grad(), backward() and step() for every batch, for "
        "EPOCHS epochs, and keep the trained model in `model`.",
        **details,
    )
