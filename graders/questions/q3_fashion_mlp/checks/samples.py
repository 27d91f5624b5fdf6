"""Q3's checks of the random test images the notebook shows: ``q3.random_samples`` (distinct
indices drawn from the whole test set, not from the number of batches) and
``q3.sample_probabilities`` (each image's class probabilities are the softmax of what the
grader's own measure of the trained weights gives for that image).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from graders.models import GRADER_PROBABILITIES
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.common import array_text, load_test_set
from graders.questions.q3_fashion_mlp.checks import variants
from graders.questions.q3_fashion_mlp.checks.accuracy import measure_trained
from graders.questions.q3_fashion_mlp.checks.shared import (
    DATASET,
    N_CLASSES,
    FloatArray,
    failing_cell,
    parameter,
    shown_name,
    why,
)
from graders.render.numbers import number

PROBABILITY_ATOL = 2e-3
SUM_ATOL = 1e-3
DEFAULT_N_SAMPLES = 3
"""The assignment asks for 3 random test images; a profile may inject N_SAMPLES."""
DEFAULT_BATCH_SIZE = 64
BATCH_ODDS_LIMIT = 1e-4
"""Flag indices drawn from the number of batches only when a correct draw from the whole test
set would look like that with less than this probability (3 of 10,000 below 157: 4e-6)."""


# -- q3.random_samples ---------------------------------------------------------------------------


def _indices(ctx: CheckContext) -> list[int] | None:
    samples = ctx.json("samples")
    found = samples.get("random_indices") if isinstance(samples, dict) else None
    if not isinstance(found, list) or not all(isinstance(i, int) for i in found):
        return None
    return found


def _batch_counts(ctx: CheckContext, n_test: int) -> list[tuple[int, str]]:
    """Each number of batches the indices may have been drawn from, and how it arises: the
    length of each DataLoader the notebook holds, and ceil(test images / batch size) for the
    grader's BATCH_SIZE, the notebook's and the assignment's 64.

    A count only adds a way to be flagged, never removes one, so a notebook cannot hide the
    mistake behind a global (``BATCH_SIZE = 1`` after the loaders were built): the assignment's
    batch size and the live loaders still count. Each count flags a correct draw with odds below
    ``BATCH_ODDS_LIMIT``; a few of them keep the chance of a false flag below 1e-3.
    """
    counts: list[tuple[int, str]] = []
    samples = ctx.json("samples")
    loaders = samples.get("loader_lengths") if isinstance(samples, dict) else None
    for entry in loaders[:200] if isinstance(loaders, list) else []:
        name = entry.get("name") if isinstance(entry, dict) else None
        length = entry.get("batches") if isinstance(entry, dict) else None
        if (
            isinstance(name, str)
            and name.isidentifier()
            and isinstance(length, int)
            and 1 < length < n_test
        ):
            counts.append((length, f"len({name}) = {length}"))
    sizes = {parameter(ctx, "BATCH_SIZE", DEFAULT_BATCH_SIZE), DEFAULT_BATCH_SIZE}
    for batch in sorted(b for b in sizes if b > 1):
        n = math.ceil(n_test / batch)
        counts.append((n, f"len(testDataLoader) = ceil({n_test} / {batch})"))
    return counts


@check("q3.random_samples", "Random test images drawn from the whole test set")
def random_samples(ctx: CheckContext) -> Outcome:
    indices = _indices(ctx)
    if indices is None:
        return Outcome.failed(f"No sampled indices to check: {why(ctx, 'samples')}")
    samples = ctx.json("samples")
    found_as = {"random_indices": samples.get("name")} if isinstance(samples, dict) else {}
    label = shown_name(found_as, "random_indices")
    n_test = len(load_test_set(ctx, DATASET)[1])
    k = parameter(ctx, "N_SAMPLES", DEFAULT_N_SAMPLES)
    details = {"random_indices": indices, "test_images": n_test}
    hint = "Draw them with np.random.choice(len(testdata), N_SAMPLES, replace=False)."
    if len(indices) != k:
        return Outcome.failed(
            f"{label} holds {len(indices)} indices {indices}; expected {k}.",
            hint=hint,
            **details,
        )
    if len(set(indices)) != k:
        return Outcome.failed(
            f"{label} {indices} repeats an index; expected {k} distinct images.",
            hint=hint,
            **details,
        )
    outside = [i for i in indices if not 0 <= i < n_test]
    if outside:
        return Outcome.failed(
            f"{label} {indices}: {outside} lie outside the test set (0 to {n_test - 1}).",
            hint=hint,
            **details,
        )
    flagged = [
        (math.comb(n, k) / math.comb(n_test, k), n, how)
        for n, how in _batch_counts(ctx, n_test)
        if max(indices) < n
    ]
    odds, n_batches, how = min(flagged, default=(1.0, 0, ""))
    if odds < BATCH_ODDS_LIMIT:
        return Outcome.failed(
            f"All {k} indices {indices} are below {n_batches}, the number of test batches "
            f"({how}), not the number of test images ({n_test}): the indices come from the "
            f"number of batches, not images. Drawn from the whole test set, all {k} would land "
            f"below {n_batches} with probability C({n_batches}, {k}) / C({n_test}, {k}) = "
            f"{number(odds, 2)}.",
            hint="len(testDataLoader) counts batches; draw from len(testdata) (the images) "
            "so that every test image can be picked.",
            odds=odds,
            **details,
        )
    return Outcome.passed(
        f"{k} distinct indices {indices} from the {n_test} test images.", **details
    )


# -- q3.sample_probabilities ---------------------------------------------------------------------


def _are_probabilities(rows: FloatArray) -> bool:
    return bool(
        np.all(np.isfinite(rows))
        and np.all(rows >= -1e-6)
        and np.allclose(rows.sum(axis=1), 1.0, atol=SUM_ATOL)
    )


MAX_DRAWN = 6
"""Sampled images whose probabilities the report draws."""


def _drawn(ctx: CheckContext, indices: list[int]) -> dict[str, object]:
    """The grader's own class probabilities of the sampled test images (the first few inside
    the test set), for the report's bars: ``{GRADER_PROBABILITIES: ...}``, or nothing where the
    trained model could not be measured."""
    measure = measure_trained(ctx)
    if isinstance(measure, Outcome):
        return {}
    n_test = len(measure.labels)
    keep = [i for i in indices if 0 <= i < n_test][:MAX_DRAWN]
    if not keep:
        return {}
    rows = variants.softmax(measure.logits[keep])
    return {
        GRADER_PROBABILITIES: {
            "indices": keep,
            "rows": [[round(float(p), 6) for p in row] for row in rows],
        }
    }


@check("q3.sample_probabilities", "Class probabilities of the sampled images")
def sample_probabilities(ctx: CheckContext) -> Outcome:
    indices = _indices(ctx)
    if indices is None:
        return Outcome.failed(f"No sampled images to check: {why(ctx, 'samples')}")
    outcome = _compare_probabilities(ctx, indices)
    return replace(outcome, details={**outcome.details, **_drawn(ctx, indices)})


def _compare_probabilities(ctx: CheckContext, indices: list[int]) -> Outcome:
    stored = ctx.npz("sample_probabilities")
    if stored is None or "probabilities" not in stored:
        return Outcome.failed(
            "`sample_probabilities` is not defined or empty"
            + (f" ({failing_cell(ctx)})" if failing_cell(ctx) else ""),
            hint="Append each sampled image's 10 class probabilities (torch.softmax of the "
            "logits) to sample_probabilities.",
        )
    probs = np.asarray(stored["probabilities"], dtype=np.float64)
    if probs.shape != (len(indices), N_CLASSES):
        return Outcome.failed(
            f"sample_probabilities has shape {probs.shape}; expected ({len(indices)}, 10): one "
            "row of 10 probabilities per index in random_indices."
        )
    sums = probs.sum(axis=1)
    if not _are_probabilities(probs):
        return Outcome.failed(
            "The rows of sample_probabilities are not probabilities "
            f"(row sums {array_text(sums, decimals=3)}, "
            f"smallest value {number(float(np.nanmin(probs)), 3)}).",
            hint="Apply torch.softmax(logits, dim=1) to the model's logits.",
        )
    measure = measure_trained(ctx)
    if isinstance(measure, Outcome):
        return measure
    n_test = len(measure.labels)
    if not all(0 <= i < n_test for i in indices):
        return Outcome.failed(f"random_indices {indices} are not all test-set indices.")
    outputs = measure.logits[indices]
    expected = variants.softmax(outputs)
    agree = [
        bool(np.allclose(p, e, atol=PROBABILITY_ATOL)) for p, e in zip(probs, expected, strict=True)
    ]
    if not all(agree):
        # A model whose forward pass already ends in a softmax (an architecture mistake,
        # charged there), its outputs put through softmax once more by the sample cell: the
        # grader computes that picture too, from its own logits, rather than charge it twice.
        twice = variants.softmax(expected)
        again = [
            bool(np.allclose(p, e, atol=PROBABILITY_ATOL))
            for p, e in zip(probs, twice, strict=True)
        ]
        agree = again if all(again) else agree
    if all(agree):
        return Outcome.passed(
            f"The probabilities of test images {indices} match the grader's softmax of "
            f"{measure.source}."
        )
    lines = [
        f"image {i}: yours {array_text(p, decimals=2)}, the grader's {array_text(e, decimals=2)}"
        for i, p, e, ok in zip(indices, probs, expected, agree, strict=True)
        if not ok
    ]
    return Outcome(
        fraction=sum(agree) / len(agree),
        message=f"{len(lines)} of {len(indices)} sampled images have probabilities that differ "
        f"from the grader's softmax of {measure.source}: " + "; ".join(lines),
        hint="For each index take testdata[idx], run the final trained model on it in eval "
        "mode and append torch.softmax(logits, dim=1) for that same image.",
    )
