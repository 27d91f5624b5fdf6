"""The TA's outputs over many reports: the CSV gradebook and the manual-grading page.

Reports are synthetic (built from the shipped rubric by ``test_gradescope.make_report``), so
every number in a cell is one the test chose; the CSV is read back with the csv module.
"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path

import pytest
from test_gradescope import make_report

from graders.models import (
    CheckStatus,
    ExecutionRecord,
    GradeReport,
    LoadProblem,
    RunStatus,
)
from graders.render.gradebook import (
    FIXED_COLUMNS,
    CrashedSubmission,
    gradebook_csv,
    write_gradebook,
)
from graders.render.manual import manual_view, render_manual_html, write_manual_html
from graders.rubric import Rubric, load_rubric


@pytest.fixture(scope="module")
def rubric() -> Rubric:
    return load_rubric()


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def rubric_columns(rubric: Rubric) -> list[str]:
    """Each question, its tests, then its free-response parts (``q2.q2a``), in rubric order."""
    columns: list[str] = []
    for qid in dict.fromkeys(t.split(".")[0] for t in rubric.tests):
        columns.append(qid)
        columns += [t for t in rubric.tests if t.split(".")[0] == qid]
        columns += [f"{qid}.{m.id}" for m in rubric.manual.get(qid, ())]
    return columns


def with_problem(report: GradeReport, message: str) -> GradeReport:
    sub = replace(report.run.submission, problems=(LoadProblem(message=message, path="x.ipynb"),))
    return replace(report, run=replace(report.run, submission=sub))


def test_two_reports_give_two_rows_in_rubric_column_order(rubric, tmp_path):
    bob = with_problem(make_report(rubric, "bob", fraction=0.5), "x.ipynb is not a notebook")
    alice = make_report(rubric, "alice")
    write_gradebook([bob, alice], tmp_path / "gradebook.csv", rubric=rubric)
    header, rows = read(tmp_path / "gradebook.csv")
    assert header == [*FIXED_COLUMNS, *rubric_columns(rubric), "notes"]
    assert [r["submission"] for r in rows] == ["alice", "bob"]
    assert [r["status"] for r in rows] == ["ok", "load problems"]
    assert "not a notebook" in rows[1]["notes"]
    for row, report in zip(rows, (alice, bob), strict=True):
        assert float(row["total"]) == pytest.approx(report.score, abs=1e-3)  # no TA score yet
        assert float(row["automatic"]) == pytest.approx(report.score, abs=1e-3)
        max_total = report.max_score + report.manual_max_score
        assert float(row["max_total"]) == pytest.approx(max_total, abs=1e-3)
        assert row["manual"] == "" and float(row["max_manual"]) == report.manual_max_score
        assert row["profile"] == "cpu"
        for question in report.questions:
            assert float(row[question.question]) == pytest.approx(question.score, abs=1e-3)
            for check in question.checks:
                assert float(row[check.id]) == pytest.approx(check.score, abs=1e-3)
    assert float(rows[1]["total"]) == pytest.approx(float(rows[0]["total"]) / 2, abs=1e-2)


def test_one_report_and_a_partial_grade_leave_untested_cells_empty(rubric, tmp_path):
    report = make_report(rubric, "carol")
    only_q1 = replace(report, questions=report.questions[:1])
    write_gradebook([only_q1], tmp_path / "one.csv", rubric=rubric)
    header, rows = read(tmp_path / "one.csv")
    assert len(rows) == 1 and header == [*FIXED_COLUMNS, *rubric_columns(rubric), "notes"]
    q1 = report.questions[0].question
    assert rows[0][q1] != ""
    others = [c for c in rubric_columns(rubric) if c.split(".")[0] != q1]
    assert others and all(rows[0][c] == "" for c in others)


def test_crashes_grader_errors_and_timeouts_are_flagged(rubric, tmp_path):
    report = make_report(rubric, "dave")
    first = report.questions[0]
    broken = replace(first.checks[0], status=CheckStatus.ERROR, score=0.0)
    errored = replace(
        report,
        questions=(replace(first, checks=(broken, *first.checks[1:])), *report.questions[1:]),
    )
    erin = make_report(rubric, "erin")
    slow_run = replace(
        erin.run.questions[0],
        execution=ExecutionRecord(question=first.question, status=RunStatus.TIMEOUT),
    )
    timed_out = replace(erin, run=replace(erin.run, questions=(slow_run, *erin.run.questions[1:])))
    crash = CrashedSubmission(name="frank", error="ExecutionError: no kernel")
    write_gradebook([crash, timed_out, errored], tmp_path / "g.csv", rubric=rubric)
    _, rows = read(tmp_path / "g.csv")
    by_name = {r["submission"]: r for r in rows}
    assert by_name["dave"]["status"] == "errors" and broken.id in by_name["dave"]["notes"]
    assert by_name["erin"]["status"] == "errors" and "timeout" in by_name["erin"]["notes"]
    assert by_name["frank"]["status"] == "crashed" and by_name["frank"]["total"] == ""
    assert "no kernel" in by_name["frank"]["notes"]


def test_a_test_the_rubric_does_not_know_is_kept_at_the_end(rubric):
    report = make_report(rubric, "gina")
    first = report.questions[0]
    extra = replace(first.checks[0], id=f"{first.question}.zz_new_test", score=0.25)
    report = replace(
        report, questions=(replace(first, checks=(*first.checks, extra)), *report.questions[1:])
    )
    reader = csv.DictReader(io.StringIO(gradebook_csv([report], rubric)))
    rows = list(reader)
    assert list(reader.fieldnames or [])[-2:] == [extra.id, "notes"]
    assert rows[0][extra.id] == "0.25"


def test_spreadsheet_formulas_in_names_are_defused(rubric):
    report = make_report(rubric, '=HYPERLINK("http://evil","x")')
    row = next(csv.DictReader(io.StringIO(gradebook_csv([report], rubric))))
    assert row["submission"].startswith("'=")


def test_same_reports_same_bytes_and_no_temporary_left(rubric, tmp_path):
    reports = [make_report(rubric, n, fraction=f) for n, f in (("b", 0.3), ("a", 1.0))]
    path = tmp_path / "gradebook.csv"
    path.write_text("old content", encoding="utf-8")
    write_gradebook(reports, path, rubric=rubric)
    first = path.read_bytes()
    write_gradebook(list(reversed(reports)), path, rubric=rubric)
    assert path.read_bytes() == first and b"old content" not in first
    assert [p.name for p in tmp_path.iterdir()] == ["gradebook.csv"]


# --- the manual-grading page ----------------------------------------------------------------


def test_manual_view_groups_each_part_across_students(rubric):
    reports = [make_report(rubric, "zoe"), make_report(rubric, "amy", answered=False)]
    view = manual_view(reports)
    expected = [(m.question, m.id) for parts in rubric.manual.values() for m in parts]
    assert [(p.question, p.id) for p in view.parts] == expected
    for part in view.parts:
        assert [a.submission for a in part.answers] == ["amy", "zoe"]
        assert part.answered == 1
    assert view.max_score == pytest.approx(sum(m.points for p in rubric.manual.values() for m in p))


def test_manual_page_escapes_answers_and_is_self_contained(rubric, tmp_path):
    report = make_report(rubric, "mallory")
    first = report.questions[0]
    item = replace(first.manual[0], text="<script>alert(1)</script> & $\\sigma(u)$")
    report = replace(
        report, questions=(replace(first, manual=(item, *first.manual[1:])), *report.questions[1:])
    )
    html = render_manual_html([report, make_report(rubric, "bob", answered=False)])
    assert html.count("<script") == 1, "the page's own script only"
    assert "alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in html
    assert "http://" not in html and "https://" not in html and "<link" not in html
    assert item.title in html and "No answer." in html
    assert html.index("bob") < html.index("mallory")
    write_manual_html([report], tmp_path / "manual.html")
    assert (tmp_path / "manual.html").read_text(encoding="utf-8") == render_manual_html([report])
