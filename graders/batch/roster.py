"""The course roster: which student each submission belongs to (``dlgrade batch --roster``).

A roster is a CSV with a ``submission`` column (the names the batch gives submissions: folder
or file names) and Canvas's own columns for the student: ``Student``, ``ID``, ``SIS User ID``,
``SIS Login ID``, ``Section`` (any spelling: ``student_id`` and ``name`` are taken too). So a
gradebook exported from Canvas, with one column added, is a roster as it is. A row without a
submission is a student who has not submitted (kept: the Canvas export lists them with no
grade). A row is an ``InputProblem`` when nothing in it can identify the student on import (no
ID, SIS User ID or SIS Login ID) or when its submission is already someone else's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from graders.batch.csv_input import InputProblem, read_rows
from graders.models import RosterEntry

ALIASES = {
    "name": "student",
    "student_name": "student",
    "student_id": "sis_user_id",
    "canvas_id": "id",
    "login": "sis_login_id",
}
"""Other spellings of Canvas's columns (after ``csv_input.column_key``)."""


@dataclass(frozen=True, kw_only=True)
class Roster:
    entries: tuple[RosterEntry, ...]
    """Students in the roster's order, with or without a submission."""

    def for_submission(self, name: str) -> RosterEntry | None:
        return next((e for e in self.entries if e.submission == name), None)


def read_roster(path: Path) -> tuple[Roster, list[InputProblem]]:
    """The roster's students, and a problem for each row that cannot be used."""
    entries: list[RosterEntry] = []
    problems: list[InputProblem] = []
    owners: dict[str, int] = {}
    for row in read_rows(path, ("submission",), "roster"):
        values = {ALIASES.get(k, k): v for k, v in row.values.items()}
        if values.get("student", "").strip().lower() == "points possible":
            continue  # the second row of a Canvas export, not a student
        entry = RosterEntry(
            submission=values.get("submission", ""),
            student=values.get("student", ""),
            id=values.get("id", ""),
            sis_user_id=values.get("sis_user_id", ""),
            sis_login_id=values.get("sis_login_id", ""),
            section=values.get("section", ""),
        )
        if not (entry.id or entry.sis_user_id or entry.sis_login_id):
            who = entry.student or entry.submission or "this row"
            message = f"{who!r} has no ID, SIS User ID or SIS Login ID: an LMS cannot match it"
            problems.append(InputProblem(path=path, line=row.line, message=message))
            continue
        if entry.submission and entry.submission in owners:
            message = (
                f"submission {entry.submission!r} is already on line "
                f"{owners[entry.submission]}; this row is left out"
            )
            problems.append(InputProblem(path=path, line=row.line, message=message))
            continue
        if entry.submission:
            owners[entry.submission] = row.line
        entries.append(entry)
    return Roster(entries=tuple(entries)), problems
