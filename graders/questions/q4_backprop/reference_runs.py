"""How Q4's numpy reference is trained: for its calibrated thresholds (``dlgrade calibrate``, on
the assignment's unit pixels and on the course's raw 0-255 ones) and for its part of
``dlgrade reference`` (the seed's table, reproduced to the digit)."""

from __future__ import annotations

import math
from pathlib import Path

from graders.questions.api import Budget, ReferenceReport, ThresholdTarget
from reference import q4_numpy

SEED_Q4_TABLE = ((2.36, 1028), (0.47, 8671), (0.32, 9078), (0.25, 9277))
"""Test loss / correct of the seed's run: before training, then after epochs 1-3."""


def train_for_threshold(
    budget: Budget, data_root: Path, seed: int, *, pixels: str = "unit"
) -> tuple[float, float]:
    """Q4's init is deterministic (seed 80085); other seeds stand for a correct student whose
    generator differs (another seed, ``np.random.randn``, a different draw order)."""
    rows = q4_numpy.run(
        data_root,
        epochs=budget.epochs,
        seed=seed,
        train_limit=budget.train_limit,
        test_limit=budget.test_limit,
        pixels=pixels,
    )
    return rows[0].accuracy, rows[-1].accuracy


def train_for_raw_threshold(budget: Budget, data_root: Path, seed: int) -> tuple[float, float]:
    """Q4 as the course's starter code runs it: 0-255 pixels, never divided by 255."""
    return train_for_threshold(budget, data_root, seed, pixels="raw")


def device_words(_budget: Budget) -> str:
    return "cpu (numpy reference; the profile's device does not apply)"


THRESHOLDS = (
    ThresholdTarget(
        key="q4.min_test_accuracy",
        dataset="MNIST",
        first_seed=q4_numpy.SEED,
        train=train_for_threshold,
        device_words=device_words,
    ),
    ThresholdTarget(
        key="q4.min_test_accuracy_raw",
        dataset="MNIST",
        first_seed=q4_numpy.SEED,
        train=train_for_raw_threshold,
        variant="raw 0-255 pixels",
        device_words=device_words,
    ),
)


def reference_report(data_root: Path, epochs: int | None) -> ReferenceReport:
    """The seed's run, compared with its table row by row when run for its 3 epochs."""
    epochs = epochs or q4_numpy.EPOCHS
    lines = [f"Q4 numpy backprop on MNIST, {epochs} epochs (seed's table in brackets)"]
    rows = q4_numpy.run(
        data_root,
        epochs=epochs,
        progress=lambda r: print("  " + q4_numpy.format_row(r), flush=True),
    )
    matches = True
    for row, (loss, correct) in zip(rows, SEED_Q4_TABLE, strict=False):
        same = math.isclose(round(row.mean_loss, 2), loss) and row.correct == correct
        matches = matches and same
        label = "before training" if row.epoch == 0 else f"after epoch {row.epoch}"
        lines.append(
            f"  {label:<16} loss {row.mean_loss:.2f} [{loss}]  correct {row.correct} [{correct}]  "
            f"{'ok' if same else 'DIFFERS'}"
        )
    if epochs != q4_numpy.EPOCHS:
        lines.append(f"  (the seed's table has {q4_numpy.EPOCHS} epochs: not compared)")
        return ReferenceReport(lines=tuple(lines))
    return ReferenceReport(
        lines=tuple(lines),
        ok=matches,
        problem="Q4 did not reproduce the seed's table: the reference or the data is wrong",
    )
