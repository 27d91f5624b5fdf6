"""Q3's checks of the loss histories the notebook kept: ``q3.loss_histories`` (one finite mean
loss per epoch in each, and the training loss going down) and ``q3.history_consistent`` (the last
reported test accuracy and loss agree with the grader's own measure of the trained weights).

The histories are the probe's copies of the notebook's lists; nothing printed is read. A
history that disagrees with the trained model was typed in, taken from an earlier run, or
computed on something other than the whole test set.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q3_fashion_mlp.checks.accuracy import measure_trained
from graders.questions.q3_fashion_mlp.checks.shared import (
    HISTORY_NAMES,
    failing_cell,
    floats,
    parameter,
    plain,
    shown_name,
    why,
)
from graders.render.numbers import number, percent

HISTORY_PART = 0.25
"""Loss histories: each well-formed history; the rest is the training loss going down."""
MIN_TRAIN_DECREASE = 0.01
"""The last epoch's training loss must be at least 1% below the first's. Epoch-to-epoch noise of
an unchanging model is about 0.1% (measured: lr = 0 gives 2.307, 2.306, ...); every profile's
budget takes the reference's training loss down by 25% or more (quick: 2.30 -> 1.6)."""
ACCURACY_TOLERANCE = 0.005
"""Reported vs measured accuracy: the same weights on the same images agree exactly on one
device; another device may flip a few near-ties (5 of 1,000 images is far more than that)."""
LOSS_RTOL = 0.02
"""Reported vs measured test loss: the course's mean of batch means weights the last, shorter
batch a little more than a per-image mean (0.5% at most on these test sets)."""


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


@check("q3.loss_histories", "Train and test loss histories, one value per epoch")
def loss_histories(ctx: CheckContext) -> Outcome:
    histories = ctx.json("histories")
    if not isinstance(histories, dict):
        return Outcome.failed(f"No loss histories to check: {why(ctx, 'histories')}")
    epochs = parameter(ctx, "EPOCHS", 0) or None
    train = floats(histories.get("train_loss_history"))
    test = floats(histories.get("test_loss_history"))
    names = histories.get("names") if isinstance(histories.get("names"), dict) else {}
    problems = [
        problem
        for name, values in zip(HISTORY_NAMES, (train, test), strict=True)
        if (problem := _history_problem(shown_name(names, name), values, epochs))
    ]
    failed = len(problems)  # counted before two "not defined" become the probe's one message
    searched = ctx.probe_errors("histories")
    if (train is None or test is None) and searched:  # the probe says which names it tried
        problems = [p for p in problems if not p.endswith("is not defined")]
        problems.insert(0, searched[0].message)
    went_down, trend, trend_hint = _decrease(train)
    fraction = HISTORY_PART * (2 - failed) + (1 - 2 * HISTORY_PART) * went_down
    hints = [trend_hint] if trend_hint else []
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
        message=f"{found[0].upper()}{found[1:]}; {trend}.",
        hint=" ".join(hints),
        details={
            "epochs": epochs,
            "train_loss": [plain(v) for v in train or []],
            "test_loss": [plain(v) for v in test or []],
        },
    )


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


# -- q3.history_consistent -----------------------------------------------------------------------


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
        ok = abs(loss - measure.loss) <= LOSS_RTOL * abs(measure.loss) + 1e-3
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
