"""What several of Q3's checks read alike: the assignment's layer sizes, the reference network
(imported late), the probe's explanation of a missing artifact, the notebook's settings, and the
histories as plain floats.

Kept apart so that each check module holds one check's logic and no copy of these.
"""

from __future__ import annotations

import math
import re
from types import ModuleType

import numpy as np
from numpy.typing import NDArray

from graders.questions.api import CheckContext
from graders.questions.common import first_cell_error

FloatArray = NDArray[np.float64]

N_CLASSES = 10
LAYERS = (784, 256, 128, 64, N_CLASSES)
"""The assignment's architecture (``reference.q3_mlp`` agrees: a test holds them together)."""
DATASET = "FashionMNIST"
HISTORY_NAMES = ("train_loss_history", "test_loss_history")


def reference_model() -> ModuleType:
    """``reference.q3_mlp``, imported on first use: it brings torch (seconds, ~650 MB), which a
    grading of other questions, or a student's self-check of one, should not pay for."""
    from reference import q3_mlp

    return q3_mlp


def failing_cell(ctx: CheckContext) -> str:
    """The first failing cell in words; for the seed's hard-coded ``.cuda()``, what to do."""
    return first_cell_error(ctx, gpu_advice=True)


def why(ctx: CheckContext, step: str) -> str:
    """The probe's explanation, plus the first failing cell: usually the actual cause."""
    text = ctx.why_missing(step)
    errors = ctx.run.execution.cell_errors
    if not errors:
        return text
    if errors[0].evalue and errors[0].evalue[:80] in text:  # the probe quoted it already
        return text
    return f"{text} ({failing_cell(ctx)})"


def parameter(ctx: CheckContext, name: str, default: int) -> int:
    """An integer setting: the grader's injected value, else the notebook's own, else default."""
    value = ctx.run.execution.parameters.get(name)
    if value is None:
        histories = ctx.json("histories")
        value = histories.get(name) if isinstance(histories, dict) else None
    if isinstance(value, int | float | str):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return default
    return default


def plain(value: float | None) -> float | None:
    """A number for ``details`` (result.json must stay strict JSON: no NaN)."""
    return value if value is not None and math.isfinite(value) else None


def floats(values: object) -> list[float] | None:
    """A history as floats (the probe writes non-finite numbers as strings), or None."""
    if not isinstance(values, list):
        return None
    out: list[float] = []
    for v in values:
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            out.append(math.nan)
    return out


def shown_name(names: object, canonical: str) -> str:
    """The name the notebook used for a value (``train_losses``), or the assignment's."""
    found = names.get(canonical) if isinstance(names, dict) else None
    if isinstance(found, str) and re.fullmatch(
        r"[A-Za-z_][A-Za-z0-9_]*(\['[A-Za-z0-9_]+'\])?", found
    ):
        return found
    return canonical
