"""What more than one question's checks need, in one place: the notebook's first failing cell in
words, an array's values in a message, and the grader's own copy of a test set.

Each question package owns its checks; these few helpers had grown a copy in each of them, with
the copies drifting apart in small ways (one advised about ``.cuda()``, the other did not). A
helper belongs here only when two questions use it with the same meaning; anything about one
question's content stays in that question's package.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from graders.data import as_data_error
from graders.numerics.datasets import load_pixels, load_split
from graders.questions.api import CheckContext
from graders.render.numbers import fixed, numbers

NO_GPU_ADVICE = "; the grader has no GPU: move models and tensors with .to(DEVICE), not .cuda()"


def first_cell_error(ctx: CheckContext, *, gpu_advice: bool = False) -> str:
    """The first failing cell in words, or "" when every cell ran. With ``gpu_advice`` (a torch
    question), an error that mentions CUDA also says what to do about a hard-coded ``.cuda()``."""
    errors = ctx.run.execution.cell_errors
    if not errors:
        return ""
    e = errors[0]
    text = f"cell {e.cell_index} raised {e.ename}: {e.evalue[:200]}"
    if gpu_advice and re.search(r"cuda|nvidia", f"{e.evalue} {e.source_excerpt}", re.IGNORECASE):
        text += NO_GPU_ADVICE
    return text


def array_text(
    values: Sequence[float] | np.ndarray, *, decimals: int | None = None, limit: int | None = None
) -> str:
    """``[0.1192, 0.5, ...]``: an array's values, flattened, for a message.

    Significant figures (``numbers``) unless ``decimals`` asks for a fixed scale (``fixed``:
    probabilities, row sums, so that rows line up); with ``limit``, the first ``limit`` values
    and ``...`` when there are more.
    """
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    shown = flat if limit is None else flat[:limit]
    text = numbers(shown) if decimals is None else ", ".join(fixed(v, decimals) for v in shown)
    more = ", ..." if limit is not None and flat.size > limit else ""
    return f"[{text}{more}]"


def load_test_set(
    ctx: CheckContext, dataset: str, *, pixels: str | None = None, limit: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The grader's copy of ``dataset``'s test split (images, labels), the first ``limit`` if
    given: the stored uint8 (N, 28, 28) images, or with ``pixels`` (``"unit"``, ``"raw"``)
    flattened float32 (N, 784) ones on that scale. A missing or damaged file is the grader's
    ``DataError``, not the student's failure."""
    with as_data_error():
        if pixels is None:
            return load_split(ctx.data_root, dataset, train=False, limit=limit)
        return load_pixels(ctx.data_root, dataset, train=False, limit=limit, scale=pixels)
