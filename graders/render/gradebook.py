"""The CSV gradebook: one row per submission, one column per question, test and free-response part.

Columns follow the rubric's order (question, then its tests), so two gradebooks of the same
assignment line up column for column whatever subset of questions each run graded; a test the
rubric does not know (a custom rubric, a newer grader) is kept, after the rubric's columns.
Rows are sorted by submission name so the same reports always give the same bytes.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from graders.models import (
    CheckStatus,
    GradeReport,
    ManualItem,
    MissingNotebook,
    RosterEntry,
    RunStatus,
)
from graders.render.atomic import write_text_atomic
from graders.render.numbers import points
from graders.rubric import Rubric, load_rubric

FIXED_COLUMNS = (
    "submission",
    "status",
    "profile",
    "total",
    "max_total",
    "automatic",
    "max_automatic",
    "manual",
    "max_manual",
)
"""``total`` is the grade: the automatic tests' points plus those TAs awarded so far for the
free-response parts (``manual``, empty until one is scored); ``max_total`` counts both."""
NOTES_COLUMN = "notes"


@dataclass(frozen=True, kw_only=True)
class CrashedSubmission:
    """A submission whose grading raised: it still gets its row, so nobody is silently missing."""

    name: str
    error: str
    """One line for the TA: the exception type and message."""


Row = GradeReport | CrashedSubmission


FORMULA_START = re.compile(r"[=+\-@|\uff1d\uff0b\uff0d\uff20']|\s")
"""What makes a spreadsheet read a cell as a formula (``=``, ``+``, ``-``, ``@``, a DDE ``|``,
their full-width forms, which some locales convert), whitespace or a line feed before them
(importers that trim first), and a quote (so that the defusing quote is taken off again by
one rule: ``batch.csv_input.cell``)."""


def needs_defusing(value: str) -> bool:
    """Whether a cell starting with ``value`` gets a quote in front."""
    return FORMULA_START.match(value) is not None


def spreadsheet_text(value: str) -> str:
    """Defuse spreadsheet formulas: names and messages come from student-chosen file names.

    A value that starts with a quote gets one too, so that reading a name back
    (``batch.csv_input.cell`` takes one quote off) gives the name written: ``'=bob`` and
    ``=bob`` stay two students."""
    return "'" + value if needs_defusing(value) else value


def _num(value: float) -> str:
    return points(value) if math.isfinite(value) else ""


def _test_columns(rubric: Rubric, reports: Sequence[GradeReport]) -> list[str]:
    """Question id, then its test ids and its free-response parts (``q2.q2a``), in rubric
    order; unknown ids appended, sorted."""
    columns: list[str] = []
    questions = list(dict.fromkeys([t.split(".", 1)[0] for t in rubric.tests] + [*rubric.manual]))
    for question in questions:
        columns.append(question)
        columns += [t for t in rubric.tests if t.split(".", 1)[0] == question]
        columns += [f"{question}.{m.id}" for m in rubric.manual.get(question, ())]
    extra_questions = sorted({q.question for r in reports for q in r.questions} - set(columns))
    columns += extra_questions
    known = set(columns)
    extra_tests = sorted({c.id for r in reports for q in r.questions for c in q.checks} - known)
    extra_parts = sorted({_part(m) for r in reports for q in r.questions for m in q.manual})
    return columns + extra_tests + [p for p in extra_parts if p not in known]


def _part(item: ManualItem) -> str:
    return f"{item.question}.{item.id}"


def submission_status(report: GradeReport) -> str:
    """``errors`` beats ``load problems``, which beats ``missing notebook``: what a TA must
    look at first comes first.

    errors: a test the grader could not evaluate, or a notebook that timed out or killed its
    kernel. Cell errors alone are the student's mistakes, and already cost points. A missing
    notebook is a question the submission does not answer at all (the notes say which file
    was expected and what was found).
    """
    checks = (c for q in report.questions for c in q.checks)
    if any(c.status is CheckStatus.ERROR for c in checks) or any(
        q.execution.status in (RunStatus.TIMEOUT, RunStatus.KERNEL_DIED)
        for q in report.run.questions
    ):
        return "errors"
    if report.run.submission.problems:
        return "load problems"
    if _missing(report):
        return "missing notebook"
    return "ok"


def _missing(report: GradeReport) -> list[MissingNotebook]:
    return [q.missing for q in report.run.questions if q.missing is not None]


def _notes(report: GradeReport) -> str:
    """One note per problem: a missing question's line replaces the load problem it explains."""
    missing = _missing(report)
    explained = {m.unreadable for m in missing}
    notes = [
        p.message
        for p in report.run.submission.problems
        if f"{p.path}: {p.message}" not in explained
    ]
    notes += [m.message for m in missing]
    notes += [
        f"{q.question}: {q.execution.status.value}"
        for q in report.run.questions
        if q.execution.status in (RunStatus.TIMEOUT, RunStatus.KERNEL_DIED)
    ]
    notes += [
        f"{c.id}: grader error"
        for q in report.questions
        for c in q.checks
        if c.status is CheckStatus.ERROR
    ]
    return "; ".join(notes)


