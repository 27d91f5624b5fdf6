"""Q3's checks of the loss histories the notebook kept: ``q3.loss_histories`` (one finite mean
loss per epoch in each; the training loss a real mean loss of this model that went down) and
``q3.history_consistent`` (the last reported test accuracy and loss agree with the grader's own
measure of the trained weights).

The histories are the probe's copies of the notebook's lists; nothing printed is read. A
history that disagrees with the trained model was typed in, taken from an earlier run, or
computed on something other than the whole test set.

The training loss is checked here, not in ``q3.history_consistent``: this is the check that
grades ``train_loss_history`` (its trend half is what a history of per-epoch sums, or one that
"went down" from 27.8 to 3.96, used to earn), while ``q3.history_consistent`` holds the final
*test* metrics to the grader's measure; checking the training loss there as well would charge
one wrong history twice. The last training-loss entry is the mean of the last epoch's batch
losses, taken while the weights still moved, so it sits a little above the loss of the final
weights; the grader measures that loss itself (the trained weights on the training images it
reads from its own data root, the first TRAIN_LIMIT of them when the run has one) and holds
the ratio to the band calibrated from reference runs for this profile
(``q3.train_loss_ratio_low`` / ``_high``, ``reference_runs.TRAIN_LOSS_MARGIN`` says how). The
band stands for the assignment's training; a notebook trained another way (``q3.training_setup``
charges that) is held to the band's bounds divided and multiplied by ``OTHER_SETUP_FACTOR``,
which still tells a mean from a sum.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from graders.data import as_data_error
from graders.numerics import relu_mlp
from graders.numerics.datasets import load_split
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q3_fashion_mlp.checks import variants
from graders.questions.q3_fashion_mlp.checks.accuracy import (
    Measure,
    measure_trained,
    measuring_model,
)
from graders.questions.q3_fashion_mlp.checks.setup import read_setup, required
from graders.questions.q3_fashion_mlp.checks.shared import (
    DATASET,
    HISTORY_NAMES,
    count,
    failing_cell,
    floats,
    parameter,
    plain,
    shown_name,
    why,
)
from graders.render.numbers import number, percent

HISTORY_PART = 0.25
"""Loss histories: each well-formed history; the rest is the training loss really going down."""
MIN_TRAIN_DECREASE = 0.01
"""The last epoch's training loss must be at least 1% below the first's. Epoch-to-epoch noise of
an unchanging model is about 0.1% (measured: lr = 0 gives 2.307, 2.306, ...); every profile's
budget takes the reference's training loss down by 25% or more (quick: 2.30 -> 1.5)."""
CHANCE = math.log(10)
"""The cross entropy of a uniform guess over 10 classes: a trained model's is below it."""
OTHER_SETUP_FACTOR = 5.0
"""A notebook trained another way than the assignment's (another optimizer, learning rate,
batch size, dropout) has a ratio the calibration does not cover: on the quick slices 43 honest
runs with lr 0.1, Adam, momentum 0.9, dropout 0.2 or batches of 32 gave 0.29-1.57 (a high
learning rate leaves the final weights on a spike). The band's bounds divided and multiplied
by five pass those and still fails a sum over batches (off by the number of batches: 32 on the
slices, 938 on the full set) and a mean over images of batch means (off by the batch size)."""
CAUSE_TOLERANCE = 1.3
"""A ratio within this factor of a known slip (the number of batches, the batch size, ...) is
named as that slip."""
ACCURACY_TOLERANCE = 0.005
"""Reported vs measured accuracy: the same weights on the same images agree exactly on one
device; another device may flip a few near-ties (5 of 1,000 images is far more than that)."""
LOSS_RTOL = 0.02
"""Reported vs measured test loss: float32 sums in another order, another device. The course's
mean of batch means weights the last, shorter batch more than a per-image mean does (by 1.9 %
for a notebook trained with Adam on the slices, whose per-image losses spread widely), so the
grader computes that mean too, over the test set in order (the test DataLoader does not
shuffle) in batches of BATCH_SIZE, and accepts either."""


# -- q3.loss_histories ---------------------------------------------------------------------------


