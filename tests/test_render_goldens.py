"""Feedback pages against golden files: byte-exact from committed input, masked from real runs.

The byte-exact goldens (``feedback_report.*``) are rendered from ``feedback_report.build_report``,
a hand-built, hand-checked report with the artifacts its charts read: a golden changes only when
rendering changes. To prove it does not depend on the machine, every float of that input (the
report and its artifacts) is perturbed by a relative 1e-9, as another CPU's BLAS would perturb a
trained model's numbers, and the pages must still match.

The two fixture submissions are also graded for real (quick profile, real kernels) and their
pages compared with ``all_correct.*`` and ``blank.*``, after ``mask_measurements`` hides every
number a check measured (in messages, hints and details: losses, accuracies, counts, Monte Carlo
moments; training lands elsewhere on another CPU) and ``mask_volatile`` hides times, dates, paths
and the chart images' bytes. Statuses, points, ids and prose stay. ``pytest --update-goldens``
rewrites both kinds; a mismatch fails with a unified diff.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from feedback_report import build_report

from graders.config import load_thresholds
from graders.models import GRADER_PROBABILITIES, CheckResult, GradeReport
from graders.render.gradebook import gradebook_csv
from graders.render.gradescope import gradescope_results
from graders.render.html import render_html
from graders.render.json_result import to_plain
from graders.render.markdown import render_markdown
from graders.render.plots import LossBand, reference_loss_bands
from graders.render.summary import report_lines

REPO = Path(__file__).resolve().parents[1]
GOLDENS = Path(__file__).resolve().parent / "goldens"
SCENARIOS = (pytest.param("all_correct", marks=pytest.mark.slow), "blank")
"""Graded for real; all_correct trains Q3 and Q4 (~20 s on 2 cores), so its pages are ``slow``."""
BUILT = "feedback_report"
"""Stem of the byte-exact goldens, rendered from ``feedback_report.build_report``."""
PERTURBATION = 1e-9

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")
_SECONDS = re.compile(r"\b\d+\.\d s\b")
_IMAGE = re.compile(r"(data:image/[a-z+]+;base64,)[A-Za-z0-9+/=]+")
_ADDRESS = re.compile(r"\b0x[0-9a-f]{6,}\b")
_MEASURED = re.compile(r"(?<![\w^])\d+(?:\.\d+)?(?:e[-+]?\d+)?(?!\w)")
"""A number in a check's words: ``0.513``, ``1e-9``, ``618`` (its sign kept as text); not the
1 of ``q1``, the 2 of ``2n`` or of ``h^2``."""
MEASURED = "<N>"


def mask_machine(text: str, paths: Mapping[str, Path]) -> str:
    """``text`` with what a machine (not a run) decides replaced by ``<NAME>`` placeholders.

    ``paths`` maps a placeholder to an absolute path (the output folder, the repository, the
    Python prefix); the longest path is replaced first so a folder inside another keeps its
    own name. The grader's scratch folders, memory addresses and chart images (whose
    coordinates are the floats a model was trained to, not the renderer's choices) go too.
    """
    for name, path in sorted(paths.items(), key=lambda kv: -len(str(kv[1]))):
        text = text.replace(str(path), f"<{name}>")
    scratch = re.escape(tempfile.gettempdir()) + r"/dlgrade-[^/\s\"'<>]+"
    text = re.sub(scratch, "<SCRATCH>", text)
    text = _IMAGE.sub(r"\1<IMAGE>", text)
    return _ADDRESS.sub("0x<ADDRESS>", text)


def mask_volatile(text: str, paths: Mapping[str, Path]) -> str:
    """``mask_machine``, and the dates and timings that differ between two runs."""
    text = _TIMESTAMP.sub("<TIMESTAMP>", mask_machine(text, paths))
    return _SECONDS.sub("<SECONDS> s", text)


def _masked_numbers(value: object) -> object:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return MEASURED
    if isinstance(value, Mapping):
        return {k: _masked_numbers(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked_numbers(v) for v in value]
    return value


def _masked_check(check: CheckResult) -> CheckResult:
    # The grader's probabilities are drawn (the chart's bytes are masked), never listed.
    kept = {k: v for k, v in check.details.items() if k == GRADER_PROBABILITIES}
    details = _masked_numbers({k: v for k, v in check.details.items() if k not in kept})
    assert isinstance(details, dict)
    details |= kept
    return dataclasses.replace(
        check,
        message=_MEASURED.sub(MEASURED, check.message),
        hint=_MEASURED.sub(MEASURED, check.hint),
        details=details,
    )


def mask_measurements(report: GradeReport) -> GradeReport:
    """``report`` with every number in its checks' words and details shown as ``<N>``; scores,
    statuses, ids and titles untouched, so a live page still proves what a student is told and
    awarded. A mask cannot tell a measured 0.513 from a constant 1e-9, so it hides both: the
    byte-exact goldens are the ones that show every number as it is formatted."""
    questions = tuple(
        dataclasses.replace(q, checks=tuple(_masked_check(c) for c in q.checks))
        for q in report.questions
    )
    # Which sandbox graded, and why, is the machine's (root or not, cgroups or not): shown as
    # its mode only, with words that do not vary.
    confinement = dataclasses.replace(
        report.run.confinement, reason="<SANDBOX REASON>", limits=("<SANDBOX LIMITS>",)
    )
    run = dataclasses.replace(report.run, confinement=confinement)
    return dataclasses.replace(report, questions=questions, run=run)


def perturbed(value: Any, factor: float) -> Any:
    """``value`` with every float in it (in dataclasses, mappings, sequences) times ``factor``."""
    if isinstance(value, float):
        return value * factor
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        changes = {f.name: perturbed(getattr(value, f.name), factor) for f in fields if f.init}
        return dataclasses.replace(value, **changes)
    if isinstance(value, dict):
        return {k: perturbed(v, factor) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(perturbed(v, factor) for v in value)
    return value


def perturb_artifacts(result_dir: Path, factor: float) -> int:
    """Every float in the JSON and npz artifacts under ``result_dir`` times ``factor``, in
    place; returns how many files changed, so a test can tell it perturbed something."""
    changed = 0
    for path in sorted((result_dir / "artifacts").rglob("*")):
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            path.write_text(json.dumps(perturbed(data, factor)), encoding="utf-8")
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            scaled = {k: a * factor if a.dtype.kind == "f" else a for k, a in arrays.items()}
            np.savez(path, **scaled)
        else:
            continue
        changed += 1
    return changed


def check_golden(name: str, actual: str, update: bool) -> None:
    path = GOLDENS / name
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.is_file():
        pytest.fail(f"no golden {path.name}; create it with `pytest --update-goldens`")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"tests/goldens/{name}",
            tofile="rendered now (masked)",
            n=2,
        )
        lines = list(diff)
        shown = "".join(lines[:400]) + (
            f"... {len(lines) - 400} more\n" if len(lines) > 400 else ""
        )
        pytest.fail(
            f"{name} differs from its golden; if the change is intended, rerun with "
            f"--update-goldens and review the diff in git:\n{shown}",
            pytrace=False,
        )


Renderer = Callable[[GradeReport, Path, Mapping[str, LossBand]], str]

PAGES: dict[str, Renderer] = {
    "html": lambda r, d, b: render_html(r, d, bands=b),
    "student.html": lambda r, d, b: render_html(r, d, student_view=True, bands=b),
    "md": lambda r, d, b: render_markdown(r, d, bands=b).text,
    "txt": lambda r, d, b: "\n".join(report_lines(r)) + "\n",
    "verbose.txt": lambda r, d, b: "\n".join(report_lines(r, verbose=True)) + "\n",
}
"""What a student or a TA reads of one graded submission."""
RENDERERS: dict[str, Renderer] = {
    **PAGES,
    "gradescope.json": lambda r, d, b: json.dumps(gradescope_results(r), indent=2) + "\n",
    "gradebook.csv": lambda r, d, b: gradebook_csv([r]),
}
"""The pages and the other outputs that show numbers, for the byte-exact goldens."""


def _paths(result_dir: Path) -> dict[str, Path]:
    return {"OUT": result_dir.parent, "REPO": REPO, "PYTHON": Path(sys.prefix)}


# --- byte-exact, from the hand-built report ---------------------------------------------------


def _built_page(report: GradeReport, result_dir: Path, fmt: str) -> str:
    return mask_machine(RENDERERS[fmt](report, result_dir, None), {"OUT": result_dir})


@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_the_hand_built_report_matches_its_goldens(
    fmt: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    page = _built_page(build_report(tmp_path), tmp_path, fmt)
    check_golden(f"{BUILT}.{fmt}", page, bool(request.config.getoption("--update-goldens")))


@pytest.mark.parametrize("factor", [1 + PERTURBATION, 1 - PERTURBATION], ids=["up", "down"])
def test_the_goldens_hold_when_every_float_moves_by_1e_9(factor: float, tmp_path: Path) -> None:
    """Another CPU changes a trained model's last digits; the goldens must not see it."""
    report = build_report(tmp_path)
    moved = perturbed(report, factor)
    assert to_plain(moved) != to_plain(report), "the perturbation must reach the report"
    assert perturb_artifacts(tmp_path, factor) >= 2, "and the artifacts the charts read"
    for fmt in sorted(RENDERERS):
        check_golden(f"{BUILT}.{fmt}", _built_page(moved, tmp_path, fmt), update=False)


