"""The feedback pages of the two fixture submissions, graded for real, against golden files.

Each fixture is graded once per module (quick profile, real kernels), its pages rendered and,
after ``mask_volatile`` hides what changes between runs and machines (times, dates, paths, the
chart images' bytes), compared with ``tests/goldens/``. ``pytest --update-goldens`` rewrites
them; a mismatch fails with a unified diff. Rendering the same report twice must give the same
bytes, unmasked.
"""

from __future__ import annotations

import difflib
import re
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from graders.config import load_thresholds
from graders.models import GradeReport
from graders.pipeline import GradeOptions, grade
from graders.render.html import render_html
from graders.render.markdown import render_markdown
from graders.render.plots import LossBand, reference_loss_band
from graders.render.summary import report_lines
from graders.render.write import write_reports

REPO = Path(__file__).resolve().parents[1]
SUBMISSIONS = REPO / "fixtures" / "submissions"
GOLDENS = Path(__file__).resolve().parent / "goldens"
SCENARIOS = ("all_correct", "blank")

_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")
_SECONDS = re.compile(r"\b\d+\.\d s\b")
_IMAGE = re.compile(r"(data:image/[a-z+]+;base64,)[A-Za-z0-9+/=]+")
_ADDRESS = re.compile(r"\b0x[0-9a-f]{6,}\b")


def mask_volatile(text: str, paths: Mapping[str, Path]) -> str:
    """``text`` with what varies between runs and machines replaced by ``<NAME>`` placeholders.

    ``paths`` maps a placeholder to an absolute path (the output folder, the repository, the
    Python prefix); the longest path is replaced first so a folder inside another keeps its
    own name. The grader's scratch folders, dates, timings, memory addresses and chart images
    (whose bytes depend on matplotlib's version, not on the renderer) go too.
    """
    for name, path in sorted(paths.items(), key=lambda kv: -len(str(kv[1]))):
        text = text.replace(str(path), f"<{name}>")
    scratch = re.escape(tempfile.gettempdir()) + r"/dlgrade-[^/\s\"'<>]+"
    text = re.sub(scratch, "<SCRATCH>", text)
    text = _TIMESTAMP.sub("<TIMESTAMP>", text)
    text = _SECONDS.sub("<SECONDS> s", text)
    text = _IMAGE.sub(r"\1<IMAGE>", text)
    return _ADDRESS.sub("0x<ADDRESS>", text)


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


Graded = tuple[str, GradeReport, Path, LossBand | None]
Renderer = Callable[[GradeReport, Path, LossBand | None], str]

RENDERERS: dict[str, Renderer] = {
    "html": lambda r, d, b: render_html(r, d, band=b),
    "student.html": lambda r, d, b: render_html(r, d, student_view=True, band=b),
    "md": lambda r, d, b: render_markdown(r, d, band=b).text,
    "txt": lambda r, d, b: "\n".join(report_lines(r)) + "\n",
}


@pytest.fixture(scope="module", params=SCENARIOS)
def graded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Graded:
    """One fixture submission graded for real, with its pages written as the pipeline would."""
    scenario: str = request.param
    out = tmp_path_factory.mktemp(f"golden-{scenario}")
    report = grade(SUBMISSIONS / scenario, out, GradeOptions(profile="quick"))
    result_dir = out / report.run.submission.name
    thresholds = load_thresholds()
    write_reports(report, result_dir, thresholds=thresholds)
    return scenario, report, result_dir, reference_loss_band(thresholds, report.run.profile.name)


def _paths(result_dir: Path) -> dict[str, Path]:
    return {"OUT": result_dir.parent, "REPO": REPO, "PYTHON": Path(sys.prefix)}


@pytest.mark.kernel
@pytest.mark.parametrize("fmt", sorted(RENDERERS))
def test_the_pages_match_their_goldens(
    graded: Graded, fmt: str, request: pytest.FixtureRequest
) -> None:
    scenario, report, result_dir, band = graded
    text = mask_volatile(RENDERERS[fmt](report, result_dir, band), _paths(result_dir))
    check_golden(f"{scenario}.{fmt}", text, bool(request.config.getoption("--update-goldens")))


@pytest.mark.kernel
def test_rendering_twice_gives_the_same_bytes(graded: Graded) -> None:
    _, report, result_dir, band = graded
    for fmt, render in sorted(RENDERERS.items()):
        assert render(report, result_dir, band) == render(report, result_dir, band), fmt
    first, second = (render_markdown(report, result_dir, band=band) for _ in range(2))
    assert first.images == second.images


@pytest.mark.kernel
def test_the_written_pages_are_the_rendered_ones(graded: Graded) -> None:
    _, report, result_dir, band = graded
    html = (result_dir / "feedback.html").read_text(encoding="utf-8")
    assert html == render_html(report, result_dir, band=band)
    page = render_markdown(report, result_dir, band=band)
    assert (result_dir / "feedback.md").read_text(encoding="utf-8") == page.text
    for name, data in page.images.items():
        assert (result_dir / name).read_bytes() == data


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