def _history_problem(name: str, values: list[float] | None, epochs: int | None) -> str:
    """What is wrong with one history, or "" when it is one finite float per epoch."""
    if values is None:
        return f"`{name}` is not defined"
    if not values:
        return f"`{name}` is empty: the training loop never appended to it"
    bad = [i for i, v in enumerate(values) if not math.isfinite(v)]
    if bad:
        return f"`{name}` has NaN or infinite values (epochs {bad[:5]})"
    if epochs is not None and len(values) != epochs:
        if len(values) > epochs and len(values) % epochs == 0:
            return (
                f"`{name}` has {len(values)} values, {len(values) // epochs} per epoch; "
                f"expected {epochs}: one mean loss per epoch, not one per batch"
            )
        return (
            f"`{name}` has {len(values)} values; expected {epochs}, one per epoch of the "
            f"EPOCHS = {epochs} the grader set"
        )
    return ""


@dataclass(frozen=True, kw_only=True)
class TrainingLoss:
    """The grader's own mean cross entropy of the trained weights on the training images."""

    loss: float
    images: int
    source: str


def measure_training_loss(ctx: CheckContext) -> TrainingLoss | Outcome:
    """The trained weights (in the network ``measuring_model`` builds) on the training images
    of the grader's data root: the first TRAIN_LIMIT when the run has one, as the notebook's
    ``Subset(trainingdata, range(TRAIN_LIMIT))`` takes them."""
    measuring = measuring_model(ctx)
    if isinstance(measuring, Outcome):
        return measuring
    limit = parameter(ctx, "TRAIN_LIMIT", 0) or None
    with as_data_error():
        images, labels = load_split(ctx.data_root, DATASET, train=True, limit=limit)
    loss, _, _ = relu_mlp.evaluate(measuring.pairs, images, labels)
    return TrainingLoss(loss=loss, images=len(labels), source=measuring.source)


@dataclass(frozen=True, kw_only=True)
class Agreement:
    """How the last training-loss entry compares with the grader's measure."""

    agrees: bool
    said: str
    hint: str = ""
    ratio: float | None = None
    measured: float | None = None


def _likely_cause(ratio: float, batch: int, images: int) -> str:
    """The slip a ratio points at, in words, or ""."""
    batches = max(1, math.ceil(images / batch))
    slips = (
        (
            batches,
            f"a sum over the epoch's {batches} batches instead of their mean (sum instead of "
            "mean: divide by len(trainDataLoader))",
        ),
        (images, f"a sum of the {images} images' losses, never divided by their number"),
        (
            batch,
            f"a mean of per-batch sums (each a sum over {batch} images, not a mean per image: "
            "reduction='sum'?)",
        ),
        (
            1 / batch,
            "the epoch's sum of batch losses divided by the number of images (len(trainingdata)) "
            f"instead of the number of batches: each batch loss is already a mean over its "
            f"{batch} images, so this is not a mean per image or per batch",
        ),
        (
            batches / batch,
            f"the epoch's sum of batch losses divided by BATCH_SIZE ({batch}) instead of the "
            f"number of batches ({batches}): not a mean per image or per batch",
        ),
    )
    near = [(abs(math.log(ratio / f)), words) for f, words in slips if f > 0]
    best = min(near, default=(math.inf, ""))
    return best[1] if best[0] < math.log(CAUSE_TOLERANCE) else ""


