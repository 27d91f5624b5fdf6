"""The unit of work a batch worker runs: grade one submission, return plain data, never raise.

The same function runs in a local worker process and on a Dask worker, so it takes and
returns only picklable values, and turns every exception of the grading into data: one broken
submission is a crashed row, not a stopped batch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from graders import GRADER_VERSION
from graders.batch.decode import report_from_plain
from graders.batch.similarity import Answer, answers_of
from graders.config import GradeOptions
from graders.errors import MergeMismatchError
from graders.models import GradeReport
from graders.pipeline import grade
from graders.render.answers import answer_html
from graders.render.json_result import to_plain


@dataclass(frozen=True, kw_only=True)
class GradeTask:
    name: str
    source: Path
    out_dir: Path
    """Shared by all workers: each writes ``out_dir/<name>/`` (swapped in atomically)."""
    options: GradeOptions
    cores: int | None = None
    """Cores this submission's kernels may share; None: the whole machine."""
    questions: tuple[str, ...] = ()
    """A partial regrade: only these questions, merged into ``base_json``; (): everything."""
    base_json: str = ""
    """The stored result the regraded questions replace theirs in."""


@dataclass(frozen=True, kw_only=True)
class TaskOutcome:
    name: str
    ok: bool
    seconds: float
    worker: str
    grader_version: str = GRADER_VERSION
    result_json: str = ""
    profile: str = ""
    score: float = 0.0
    max_score: float = 0.0
    error: str = ""
    """One line for the gradebook (exception type and message); the traceback goes to ``detail``."""
    detail: str = ""
    answers: tuple[Answer, ...] | None = None
    """The submission's answer code for the similarity scan, read here in parallel (None: not
    read, the driver reads it at the end)."""
    rendered: tuple[tuple[str, str], ...] = ()
    """(text, HTML) of each free-response answer, rendered here in parallel for the batch's
    manual-grading page (``answers.remember``)."""


def _rendered(report: GradeReport) -> tuple[tuple[str, str], ...]:
    texts = {i.text.strip() for q in report.questions for i in q.manual if i.answered}
    try:
        return tuple((text, str(answer_html(text))) for text in sorted(texts))
    except Exception:  # never a crashed row for this: the manual page renders them itself
        return ()


def _answers(task: GradeTask) -> tuple[Answer, ...] | None:
    try:
        return tuple(answers_of(task.name, task.source))
    except Exception:  # the grade stands; the scan at the end tries again (and says nothing)
        return None


def run_task(task: GradeTask) -> TaskOutcome:
    worker = f"{socket.gethostname()}:{os.getpid()}"
    started = time.monotonic()
    try:
        options = dataclasses.replace(task.options, cores=task.cores or task.options.cores)
        report = None
        if task.questions and task.base_json:
            base = report_from_plain(json.loads(task.base_json))
            partial = dataclasses.replace(options, only=task.questions)
            with contextlib.suppress(MergeMismatchError):  # then a full grade, below
                report = grade(task.source, task.out_dir, partial, base=base)
        if report is None:
            report = grade(task.source, task.out_dir, options)
    except Exception as exc:
        first = (str(exc).splitlines() or [""])[0]
        return TaskOutcome(
            name=task.name,
            ok=False,
            seconds=time.monotonic() - started,
            worker=worker,
            error=f"{type(exc).__name__}: {first}" if first else type(exc).__name__,
            detail=traceback.format_exc(limit=20),
        )
    return TaskOutcome(
        name=task.name,
        ok=True,
        seconds=time.monotonic() - started,
        worker=worker,
        result_json=json.dumps(to_plain(report)),
        profile=report.run.profile.name,
        score=report.score,
        max_score=report.max_score,
        answers=_answers(task),
        rendered=_rendered(report),
    )