def test_perturbing_reaches_every_float_and_nothing_else() -> None:
    @dataclasses.dataclass(frozen=True)
    class Inner:
        x: float
        n: int
        flag: bool

    value = {"a": [1.5, 2, True], "b": (Inner(x=0.25, n=3, flag=False), "0.5")}
    assert perturbed(value, 2.0) == {
        "a": [3.0, 2, True],
        "b": (Inner(x=0.5, n=3, flag=False), "0.5"),
    }


# --- masked, from real runs -------------------------------------------------------------------

Graded = tuple[str, GradeReport, Path, dict[str, LossBand]]


@pytest.fixture(params=SCENARIOS)
def graded(
    request: pytest.FixtureRequest, graded_submission: Callable[[str], tuple[GradeReport, Path]]
) -> Graded:
    """One fixture submission graded for real (once per session), its pages as the pipeline
    wrote them."""
    scenario: str = request.param
    report, out = graded_submission(scenario)
    band = reference_loss_bands(load_thresholds(), report.run.profile.name)
    return scenario, report, out / report.run.submission.name, band


@pytest.mark.kernel
@pytest.mark.parametrize("fmt", sorted(PAGES))
def test_the_live_pages_match_their_goldens_with_measurements_masked(
    graded: Graded, fmt: str, request: pytest.FixtureRequest
) -> None:
    scenario, report, result_dir, band = graded
    page = PAGES[fmt](mask_measurements(report), result_dir, band)
    text = mask_volatile(page, _paths(result_dir))
    check_golden(f"{scenario}.{fmt}", text, bool(request.config.getoption("--update-goldens")))


