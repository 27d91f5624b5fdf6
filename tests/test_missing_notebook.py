"""A question without a notebook is one line in every format, and its points are lost.

Before, a submission with only some notebooks got a failed test per check of each missing
question, each repeating "no notebook for q1 ... was found". Now the loader records which
notebooks it saw (``Submission.found``), the pipeline turns that into one
``MissingNotebook`` per question, its checks are not run, and every renderer shows its one
line. The submissions are graded through the real pipeline with a scripted kernel.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from fakes import FakeExecutor

from graders.batch.summary import failure_causes
from graders.config import GradeOptions
from graders.models import CheckStatus, GradeReport
from graders.pipeline import grade
from graders.render.gradebook import gradebook_csv
from graders.render.gradescope import gradescope_results
from graders.render.html import render_html
from graders.render.markdown import render_markdown
from graders.render.summary import report_lines
from graders.rubric import load_rubric
from graders.selfcheck_report import summary_lines

QUICK = GradeOptions(profile="quick")
LINE_Q1 = (
    "no notebook for q1: expected q1_step_network.ipynb; "
    "found: a.ipynb, b.ipynb, q2_initialization.ipynb"
)


def _stray(path: Path) -> None:
    """A notebook that answers no question (its name and code say nothing)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("my notes")])
    nbformat.write(nb, str(path))


@pytest.fixture
def report(fixture_submissions: Path, tmp_path: Path) -> GradeReport:
    source = tmp_path / "only_q2"
    source.mkdir()
    shutil.copyfile(
        fixture_submissions / "all_correct" / "q2_initialization.ipynb",
        source / "q2_initialization.ipynb",
    )
    _stray(source / "a.ipynb")
    _stray(source / "b.ipynb")
    return grade(source, tmp_path / "out", QUICK, executor=FakeExecutor())


def _formats(report: GradeReport) -> dict[str, str]:
    out = report.run.output_dir
    return {
        "html": render_html(report, out),
        "student html": render_html(report, out, student_view=True),
        "markdown": render_markdown(report, out).text,
        "terminal": "\n".join(report_lines(report)),
        "gradescope": json.dumps(gradescope_results(report)),
        "gradebook": gradebook_csv([report]),
        "self-check": "\n".join(summary_lines(report, load_rubric())),
    }


def test_the_line_names_the_expected_file_and_what_was_found(report: GradeReport) -> None:
    q1 = report.run.question("q1")
    assert q1 is not None and q1.missing is not None
    assert q1.missing.message == LINE_Q1
    assert q1.missing.expected == "q1_step_network.ipynb"
    assert report.run.submission.found == ("a.ipynb", "b.ipynb", "q2_initialization.ipynb")
    assert q1.execution.message == LINE_Q1


@pytest.mark.parametrize("fmt", ["html", "student html", "markdown", "terminal", "gradescope",
                                 "gradebook", "self-check"])  # fmt: skip
def test_each_missing_question_is_one_line_in_every_format(report: GradeReport, fmt: str) -> None:
    text = _formats(report)[fmt]
    for qid in ("q1", "q3", "q4"):
        assert len(re.findall(rf"no notebook for {qid}\b", text)) == 1, (fmt, qid)
    assert "no notebook for q2" not in text
    if fmt not in ("gradescope", "gradebook"):  # those two are taken apart below
        start = text.find("no notebook for q1")
        q1_part = text[start : text.index("q2 ", start)]
        assert "no notebook for q1" in q1_part
        assert "box" not in q1_part.lower(), "a q1 test shown after all"


def test_its_points_are_counted_as_missing(report: GradeReport) -> None:
    rubric = load_rubric()
    q1 = report.question("q1")
    assert q1 is not None
    assert q1.score == 0 and q1.max_score == pytest.approx(rubric.question_points("q1"))
    assert all(c.status is CheckStatus.FAILED and c.score == 0 for c in q1.checks)
    assert report.max_score == pytest.approx(
        sum(rubric.question_points(q) for q in ("q1", "q2", "q3", "q4"))
    )
    row = next(csv.DictReader(io.StringIO(gradebook_csv([report]))))
    assert row["q1"] == "0" and row["q1.box_interior"] == "0"
    assert row["status"] == "load problems"  # a.ipynb and b.ipynb answer nothing


def test_gradescope_has_one_test_holding_the_questions_points(report: GradeReport) -> None:
    results = gradescope_results(report)
    q1_tests = [t for t in results["tests"] if "q1" in t["tags"]]
    assert len(q1_tests) == 1
    (test,) = q1_tests
    q1 = report.question("q1")
    assert q1 is not None
    assert test["score"] == 0 and test["max_score"] == pytest.approx(q1.max_score)
    assert test["output"] == LINE_Q1 and test["visibility"] == "visible"
    assert "missing_notebook" in test["tags"]
    q2_tests = [t for t in results["tests"] if "q2" in t["tags"]]
    assert len(q2_tests) > 1, "a question with a notebook keeps a test per check"
    assert "no notebook" not in results["output"]


def test_the_batch_summary_groups_missing_notebooks_into_one_cause(report: GradeReport) -> None:
    causes = failure_causes([report], [])
    missing = [c for c in causes if c.where == "q1 notebook"]
    assert [c.message for c in missing] == ["no notebook (q1_step_network.ipynb not submitted)"]
    assert not any(c.where.startswith("q1.") for c in causes), "no cause per q1 check"


def test_an_unreadable_notebook_is_named_with_its_reason(
    fixture_submissions: Path, tmp_path: Path
) -> None:
    source = tmp_path / "broken_q1"
    shutil.copytree(fixture_submissions / "all_correct", source)
    (source / "q1_step_network.ipynb").write_text("", encoding="utf-8")
    report = grade(source, tmp_path / "out", QUICK, executor=FakeExecutor())
    q1 = report.run.question("q1")
    assert q1 is not None and q1.missing is not None
    assert q1.missing.message == "no notebook for q1: q1_step_network.ipynb: the file is empty"
    row = next(csv.DictReader(io.StringIO(gradebook_csv([report]))))
    assert row["notes"] == q1.missing.message, "the load problem is not repeated"


def test_nothing_found_says_so(tmp_path: Path) -> None:
    source = tmp_path / "empty"
    source.mkdir()
    (source / "notes.txt").write_text("forgot to attach", encoding="utf-8")
    report = grade(source, tmp_path / "out", QUICK, executor=FakeExecutor())
    q3 = report.run.question("q3")
    assert q3 is not None and q3.missing is not None
    assert q3.missing.message == (
        "no notebook for q3: expected q3_fashion_mlp.ipynb; found: no notebook at all"
    )
    assert report.score == 0 and report.max_score > 0
