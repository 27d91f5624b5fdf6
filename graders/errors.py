"""The grader's exception tree, one exit code each.

A student's mistake is *data* (a failed check, a recorded cell error), never an exception.
Exceptions are for the things that stop the grader itself from doing its job::

    GraderError                      exit 1   anything the grader raises on purpose
    ├── SubmissionError              exit 3   the submission as a whole cannot be graded
    │   ├── InvalidSubmissionError             not a notebook / folder / zip we can read
    │   └── UnsafeSubmissionError              zip bomb, path traversal, too many files
    ├── ConfigError                  exit 4   a profile / rubric / TOML file is wrong
    │   └── MergeMismatchError                a regrade cannot join the stored result
    ├── DataError                    exit 5   datasets missing or corrupt
    ├── ReferenceSolutionError       exit 6   the reference itself misbehaved (a harness bug)
    ├── ExecutionError               exit 7   the kernel machinery failed (not the student's code)
    └── SandboxError                 exit 8   student code cannot be confined here (and the
                                              grader was not told --allow-unconfined)

Every message names the file (and the question, where there is one) and says what to do.
"""

from __future__ import annotations

from pathlib import Path


class GraderError(Exception):
    """Root of every error the grader raises deliberately."""

    exit_code = 1

    def __init__(
        self, message: str, *, path: Path | str | None = None, question: str | None = None
    ):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.question = question
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.question is not None:
            where.append(f"question {self.question}")
        prefix = f"[{', '.join(where)}] " if where else ""
        return f"{prefix}{self.message}"


class SubmissionError(GraderError):
    """The submission as a whole cannot be graded (each question's own problems are data)."""

    exit_code = 3


class InvalidSubmissionError(SubmissionError):
    """Not something we can read as a submission: not a notebook, folder or zip."""


class UnsafeSubmissionError(SubmissionError):
    """The archive tries something dangerous: path traversal, a zip bomb, too many files."""


class ConfigError(GraderError):
    """A configuration file (profiles, rubric) is missing or malformed."""

    exit_code = 4


class MergeMismatchError(ConfigError):
    """A question regrade cannot join the stored result (another profile graded that one)."""


class DataError(GraderError):
    """A dataset file is missing or fails its checksum; the message says how to get it."""

    exit_code = 5


class ReferenceSolutionError(GraderError):
    """The reference solution did not behave: a bug in the grader, never the student's fault."""

    exit_code = 6


class ExecutionError(GraderError):
    """The kernel machinery itself failed (could not start a kernel at all, for instance)."""

    exit_code = 7


class SandboxError(GraderError):
    """This machine cannot confine student code the way it was asked (or at all, and
    ``--allow-unconfined`` was not given); the message says what to install or change."""

    exit_code = 8
