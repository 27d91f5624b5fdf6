"""The typed values passed from step to step: load -> execute -> probe -> (check -> score).

Frozen dataclasses only; output formats are renderers over these (``graders/render/``), never
methods on them. Paths inside a result are relative to the submission's output folder so a
result folder can be moved or zipped without breaking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class MatchedBy(StrEnum):
    """How a notebook was assigned to a question; shown to the student when it was a guess."""

    NAME = "name"
    CONTENT = "content"


@dataclass(frozen=True, kw_only=True)
class NotebookRef:
    """One student notebook, already validated with nbformat, assigned to one question."""

    question: str
    """Question id, e.g. ``"q4"``."""
    path: Path
    """Where the notebook lies in the unpacked submission."""
    original_name: str
    """The file name as the student submitted it (shown in messages)."""
    matched_by: MatchedBy


@dataclass(frozen=True, kw_only=True)
class LoadProblem:
    """Something wrong with the submission's files; data, not an exception."""

    message: str
    path: str | None = None
    question: str | None = None


@dataclass(frozen=True, kw_only=True)
class Submission:
    """A submission after loading: which notebook answers which question, and what was wrong."""

    name: str
    """A short identifier (folder or file stem) used for output folders."""
    source: Path
    """What the user passed: a folder, a notebook or a zip."""
    root: Path
    """The folder holding the (unpacked) files."""
    notebooks: tuple[NotebookRef, ...] = ()
    problems: tuple[LoadProblem, ...] = ()
    found: tuple[str, ...] = ()
    """Every notebook file the loader saw (paths as the student named them), readable or not:
    what a student is told was found when a question has no notebook."""

    def notebook_for(self, question: str) -> NotebookRef | None:
        return next((nb for nb in self.notebooks if nb.question == question), None)


class RunStatus(StrEnum):
    """How a notebook's execution ended, from best to worst."""

    OK = "ok"
    """Every cell ran without an error."""
    CELL_ERRORS = "cell_errors"
    """The kernel survived to the end but some cells raised."""
    TIMEOUT = "timeout"
    """The notebook's total time ran out; later cells were not run."""
    KERNEL_DIED = "kernel_died"
    """The kernel process died (memory limit, os._exit, a crash)."""
    NOT_RUN = "not_run"
    """No notebook for this question, or it could not be read."""


@dataclass(frozen=True, kw_only=True)
class CellError:
    """A cell that raised, with enough context to show the student where and why."""

    cell_index: int
    """Index of the cell in the student's notebook (0-based, injected cells not counted)."""
    ename: str
    evalue: str
    source_excerpt: str
    """The first lines of the failing cell, as the student wrote it."""
    traceback: str = ""
    """The traceback as plain text (ANSI colours stripped), cut to a readable length."""


@dataclass(frozen=True, kw_only=True)
class ExecutionRecord:
    """What happened when one notebook ran in its kernel."""

    question: str
    status: RunStatus
    cells_total: int = 0
    cells_run: int = 0
    cell_errors: tuple[CellError, ...] = ()
    timed_out_cells: tuple[int, ...] = ()
    seconds: float = 0.0
    output_truncated: bool = False
    """True when the notebook printed more than the output cap and the rest was dropped."""
    message: str = ""
    """One human sentence about the run when it did not end well."""
    executed_notebook: str | None = None
    """Relative path of the executed notebook (outputs capped) in the result folder."""
    parameters: dict[str, object] = field(default_factory=dict)
    """The parameter values the grader injected."""
    threads: int = 1
    notices: tuple[str, ...] = ()
    """What the grader had to do differently to run this notebook (no `parameters` cell)."""


