"""Figures for the feedback pages, drawn by the grader from the artifacts its probe wrote.

The data is read and validated here (a student's histories may hold NaN, a million epochs or
nothing at all), so a chart is either drawn from sound numbers or replaced by a sentence saying
why not; a feedback page never fails because of what a student's notebook left behind.

The figures are SVG written by ``graders.render.svg`` (no matplotlib in the grader): the bytes
depend on the data alone, so pages can be diffed and goldened, images included.
"""

from __future__ import annotations

import base64
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graders.config import Thresholds
from graders.models import GRADER_PROBABILITIES, CheckResult, QuestionRun
from graders.plain_data import load_json_file, load_npz
from graders.render import svg
from graders.render.numbers import fixed

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
"""Fashion-MNIST's label names, in label order (the dataset's own documentation)."""

MAX_EPOCHS_DRAWN = 500
"""A history longer than this is cut: a plot of more epochs says nothing more to a student."""
MAX_SAMPLES_DRAWN = 6
"""The assignment asks for 3 sampled images; more are cut so the figure stays readable."""

TRAIN_COLOUR, TEST_COLOUR = "#1f6fb2", "#d1495b"


@dataclass(frozen=True, kw_only=True)
class LossBand:
    """Per-epoch range of the reference solution's losses over the calibration seeds."""

    train_low: tuple[float, ...]
    train_high: tuple[float, ...]
    test_low: tuple[float, ...]
    test_high: tuple[float, ...]
    seeds: int
    """How many reference runs the band spans (said in the caption)."""


@dataclass(frozen=True, kw_only=True)
class LossCurves:
    """The losses the student's notebook recorded per epoch, as the probe found them."""

    train: tuple[float, ...]
    test: tuple[float, ...]
    band: LossBand | None = None


@dataclass(frozen=True, kw_only=True)
class SampleBars:
    """Class probabilities of the sampled test images, from the grader's own forward pass."""

    indices: tuple[int, ...]
    probabilities: tuple[tuple[float, ...], ...]
    """Softmax of the logits the probe computed with the student's trained model."""
    reported: tuple[tuple[float, ...], ...] | None
    """What the notebook itself reported for the same images (drawn as markers), if usable."""
    classes: tuple[str, ...] = FASHION_CLASSES


Plot = LossCurves | SampleBars


@dataclass(frozen=True, kw_only=True)
class Chart:
    """One figure of a feedback page: a stable file stem, words around it, and its data."""

    slug: str
    """File stem for the Markdown's image (``q3-loss-curves``) and the HTML anchor."""
    title: str
    caption: str
    plot: Plot | None
    """None when the chart could not be drawn; ``caption`` then says why."""


# ---------------------------------------------------------------------------------------------
# Reading the artifacts


def _artifact_path(run: QuestionRun, result_dir: Path, name: str) -> Path | None:
    artifact = run.probe.artifact(name)
    return None if artifact is None else result_dir / artifact.path


def _read_json(path: Path) -> Any:
    return load_json_file(path)  # the kernel's output: checked before it is parsed


def _read_npz(path: Path, key: str) -> np.ndarray:
    return np.asarray(load_npz(path)[key], dtype=np.float64)


def _floats(value: object) -> tuple[float, ...]:
    """A history as floats, non-finite values as NaN (drawn as gaps, never as a crash)."""
    if not isinstance(value, list):
        return ()
    out = []
    for v in value[:MAX_EPOCHS_DRAWN]:
        f = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan
        out.append(f if math.isfinite(f) else math.nan)
    return tuple(out)


def loss_curves_chart(run: QuestionRun, result_dir: Path, band: LossBand | None) -> Chart | None:
    """The student's train/test losses per epoch, beside the reference's band when known."""
    path = _artifact_path(run, result_dir, "histories")
    if path is None:
        return None
    title = "Loss per epoch"
    try:
        histories = _read_json(path)
    except (OSError, ValueError) as exc:
        why = f"Could not be drawn: {exc}"
        return Chart(slug=f"{run.question}-loss-curves", title=title, caption=why, plot=None)
    train = _floats(histories.get("train_loss_history") if isinstance(histories, dict) else None)
    test = _floats(histories.get("test_loss_history") if isinstance(histories, dict) else None)
    slug = f"{run.question}-loss-curves"
    if not any(math.isfinite(v) for v in (*train, *test)):
        why = "The notebook recorded no finite loss values, so there is nothing to plot."
        return Chart(slug=slug, title=title, caption=why, plot=None)
    caption = (
        "train_loss_history and test_loss_history as your notebook recorded them, "
        "re-plotted by the grader"
    )
    caption += (
        f"; the shaded bands are the range of the reference solution over {band.seeds} seeds."
        if band is not None
        else " (no reference band is calibrated for this profile)."
    )
    if any(math.isnan(v) for v in (*train, *test)):
        caption += " Gaps are epochs whose loss was not a finite number."
    return Chart(
        slug=slug, title=title, caption=caption, plot=LossCurves(train=train, test=test, band=band)
    )