def _report_row(report: GradeReport) -> dict[str, str]:
    row = {
        "submission": spreadsheet_text(report.run.submission.name),
        "status": submission_status(report),
        "profile": spreadsheet_text(report.run.profile.name),
        "total": _num(report.score + report.manual_score),
        "max_total": _num(report.max_score + report.manual_max_score),
        "automatic": _num(report.score),
        "max_automatic": _num(report.max_score),
        "manual": _num(report.manual_score) if _scored(report) else "",
        "max_manual": _num(report.manual_max_score),
        NOTES_COLUMN: spreadsheet_text(_notes(report)),
    }
    for question in report.questions:
        row[question.question] = _num(question.score)
        row.update({c.id: _num(c.score) for c in question.checks})
        row.update({_part(m): _num(m.points) for m in question.manual if m.points is not None})
    return row


def _scored(report: GradeReport) -> bool:
    return any(m.points is not None for q in report.questions for m in q.manual)


def _crash_row(crash: CrashedSubmission) -> dict[str, str]:
    return {
        "submission": spreadsheet_text(crash.name),
        "status": "crashed",
        NOTES_COLUMN: spreadsheet_text(crash.error),
    }


def _name(item: Row) -> str:
    return item.name if isinstance(item, CrashedSubmission) else item.run.submission.name


def _student(entry: RosterEntry | None) -> dict[str, str]:
    if entry is None:
        return {"student": "", "student_id": ""}
    return {
        "student": spreadsheet_text(entry.student),
        "student_id": spreadsheet_text(entry.student_id),
    }


def gradebook_csv(
    reports: Iterable[Row],
    rubric: Rubric | None = None,
    *,
    roster: Mapping[str, RosterEntry] | None = None,
) -> str:
    """The gradebook as CSV text; an empty cell is a test that was not graded for that row,
    or a free-response part no TA has scored yet. With a ``roster`` (submission name ->
    student), each row also names its student (``student``, ``student_id``; empty when the
    roster does not list the submission)."""
    rows = sorted(reports, key=_name)
    graded = [r for r in rows if isinstance(r, GradeReport)]
    columns = _test_columns(rubric or load_rubric(), graded)
    people = ["student", "student_id"] if roster is not None else []
    header = [FIXED_COLUMNS[0], *people, *FIXED_COLUMNS[1:], *columns, NOTES_COLUMN]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, restval="", lineterminator="\n")
    writer.writeheader()
    for item in rows:
        row = _crash_row(item) if isinstance(item, CrashedSubmission) else _report_row(item)
        if roster is not None:
            row |= _student(roster.get(_name(item)))
        writer.writerow(row)
    return buffer.getvalue()


def write_gradebook(
    reports: Iterable[Row],
    path: Path,
    *,
    rubric: Rubric | None = None,
    roster: Mapping[str, RosterEntry] | None = None,
) -> None:
    """Write the gradebook atomically: a spreadsheet open on the old file never sees half."""
    write_text_atomic(gradebook_csv(reports, rubric, roster=roster), path)