class KernelStatus(StrEnum):
    """How one cell, or the probe, ended in the kernel: the raw outcome the record step reads."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    KERNEL_DIED = "kernel_died"
    NOT_RUN = "not_run"


class ProbeStatus(StrEnum):
    OK = "ok"
    PARTIAL = "partial"
    """Some probe steps failed (a missing name, a function that raised)."""
    FAILED = "failed"
    """The probe could not run at all (kernel dead, timeout)."""
    NOT_RUN = "not_run"


@dataclass(frozen=True, kw_only=True)
class ProbeStepError:
    """One probe step that could not produce its artifact, in words for the student."""

    step: str
    kind: str
    """``missing_name`` | ``raised`` | ``bad_value`` | ``timeout`` | ``kernel_died``."""
    message: str


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """A plain-data file produced by a probe: ``.npz`` (no pickles) or ``.json``."""

    name: str
    path: str
    """Relative to the submission's output folder."""
    kind: str
    bytes: int


@dataclass(frozen=True, kw_only=True)
class ProbeRecord:
    """What the grader-owned probe got out of the finished kernel."""

    question: str
    status: ProbeStatus
    artifacts: tuple[Artifact, ...] = ()
    errors: tuple[ProbeStepError, ...] = ()
    seconds: float = 0.0
    message: str = ""
    notices: tuple[str, ...] = ()
    """What the kernel's compatibility layer did (data served, CUDA on the CPU, installs)."""

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)


@dataclass(frozen=True, kw_only=True)
class FreeResponse:
    """A free-response answer, collected for manual grading."""

    id: str
    text: str
    answered: bool


@dataclass(frozen=True, kw_only=True)
class MissingNotebook:
    """A question that no notebook of the submission answers.

    Every report shows it as its one ``message`` and counts the question's points as lost,
    instead of a failed test per check each repeating why; the checks are not run.
    """

    question: str
    expected: str
    """The file name the template gives the question's notebook."""
    found: tuple[str, ...]
    """The notebooks the submission did hold (``Submission.found``)."""
    unreadable: str = ""
    """A notebook meant for this question that could not be read, with the reason; or ""."""
    message: str
    """The one line, e.g. "no notebook for q1: expected q1_step_network.ipynb; found: a.ipynb"."""


@dataclass(frozen=True, kw_only=True)
class QuestionRun:
    """Everything one question's run produced, ready for the checks."""

    question: str
    title: str
    notebook: NotebookRef | None
    execution: ExecutionRecord
    probe: ProbeRecord
    free_responses: tuple[FreeResponse, ...] = ()
    missing: MissingNotebook | None = None
    """Set when no notebook answers the question (then ``notebook`` is None and nothing ran)."""


@dataclass(frozen=True, kw_only=True)
class ProfileChoice:
    """Which hardware profile graded a submission, and why (every report says so)."""

    name: str
    reason: str


class SandboxMode(StrEnum):
    """How student code was confined (every report says which, and why)."""

    BUBBLEWRAP = "bubblewrap"
    """Default-deny: each kernel in new namespaces with an empty root, only what it needs bound
    read-only, no capabilities; the same for a root grader and an ordinary user."""
    USER = "user"
    """No namespaces here: each kernel ran as an unprivileged user, confined by file permissions
    and resource limits only (no network isolation)."""
    UNCONFINED = "unconfined"
    """Nothing confined student code; only ever with an explicit ``--allow-unconfined``."""
    NOT_RECORDED = "not_recorded"
    """A result written before the grader recorded its sandbox."""


@dataclass(frozen=True, kw_only=True)
class Confinement:
    """The sandbox that graded a submission: its mode, why, and what it enforced."""

    mode: SandboxMode
    reason: str
    """Why this mode: what the grader tried and what held on this machine."""
    limits: tuple[str, ...] = ()
    """One sentence each for memory, processes, disk and network: what held and how."""

    @classmethod
    def not_recorded(cls) -> Confinement:
        return cls(
            mode=SandboxMode.NOT_RECORDED,
            reason="this result was written by a grader that did not record its sandbox",
        )


@dataclass(frozen=True, kw_only=True)
class SubmissionRun:
    """One submission graded end to end, before scoring: the output of ``pipeline.run``."""

    submission: Submission
    profile: ProfileChoice
    questions: tuple[QuestionRun, ...]
    grader_version: str
    started_at: str
    """ISO 8601, UTC."""
    seconds: float
    output_dir: Path
    confinement: Confinement = field(default_factory=Confinement.not_recorded)
    """How student code was confined while this submission ran."""

    def question(self, qid: str) -> QuestionRun | None:
        return next((q for q in self.questions if q.question == qid), None)


