"""The gradebook in Canvas's CSV import layout (``OUT/canvas_gradebook.csv``).

Canvas imports a gradebook CSV laid out as its own export: ``Student``, ``ID``, ``SIS User
ID``, ``SIS Login ID``, ``Section``, then one column per assignment, and a second row whose
first cell is ``Points Possible`` giving each assignment's maximum. It matches students by
``ID`` (or the SIS ids); an assignment column named as in the export (``Assignment 1
(12345)``, the number being Canvas's assignment id) updates that assignment, any other name
creates a new one. An empty cell changes nothing on import, so a student without a graded
submission gets one, never a 0 the TA did not decide on.

The grade is the same as the gradebook's ``total``: the automatic tests' points plus the
free-response points TAs have merged so far.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

from graders.models import GradeReport, RosterEntry
from graders.render.atomic import write_text_atomic
from graders.render.gradebook import spreadsheet_text
from graders.render.numbers import points

COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
POINTS_POSSIBLE = "    Points Possible"
"""As Canvas's own export writes it (the leading spaces included)."""
DEFAULT_ASSIGNMENT = "Deep Learning Assignment 1"
CANVAS_NAME = "canvas_gradebook.csv"


def grade(report: GradeReport) -> float:
    return round(report.score + report.manual_score, 3)


def points_possible(reports: Iterable[GradeReport]) -> float:
    """The assignment's maximum: every graded question's points and every free-response part."""
    return max((r.max_score + r.manual_max_score for r in reports), default=0.0)


def canvas_gradebook_csv(
    reports: Iterable[GradeReport],
    roster: Sequence[RosterEntry],
    *,
    assignment: str = DEFAULT_ASSIGNMENT,
) -> str:
    """One row per roster student, in the roster's order; the grade empty where none is."""
    graded = {r.run.submission.name: r for r in reports}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*COLUMNS, assignment])
    writer.writerow([POINTS_POSSIBLE, "", "", "", "", points(points_possible(graded.values()))])
    for entry in roster:
        report = graded.get(entry.submission) if entry.submission else None
        people = (entry.student, entry.id, entry.sis_user_id, entry.sis_login_id, entry.section)
        score = points(grade(report)) if report is not None else ""
        writer.writerow([*(spreadsheet_text(v) for v in people), score])
    return buffer.getvalue()


def write_canvas_gradebook(
    reports: Iterable[GradeReport],
    roster: Sequence[RosterEntry],
    path: Path,
    *,
    assignment: str = DEFAULT_ASSIGNMENT,
) -> None:
    write_text_atomic(canvas_gradebook_csv(reports, roster, assignment=assignment), path)