def _sample_indices(run: QuestionRun, result_dir: Path) -> list[int] | None:
    path = _artifact_path(run, result_dir, "samples")
    if path is None:
        return None
    raw = _read_json(path)
    values = raw.get("random_indices") if isinstance(raw, dict) else None
    if not isinstance(values, list):
        return None
    return [int(i) for i in values if isinstance(i, int) and not isinstance(i, bool)]


def _reported(run: QuestionRun, result_dir: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The notebook's own probabilities, one row per sampled index, if they have that shape."""
    path = _artifact_path(run, result_dir, "sample_probabilities")
    if path is None:
        return None
    try:
        values = _read_npz(path, "probabilities")
    except (OSError, KeyError, ValueError):
        return None
    return values if values.shape == shape and np.isfinite(values).all() else None


def _samples_caption(dropped: list[int], with_reported: bool) -> str:
    caption = (
        "Softmax of the logits the grader computed from your trained weights on these test images"
    )
    caption += (
        "; the black ticks are the probabilities your notebook reported."
        if with_reported
        else ". Your notebook's own probabilities were not found in a usable form."
    )
    if dropped:
        caption += f" Not drawn (outside the test set, or past the first {MAX_SAMPLES_DRAWN}): "
        caption += f"{dropped[:10]}."
    return caption


def _grader_rows(checks: Sequence[CheckResult]) -> tuple[list[int], np.ndarray] | None:
    """The sampled indices and the grader's probability rows, from the first check whose
    details carry them (``GRADER_PROBABILITIES``), if they are well formed."""
    n_classes = len(FASHION_CLASSES)
    for check in checks:
        found = check.details.get(GRADER_PROBABILITIES)
        if not isinstance(found, Mapping):
            continue
        indices, rows = found.get("indices"), found.get("rows")
        if not isinstance(indices, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in indices
        ):
            return None
        try:
            probs = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        if probs.shape != (len(indices), n_classes) or not np.isfinite(probs).all():
            return None
        return indices[:MAX_SAMPLES_DRAWN], probs[:MAX_SAMPLES_DRAWN]
    return None


def sample_bars_chart(
    run: QuestionRun, result_dir: Path, checks: Sequence[CheckResult] = ()
) -> Chart | None:
    """Bar charts of the sampled images' class probabilities, as the grader computed them from
    the trained weights (a check's ``GRADER_PROBABILITIES``), with the notebook's own beside."""
    slug, title = (
        f"{run.question}-sample-probabilities",
        "Class probabilities of the sampled images",
    )
    try:
        indices = _sample_indices(run, result_dir)
    except (OSError, ValueError) as exc:
        return Chart(slug=slug, title=title, caption=f"Could not be drawn: {exc}", plot=None)
    drawn = _grader_rows(checks)
    if indices is None or drawn is None:
        return None
    usable, probs = drawn
    if not usable:
        why = "No sampled index falls inside the test set, so there is nothing to plot."
        return Chart(slug=slug, title=title, caption=why, plot=None)
    keep = [indices.index(i) for i in usable if i in indices]
    reported = _reported(run, result_dir, (len(indices), len(FASHION_CLASSES)))
    plot = SampleBars(
        indices=tuple(usable),
        probabilities=tuple(tuple(float(p) for p in row) for row in probs),
        reported=None
        if reported is None or len(keep) != len(usable)
        else tuple(tuple(float(p) for p in reported[k]) for k in keep),
    )
    dropped = [i for i in indices if i not in usable]
    caption = _samples_caption(dropped, plot.reported is not None)
    return Chart(slug=slug, title=title, caption=caption, plot=plot)


def charts_for(
    run: QuestionRun,
    result_dir: Path,
    band: LossBand | None = None,
    checks: Sequence[CheckResult] = (),
) -> tuple[Chart, ...]:
    """Every chart the question's artifacts and its checks' results allow, in a fixed order.

    Keyed on artifact and detail names, not question ids: any question whose probe leaves
    ``histories`` gets loss curves, ``samples`` with a check's ``GRADER_PROBABILITIES`` gets
    probability bars.
    """
    charts = (
        loss_curves_chart(run, result_dir, band),
        sample_bars_chart(run, result_dir, checks),
    )
    return tuple(c for c in charts if c is not None)


# ---------------------------------------------------------------------------------------------
# The reference band: a hook on the calibrated thresholds' provenance

BAND_KEYS = ("train_loss_per_epoch", "test_loss_per_epoch")
"""Provenance fields a calibration run may store: one list of per-epoch losses per seed."""


def _per_seed(value: object) -> np.ndarray | None:
    if not isinstance(value, list) or not value or not all(isinstance(r, list) for r in value):
        return None
    width = min(len(r) for r in value)
    if width == 0:
        return None
    rows = np.asarray([r[:width] for r in value], dtype=np.float64)
    return rows if np.isfinite(rows).all() else None


def reference_loss_bands(thresholds: Thresholds | None, profile: str) -> dict[str, LossBand]:
    """The reference's loss band per question for this profile, where calibration recorded
    per-epoch losses.

    The hook the feedback pages use: ``dlgrade calibrate`` may store, under a threshold key
    ``<question>.*`` of ``[<profile>.provenance]``, ``train_loss_per_epoch`` and
    ``test_loss_per_epoch`` as lists (one per seed) of per-epoch losses; the band belongs to
    that question's charts. Without them the curves are drawn alone.
    """
    if thresholds is None:
        return {}
    provenance: Mapping[str, Any] = thresholds.provenance.get(profile, {})
    bands: dict[str, LossBand] = {}
    for key in sorted(provenance):
        entry = provenance[key]
        question = key.partition(".")[0]
        if question in bands or "." not in key or not isinstance(entry, Mapping):
            continue
        train, test = (_per_seed(entry.get(k)) for k in BAND_KEYS)
        if train is None or test is None or len(train) != len(test):
            continue
        bands[question] = LossBand(
            train_low=tuple(map(float, train.min(axis=0))),
            train_high=tuple(map(float, train.max(axis=0))),
            test_low=tuple(map(float, test.min(axis=0))),
            test_high=tuple(map(float, test.max(axis=0))),
            seeds=len(train),
        )
    return bands


# ---------------------------------------------------------------------------------------------
# Drawing


def _draw_losses(plot: LossCurves) -> bytes:
    series = [
        svg.Series(values=values, colour=colour, label=label)
        for values, colour, label in (
            (plot.train, TRAIN_COLOUR, "train loss (yours)"),
            (plot.test, TEST_COLOUR, "test loss (yours)"),
        )
        if values
    ]
    band = plot.band
    bands = (
        []
        if band is None
        else [
            svg.Band(low=band.train_low, high=band.train_high, colour=TRAIN_COLOUR,
                     label="train, reference range"),
            svg.Band(low=band.test_low, high=band.test_high, colour=TEST_COLOUR,
                     label="test, reference range"),
        ]
    )  # fmt: skip
    return svg.line_chart(
        series, bands, x_label="epoch", y_label="cross-entropy loss", title="Loss per epoch"
    )


def _draw_samples(plot: SampleBars) -> bytes:
    panels = []
    for k, index in enumerate(plot.indices):
        probs = plot.probabilities[k]
        best = max(range(len(probs)), key=lambda c: probs[c])
        panels.append(
            svg.Panel(
                title=(
                    f"test image {index}",
                    f"predicted {plot.classes[best]} ({fixed(probs[best])})",
                ),
                values=probs,
                marks=None if plot.reported is None else plot.reported[k],
            )
        )
    return svg.bar_panels(
        panels, plot.classes, colour=TEST_COLOUR, title="Class probabilities of the sampled images"
    )


def draw(plot: Plot) -> bytes:
    """The chart as a standalone SVG document (for an ``<img>``: its ids cannot clash with the
    page's; a file beside the Markdown page)."""
    if isinstance(plot, LossCurves):
        return _draw_losses(plot)
    return _draw_samples(plot)


@functools.lru_cache(maxsize=8)
def _drawn(plot: Plot) -> bytes:
    """Each chart drawn once for both pages (a plot is frozen data, so they show the same)."""
    return draw(plot)


def svg_bytes(plot: Plot) -> bytes:
    return _drawn(plot)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def svg_data_uri(plot: Plot) -> str:
    return data_uri(svg_bytes(plot), "image/svg+xml")