class Visibility(StrEnum):
    """Who sees a test (Gradescope's values; the grader's own reports follow the same rule)."""

    VISIBLE = "visible"
    HIDDEN = "hidden"
    AFTER_DUE_DATE = "after_due_date"
    AFTER_PUBLISHED = "after_published"


class CheckStatus(StrEnum):
    PASSED = "passed"
    PARTIAL = "partial"
    FAILED = "failed"
    ERROR = "error"
    """The grader itself could not evaluate the test (a harness bug): flagged for the TA."""


GRADER_PROBABILITIES = "grader_probabilities"
"""A check's details key: ``{"indices": [...], "rows": [[p, ...], ...]}``, class probabilities
the grader computed itself for images the notebook sampled; the reports draw them (Q3's bars)."""


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """One named test of one question: points earned, and words a student can act on."""

    question: str
    id: str
    """Stable test id used by the rubric and the gradebook, e.g. ``q4.backprop_step``."""
    title: str
    score: float
    max_score: float
    status: CheckStatus
    visibility: Visibility
    message: str
    """What was expected and what was found."""
    hint: str = ""
    details: dict[str, object] = field(default_factory=dict)
    """Plain numbers a report may plot or tabulate (all computed by the grader)."""


@dataclass(frozen=True, kw_only=True)
class ManualItem:
    """A free-response part, collected for a TA; its points are not in the automatic score."""

    question: str
    id: str
    title: str
    max_score: float
    answered: bool
    text: str
    points: float | None = None
    """What a TA awarded (``dlgrade batch --manual-scores``); None: not graded yet."""
    comment: str = ""
    """The TA's words to the student about this answer."""


@dataclass(frozen=True, kw_only=True)
class ManualScore:
    """A TA's points (and comment) for one free-response part of one submission.

    Read from the CSV the manual-grading page downloads, kept in the batch's state apart from
    the automatic result (a regrade does not lose it), and merged into every output.
    """

    question: str
    item: str
    """The part's id in the rubric (``q2a``)."""
    points: float
    comment: str = ""


@dataclass(frozen=True, kw_only=True)
class RosterEntry:
    """Who a submission belongs to, from the course's roster (``dlgrade batch --roster``).

    The fields are Canvas's: a gradebook exported from Canvas, with a ``submission`` column
    added, is a roster as it is, and the Canvas gradebook the batch writes matches students
    by them on import.
    """

    submission: str
    """The submission's name in the batch (its folder, file or Gradescope name)."""
    student: str = ""
    """The student's name as the LMS shows it (Canvas: "Last, First")."""
    id: str = ""
    """The LMS's own user id (Canvas's ``ID``)."""
    sis_user_id: str = ""
    """The university's student id."""
    sis_login_id: str = ""
    section: str = ""

    @property
    def student_id(self) -> str:
        """The id a person reads: the university's, else the LMS's, else the login."""
        return self.sis_user_id or self.id or self.sis_login_id


@dataclass(frozen=True, kw_only=True)
class QuestionResult:
    question: str
    title: str
    score: float
    max_score: float
    checks: tuple[CheckResult, ...]
    manual: tuple[ManualItem, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GradeReport:
    """A graded submission: the run (what executed, what the probes found) and the scores."""

    run: SubmissionRun
    questions: tuple[QuestionResult, ...]
    score: float
    max_score: float
    manual_max_score: float
    """Points left to the TA (free-response parts), not included in ``max_score``."""
    manual_score: float = 0.0
    """Points TAs have awarded so far (the parts' ``ManualItem.points``), not in ``score``."""

    def question(self, qid: str) -> QuestionResult | None:
        return next((q for q in self.questions if q.question == qid), None)


@dataclass(frozen=True, kw_only=True)
class ProbeInputs:
    """Grader-chosen inputs handed to the probe: arrays go to an .npz, the rest to JSON."""

    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
