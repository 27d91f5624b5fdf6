"""What the batch writes into its output folder besides one result folder per student.

``OUT/<submission>/`` shares the folder with the batch's own files, and a submission's name is
a student's folder or file name: a submission named ``state.sqlite`` or ``gradebook.csv`` would
take the place of the state file (the batch could no longer resume) or of the class gradebook.
So these names are the batch's; a submission with one of them is refused, alone, with a
crashed row asking to rename it (``discover``). Compared case-insensitively, so a copy of the
output folder on a case-insensitive disk (macOS, Windows) holds no collision either.
"""

from __future__ import annotations

from pathlib import Path

from graders.render.canvas import CANVAS_NAME

GRADEBOOK = "gradebook.csv"
MANUAL = "manual_grading.html"
SUMMARY = "summary.html"
SIMILARITY = "similarity.csv"
STATE_NAME = "state.sqlite"
"""The SQLite state file's default name, inside the output folder."""
BATCH_FILES = (GRADEBOOK, MANUAL, SUMMARY, SIMILARITY, CANVAS_NAME)
STATE_SIDECARS = ("", "-wal", "-shm", "-journal", ".lock")
"""The state file and what SQLite and the opening lock put beside it."""


def reserved_names(out: Path, state: Path) -> frozenset[str]:
    """Every name (casefolded) a submission may not have in ``out``: the batch's files, and
    the state file's with its sidecars (the default one always: a later run may use it)."""
    names = {n.casefold() for n in BATCH_FILES}
    states = {STATE_NAME}
    if state.parent.resolve() == out.resolve():
        states.add(state.name)
    names |= {(s + tail).casefold() for s in states for tail in STATE_SIDECARS}
    return frozenset(names)


def clashes(name: str, reserved: frozenset[str]) -> bool:
    """Whether a submission called ``name`` would land on one of the batch's own files."""
    return name.casefold() in reserved