def _agreement(ctx: CheckContext, last: float) -> Agreement:
    """The last training-loss entry against the grader's own mean loss of the final weights."""
    measured = measure_training_loss(ctx)
    if isinstance(measured, Outcome):  # charged by the checks that need a model; not again here
        return Agreement(
            agrees=True,
            said="the grader could not measure your trained weights, so the last entry was not "
            "compared with their loss",
        )
    low = ctx.threshold("q3.train_loss_ratio_low")
    high = ctx.threshold("q3.train_loss_ratio_high")
    setup = read_setup(ctx)
    widened = ""
    if not setup.as_assigned:
        low, high = low / OTHER_SETUP_FACTOR, high * OTHER_SETUP_FACTOR
        widened = (
            " (the assignment's band divided and multiplied by "
            f"{number(OTHER_SETUP_FACTOR)}, since your training set-up differs from the "
            "assignment's: see q3.training_setup)"
        )
    ratio = last / measured.loss if measured.loss > 0 else math.inf
    compared = (
        f"the last entry {number(last)} is {number(ratio)} times the grader's own mean loss of "
        f"your trained weights on the {measured.images} training images ({number(measured.loss)})"
    )
    if low <= ratio <= high:
        return Agreement(agrees=True, said=compared, ratio=ratio, measured=measured.loss)
    batch = int(required(ctx, "BATCH_SIZE"))
    setup_file = ctx.json("training_setup")
    loader = setup_file.get("train_loader") if isinstance(setup_file, dict) else None
    if isinstance(loader, dict) and count(loader.get("batch_size")):
        batch = int(loader["batch_size"])
    cause = _likely_cause(ratio, batch, measured.images)
    return Agreement(
        agrees=False,
        said=f"{compared}; expected {number(low)} to {number(high)} times it{widened}: "
        + (f"it looks like {cause}" if cause else "it is not this model's mean training loss "
           "(typed in, or from another run?)"),
        hint="Append the epoch's mean batch loss: the sum of loss.item() over the epoch's "
        "batches divided by len(trainDataLoader) (or the per-image sum divided by "
        "len(trainingdata)).",
        ratio=ratio,
        measured=measured.loss,
    )  # fmt: skip


def _decrease(train: list[float] | None) -> tuple[bool, str, str]:
    """Whether the training loss went down overall, what it did, and a hint when it did not."""
    if not train or not all(math.isfinite(v) for v in train):
        return False, "the training loss could not be followed", ""
    if len(train) < 2:
        return True, "one epoch only, so there is no trend to check", ""
    first, last = train[0], train[-1]
    if last <= first * (1 - MIN_TRAIN_DECREASE):
        return True, f"the training loss went down from {number(first)} to {number(last)}", ""
    return (
        False,
        f"the training loss did not go down: {number(first)} after the first epoch, "
        f"{number(last)} after the last (expected at least {percent(MIN_TRAIN_DECREASE)} lower)",
        "A flat training loss means the weights are not being updated: call "
        "optimizer.zero_grad(), loss.backward() and optimizer.step() for every batch, with "
        "the optimizer built on model.parameters() and lr=LEARNING_RATE.",
    )


@check("q3.loss_histories", "Train and test loss histories, one value per epoch")
def loss_histories(ctx: CheckContext) -> Outcome:
    histories = ctx.json("histories")
    if not isinstance(histories, dict):
        return Outcome.failed(f"No loss histories to check: {why(ctx, 'histories')}")
    epochs = parameter(ctx, "EPOCHS", 0) or None
    train = floats(histories.get("train_loss_history"))
    test = floats(histories.get("test_loss_history"))
    names = histories.get("names") if isinstance(histories.get("names"), dict) else {}
    train_problem, test_problem = (
        _history_problem(shown_name(names, name), values, epochs)
        for name, values in zip(HISTORY_NAMES, (train, test), strict=True)
    )
    problems = [p for p in (train_problem, test_problem) if p]
    searched = ctx.probe_errors("histories")
    if (train is None or test is None) and searched:  # the probe says which names it tried
        problems = [p for p in problems if not p.endswith("is not defined")]
        problems.insert(0, searched[0].message)
    went_down, trend, trend_hint = _decrease(train)
    hints = [trend_hint] if trend_hint else []
    label = shown_name(names, "train_loss_history")
    findings = [trend]
    agrees = True
    details: dict[str, object] = {}
    if train and all(math.isfinite(v) for v in train):  # judged even when its length is wrong
        last = train[-1]
        agreement = _agreement(ctx, last)
        agrees = agreement.agrees
        details = {
            "train_loss_ratio": plain(agreement.ratio),
            "measured_train_loss": plain(agreement.measured),
        }
        findings.append(agreement.said)
        if agreement.hint and not agrees:
            hints.append(agreement.hint)
        if last >= CHANCE:
            findings.append(
                f"the last {label} entry {number(last)} is not below ln 10 = {number(CHANCE)}, "
                "the loss of a uniform guess over the 10 classes"
            )
    below_chance = (train or [math.inf])[-1] < CHANCE
    train_form = not train_problem and agrees
    real_decrease = went_down and below_chance and agrees
    fraction = (
        HISTORY_PART * (train_form + (not test_problem)) + (1 - 2 * HISTORY_PART) * real_decrease
    )
    if problems:
        hints.insert(
            0,
            "After each epoch append one float (the epoch's mean loss, e.g. "
            "running_loss / len(trainDataLoader)) to each list, and loop over range(EPOCHS).",
        )
        if failing_cell(ctx):
            problems.append(failing_cell(ctx))
    found = "; ".join(problems) if problems else f"{len(train or [])} epochs of train and test loss"
    return Outcome(
        fraction=fraction,
        message=f"{found[0].upper()}{found[1:]}; {'; '.join(findings)}.",
        hint=" ".join(hints),
        details={
            "epochs": epochs,
            "train_loss": [plain(v) for v in train or []],
            "test_loss": [plain(v) for v in test or []],
            **details,
        },
    )