@pytest.mark.kernel
def test_rendering_twice_gives_the_same_bytes(graded: Graded) -> None:
    _, report, result_dir, band = graded
    for fmt, render in sorted(PAGES.items()):
        assert render(report, result_dir, band) == render(report, result_dir, band), fmt
    first, second = (render_markdown(report, result_dir, bands=band) for _ in range(2))
    assert first.images == second.images


@pytest.mark.kernel
def test_the_written_pages_are_the_rendered_ones(graded: Graded) -> None:
    _, report, result_dir, band = graded
    html = (result_dir / "feedback.html").read_text(encoding="utf-8")
    assert html == render_html(report, result_dir, bands=band)
    page = render_markdown(report, result_dir, bands=band)
    assert (result_dir / "feedback.md").read_text(encoding="utf-8") == page.text
    for name, data in page.images.items():
        assert (result_dir / name).read_bytes() == data


# --- the masks themselves ---------------------------------------------------------------------


def test_masking_hides_what_varies_and_keeps_the_rest(tmp_path: Path) -> None:
    out = tmp_path / "out"
    scratch = Path(tempfile.gettempdir()) / "dlgrade-abc123" / "q3"
    text = (
        f"saved to {out}/all_correct/result.json at 2026-11-25T15:09:33+00:00 after 22.7 s; "
        f'ran in {scratch}/work; <img src="data:image/svg+xml;base64,PHN2Zz4=">; '
        "object at 0x7f3a2b1c9d00; accuracy 11.50 % (115 / 1000); slope -1.00 s^2"
    )
    masked = mask_volatile(text, {"OUT": out})
    assert masked == (
        "saved to <OUT>/all_correct/result.json at <TIMESTAMP> after <SECONDS> s; "
        'ran in <SCRATCH>/q3/work; <img src="data:image/svg+xml;base64,<IMAGE>">; '
        "object at 0x<ADDRESS>; accuracy 11.50 % (115 / 1000); slope -1.00 s^2"
    )
    assert mask_machine(text, {"OUT": out}).count("2026-11-25T15:09:33+00:00 after 22.7 s") == 1


def test_masking_measurements_hides_the_checks_numbers_not_their_scores(tmp_path: Path) -> None:
    report = build_report(tmp_path)
    masked = mask_measurements(report)
    before = {c.id: c for q in report.questions for c in q.checks}
    after = {c.id: c for q in masked.questions for c in q.checks}
    assert list(after) == list(before)
    for cid, check in after.items():
        original = before[cid]
        assert (check.score, check.max_score, check.status) == (
            original.score,
            original.max_score,
            original.status,
        )
        assert check.title == original.title
    hidden = after["q1.approx_converges"]
    assert hidden.message == "HIDDEN-MESSAGE: slope -<N>" and hidden.details["slope"] == MEASURED
    assert (masked.score, masked.max_score) == (report.score, report.max_score)
    words = "q1: 2n boxes, E[h^2] after layers 1..10 = 1.02, 618 / 1000; step(+-1e-9)."
    assert _MEASURED.sub(MEASURED, words) == (
        "q1: 2n boxes, E[h^2] after layers <N>..<N> = <N>, <N> / <N>; step(+-<N>)."
    )
