"""The manual-grading page in a real browser: a TA types points and comments, downloads the CSV.

The page is loaded from file:// in headless Chromium (``chromium_cdp``); the test types into
the fields as a keyboard would, clicks the download button with the mouse, and reads the file
Chromium saved. That file must be exactly what ``dlgrade batch --manual-scores`` takes (read
back with the batch's own reader, every row taken), a bad entry must block the download and
be marked, a reload must bring the draft back, and the page must log and fetch nothing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from chromium_cdp import CHROMIUM, Page, browser
from feedback_report import build_report

from graders.batch.manual_scores import parts_of, read_manual_scores
from graders.models import GradeReport
from graders.render.manual import CSV_NAME, write_manual_html

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (`apt-get install -y chromium`)"
)

NAMES = ("alice", "=cmd|' /C calc'!A0", 'o\'neil, "jr"')
"""Submission names are folder names a student chose: one looks like a spreadsheet formula,
one needs CSV quoting."""


def _unscored(report: GradeReport, name: str) -> GradeReport:
    questions = tuple(
        dataclasses.replace(
            q, manual=tuple(dataclasses.replace(m, points=None, comment="") for m in q.manual)
        )
        for q in report.questions
    )
    submission = dataclasses.replace(report.run.submission, name=name)
    run = dataclasses.replace(report.run, submission=submission)
    return dataclasses.replace(report, run=run, questions=questions)


def _grade(name: str, item: str) -> str:
    """A selector for one answer's fields (by its data attributes, as the script reads them)."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'.grade[data-submission="{escaped}"][data-item="{item}"]'


def _js(page: Page, selector: str, what: str) -> object:
    """A property of the element ``selector`` matches (the selector quoted for JavaScript)."""
    return page.evaluate(f"document.querySelector({json.dumps(selector)}).{what}")


def _status(page: Page) -> str:
    return str(page.evaluate("document.getElementById('grading-status').textContent"))


@pytest.fixture
def manual_page(tmp_path: Path) -> tuple[Path, list[GradeReport]]:
    base = build_report(tmp_path / "result")
    reports = [_unscored(base, name) for name in NAMES]
    page = tmp_path / "manual_grading.html"
    write_manual_html(reports, page)
    return page, reports


def test_a_ta_enters_scores_and_downloads_the_csv_the_batch_takes(
    manual_page: tuple[Path, list[GradeReport]], tmp_path: Path
) -> None:
    page_file, reports = manual_page
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with browser(tmp_path) as page:
        page.allow_downloads(downloads)
        page.open(page_file.as_uri())
        assert _status(page) == "0 of 6 answers scored"
        alice, formula, quoted = NAMES
        page.type_into(f"{_grade(alice, 'q3_observations')} input.points", "0.5")
        page.type_into(
            f"{_grade(alice, 'q3_observations')} textarea.comment",
            'Good start; name the classes.\nSee "fig. 2", p. 3',
        )
        page.type_into(f"{_grade(formula, 'q3_test_vs_train')} input.points", "1")
        page.type_into(f"{_grade(quoted, 'q3_observations')} input.points", "1,5")
        page.type_into(f"{_grade(quoted, 'q3_test_vs_train')} input.points", "3")

        page.click("#download-csv")
        assert page.evaluate("document.querySelectorAll('.grade.invalid').length") == 2
        error = f"{_grade(quoted, 'q3_test_vs_train')} .field-error"
        assert _js(page, error, "textContent") == "at most 1 point"
        assert "2 field(s) to fix before downloading" in _status(page)
        assert not list(downloads.iterdir()), "nothing is downloaded while a field is wrong"

        page.type_into(f"{_grade(quoted, 'q3_observations')} input.points", "0")
        page.type_into(f"{_grade(quoted, 'q3_test_vs_train')} input.points", "1")
        shot = page.screenshot(tmp_path / "manual-grading.png")
        print(f"\nscreenshot of the manual-grading page: {shot}")
        page.click("#download-csv")
        page.wait_for_download()
        assert "downloaded manual_scores.csv (4 answers scored)" in _status(page)
        assert page.console == [], page.console
        assert page.errors == [], page.errors
        own = [r for r in page.requests if not r.startswith(("chrome://", "data:", "blob:"))]
        assert own == [page_file.as_uri()]

    saved = downloads / CSV_NAME
    assert saved.read_bytes().startswith(b"\xef\xbb\xbf"), "a BOM, so Excel reads UTF-8"
    taken, problems = read_manual_scores(saved, parts_of(reports))
    assert problems == []
    got = {(t.submission, t.score.item): (t.score.points, t.score.comment) for t in taken}
    assert got == {
        (alice, "q3_observations"): (0.5, 'Good start; name the classes.\nSee "fig. 2", p. 3'),
        (formula, "q3_test_vs_train"): (1.0, ""),
        (quoted, "q3_observations"): (0.0, ""),
        (quoted, "q3_test_vs_train"): (1.0, ""),
    }
    text = saved.read_text(encoding="utf-8-sig")
    assert "\n=cmd" not in text and "'=cmd" in text, "the formula-like name is defused"


def test_the_draft_survives_a_reload(
    manual_page: tuple[Path, list[GradeReport]], tmp_path: Path
) -> None:
    page_file, _ = manual_page
    with browser(tmp_path) as page:
        page.open(page_file.as_uri())
        field = f"{_grade(NAMES[0], 'q3_observations')} input.points"
        page.type_into(field, "1")
        assert page.evaluate("Object.keys(localStorage).length") == 1, "the draft is saved"
        page.open(page_file.as_uri())
        assert _js(page, field, "value") == "1"
        assert "1 entries restored from this browser's draft" in _status(page)
        assert page.console == [] and page.errors == []


def test_merged_scores_are_filled_in(tmp_path: Path) -> None:
    """The page of a batch with scores merged starts from them (the TA goes on from there)."""
    report = build_report(tmp_path / "result")  # q3_observations scored 0.5 with a comment
    page_file = tmp_path / "manual_grading.html"
    write_manual_html([report], page_file)
    with browser(tmp_path) as page:
        page.open(page_file.as_uri())
        field = f"{_grade(report.run.submission.name, 'q3_observations')}"
        assert _js(page, f"{field} input.points", "value") == "0.5"
        assert str(_js(page, f"{field} textarea.comment", "value")).startswith("Half right")
        assert _status(page) == "1 of 2 answers scored"