# -- q3.history_consistent -----------------------------------------------------------------------


def mean_of_batch_means(measure: Measure, batch: int) -> float:
    """The course's test loss: the mean over batches of ``batch`` images of each batch's mean
    cross entropy, from the grader's own logits of the trained weights."""
    rows = variants.log_softmax(measure.logits)
    losses = -rows[np.arange(len(measure.labels)), measure.labels]
    return float(
        np.mean([chunk.mean() for chunk in np.split(losses, range(batch, len(losses), batch))])
    )


def _last(histories: Mapping[str, object], name: str) -> float | None:
    values = floats(histories.get(name))
    return values[-1] if values else None


@check("q3.history_consistent", "Reported final test metrics match the trained model")
def history_consistent(ctx: CheckContext) -> Outcome:
    histories = ctx.json("histories")
    if not isinstance(histories, dict):
        return Outcome.failed(f"No histories to compare: {why(ctx, 'histories')}")
    measure = measure_trained(ctx)
    if isinstance(measure, Outcome):
        return measure
    said: list[str] = []
    wrong: list[str] = []
    accuracy = _last(histories, "test_accuracy_history")
    if accuracy is None:
        wrong.append(
            "`test_accuracy_history` is missing or empty, so there is no reported "
            "accuracy to compare"
        )
    else:
        in_percent = 1.0 < accuracy <= 100.0
        value = accuracy / 100.0 if in_percent else accuracy
        read = number(accuracy) + (" (read as a percentage)" if in_percent else "")
        line = (
            f"the last test_accuracy_history entry is {read}, and the grader measured "
            f"{number(measure.accuracy)}"
        )
        (said if abs(value - measure.accuracy) <= ACCURACY_TOLERANCE else wrong).append(line)
    loss = _last(histories, "test_loss_history")
    if loss is None or not math.isfinite(loss):
        wrong.append("the last test_loss_history entry is missing or not a finite number")
    else:
        line = (
            f"the last test_loss_history entry is {number(loss)}, and the grader measured "
            f"{number(measure.loss)}"
        )
        course = mean_of_batch_means(measure, parameter(ctx, "BATCH_SIZE", 64) or 64)
        ok = any(abs(loss - m) <= LOSS_RTOL * abs(m) + 1e-3 for m in (measure.loss, course))
        if ok and abs(loss - measure.loss) > LOSS_RTOL * abs(measure.loss) + 1e-3:
            line += f" ({number(course)} as the mean of its batch means)"
        (said if ok else wrong).append(line)
    details = {
        "measured_accuracy": measure.accuracy,
        "measured_loss": plain(measure.loss),
        "reported_accuracy": plain(accuracy),
        "reported_loss": plain(loss),
    }
    if not wrong:
        return Outcome.passed(f"Consistent: {'; '.join(said)}.", **details)
    return Outcome(
        fraction=0.5 * len(said),
        message=f"Mismatch with the final model: {'; '.join(wrong)}"
        + (f" (whereas {'; '.join(said)})" if said else "")
        + f". Measured with {measure.source}.",
        hint="Append each epoch's metrics as computed on the whole test set with the model as "
        "it is after that epoch (model.eval(), torch.no_grad()); do not type numbers in or "
        "report a value from an earlier run.",
        details=details,
    )
