"""The roster (submission -> student) and the gradebook in Canvas's import layout.

A roster may be a Canvas gradebook export with a ``submission`` column added: its headers,
its "Points Possible" row and its "Last, First" names must be read as they are. The Canvas
gradebook must be Canvas's layout exactly (Student, ID, SIS User ID, SIS Login ID, Section,
the assignment; then the Points Possible row), with the grade the gradebook's ``total`` and
an empty cell (no change on import) for a student with nothing graded.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import pytest
from feedback_report import build_report

from graders.batch.roster import read_roster
from graders.errors import ConfigError
from graders.models import GradeReport, RosterEntry
from graders.render.canvas import POINTS_POSSIBLE, canvas_gradebook_csv
from graders.render.gradebook import gradebook_csv

CANVAS_EXPORT = (
    "Student,ID,SIS User ID,SIS Login ID,Section,submission,Assignment 1 (4242)\n"
    "    Points Possible,,,,,,45\n"
    '"Lovelace, Ada",101,S001,ada,DL-1,ada_l,\n'
    '"Turing, Alan",102,S002,alan,DL-1,student_<b>,\n'
    '"Hopper, Grace",103,S003,grace,DL-2,,\n'
)


def _named(report: GradeReport, name: str) -> GradeReport:
    submission = dataclasses.replace(report.run.submission, name=name)
    return dataclasses.replace(report, run=dataclasses.replace(report.run, submission=submission))


def test_a_canvas_export_with_a_submission_column_is_a_roster(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(CANVAS_EXPORT, encoding="utf-8")
    roster, problems = read_roster(path)
    assert problems == []
    assert [e.student for e in roster.entries] == ["Lovelace, Ada", "Turing, Alan", "Hopper, Grace"]
    alan = roster.for_submission("student_<b>")
    assert alan == RosterEntry(
        submission="student_<b>",
        student="Turing, Alan",
        id="102",
        sis_user_id="S002",
        sis_login_id="alan",
        section="DL-1",
    )
    assert alan.student_id == "S002"
    assert roster.entries[2].submission == "", "Grace has not submitted: kept, with no grade"


def test_unusable_roster_rows_are_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(
        "submission,name,student_id\nann,Ann,S1\nben,Ben,\nann,Ann Again,S9\ncat,Cat,S3\n",
        encoding="utf-8",
    )
    roster, problems = read_roster(path)
    assert [e.submission for e in roster.entries] == ["ann", "cat"]
    assert [(p.line, p.message) for p in problems] == [
        (3, "'Ben' has no ID, SIS User ID or SIS Login ID: an LMS cannot match it"),
        (4, "submission 'ann' is already on line 2; this row is left out"),
    ]
    assert roster.entries[0].sis_user_id == "S1", "student_id is the SIS User ID"


def test_a_roster_without_a_submission_column_stops_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text("Student,ID\nAda,1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no column submission") as caught:
        read_roster(path)
    assert str(path) in str(caught.value)


def test_the_canvas_gradebook_has_canvas_layout_and_the_total(tmp_path: Path) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(CANVAS_EXPORT, encoding="utf-8")
    roster, _ = read_roster(path)
    alan = build_report(tmp_path / "a")
    ada = _named(build_report(tmp_path / "b"), "ada_l")
    text = canvas_gradebook_csv([alan, ada], roster.entries, assignment="Assignment 1 (4242)")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       "Assignment 1 (4242)"]  # fmt: skip
    maximum = alan.max_score + alan.manual_max_score
    assert rows[1][0] == POINTS_POSSIBLE and float(rows[1][5]) == pytest.approx(maximum)
    assert rows[1][1:5] == ["", "", "", ""]
    total = alan.score + alan.manual_score
    assert rows[2] == ["Lovelace, Ada", "101", "S001", "ada", "DL-1", rows[2][5]]
    assert float(rows[2][5]) == pytest.approx(total)
    assert rows[3][:5] == ["Turing, Alan", "102", "S002", "alan", "DL-1"]
    assert float(rows[3][5]) == pytest.approx(total)
    assert rows[4] == ["Hopper, Grace", "103", "S003", "grace", "DL-2", ""], "empty: no change"
    assert len(rows) == 5


def test_a_formula_in_a_name_is_defused(tmp_path: Path) -> None:
    entry = RosterEntry(submission="x", student='=HYPERLINK("http://e")', id="7")
    text = canvas_gradebook_csv([_named(build_report(tmp_path), "x")], [entry])
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text


def test_the_gradebook_names_each_student_from_the_roster(tmp_path: Path) -> None:
    report = build_report(tmp_path)
    entry = RosterEntry(submission="student_<b>", student="Turing, Alan", sis_user_id="S002")
    rows = list(csv.DictReader(io.StringIO(gradebook_csv([report], roster={"student_<b>": entry}))))
    assert list(rows[0])[:3] == ["submission", "student", "student_id"]
    assert (rows[0]["student"], rows[0]["student_id"]) == ("Turing, Alan", "S002")
    without = next(csv.DictReader(io.StringIO(gradebook_csv([report]))))
    assert "student" not in without, "no roster, no student columns"
