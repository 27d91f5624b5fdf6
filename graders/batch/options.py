"""How a batch runs: the options every part of the batch reads (runner, reports, command)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from graders.batch.layout import STATE_NAME, reserved_names
from graders.config import GradeOptions


@dataclass(frozen=True, kw_only=True)
class BatchOptions:
    """How to run a batch; ``grade`` is what each submission is graded with."""

    folder: Path
    out: Path
    grade: GradeOptions = field(default_factory=GradeOptions)
    workers: int | None = None
    """Submissions at once (default: the cores; on Dask: the cluster's threads)."""
    state: Path | None = None
    """The SQLite state file; default ``out/state.sqlite``."""
    regrade: tuple[str, ...] = ()
    """Submission names to grade again even though nothing changed."""
    regrade_all: bool = False
    regrade_questions: tuple[str, ...] = ()
    """Regrade only these questions of the chosen (default: all) graded submissions, keeping
    the stored results of the others."""
    scheduler: str | None = None
    """A Dask scheduler address: grade on that cluster instead of local processes."""
    similarity_threshold: float = 0.8
    manual_scores: tuple[Path, ...] = ()
    """CSV files of TA scores (the manual-grading page's download) to merge into the state."""
    roster: Path | None = None
    """A CSV mapping submission names to students; with it the gradebook names each student
    and ``canvas_gradebook.csv`` is written."""
    canvas_assignment: str = "Deep Learning Assignment 1"
    """The assignment column's header in the Canvas gradebook (``Name (id)`` as Canvas exports
    it updates that assignment; another name creates one)."""

    @property
    def state_path(self) -> Path:
        return self.state or self.out / STATE_NAME

    @property
    def reserved(self) -> frozenset[str]:
        """The names no submission may have: the batch's own files in ``out``."""
        return reserved_names(self.out, self.state_path)
