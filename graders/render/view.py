"""What a feedback page shows, decided once for the HTML, Markdown and terminal templates.

The templates only lay this out: which tests a reader may see (a student's view leaves hidden
tests out and says how many points they hold), the scores shown, the words for a run's status,
every value already formatted and sorted, so the same report renders to the same bytes. Numbers
in details and parameters go through ``numbers.data``: 4 significant figures, never a float's
17 digits, whose last ones differ from one CPU to another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from graders.models import (
    GRADER_PROBABILITIES,
    CellError,
    CheckResult,
    CheckStatus,
    GradeReport,
    LoadProblem,
    ManualItem,
    MatchedBy,
    ProbeStatus,
    ProbeStepError,
    QuestionResult,
    QuestionRun,
    RunStatus,
    Visibility,
)
from graders.render.numbers import data
from graders.render.plots import Chart, LossBand, charts_for

RUN_WORDS = {
    RunStatus.OK: "ran cleanly",
    RunStatus.CELL_ERRORS: "cell errors",
    RunStatus.TIMEOUT: "timed out",
    RunStatus.KERNEL_DIED: "kernel died",
    RunStatus.NOT_RUN: "not run",
}
PROBE_WORDS = {
    ProbeStatus.OK: "found everything it looked for",
    ProbeStatus.PARTIAL: "found only part of what it looked for",
    ProbeStatus.FAILED: "could not run",
    ProbeStatus.NOT_RUN: "did not run",
}
NO_NOTEBOOK = "no notebook"
STATUS_LABELS = {
    CheckStatus.PASSED: "passed",
    CheckStatus.PARTIAL: "partial",
    CheckStatus.FAILED: "failed",
    CheckStatus.ERROR: "grader error",
}
DETAIL_CHARS = 300
"""A check's details value is cut to this many characters: a table cell, not a dump."""


@dataclass(frozen=True, kw_only=True)
class CheckView:
    result: CheckResult
    label: str
    hidden: bool
    """Hidden from students (shown here because this is the TA's view)."""
    details: tuple[tuple[str, str], ...]
    """Sorted ``(key, value as JSON, floats rounded)`` pairs; empty in a student's view."""


@dataclass(frozen=True, kw_only=True)
class ChartView:
    chart: Chart
    src: str
    """Where the image is: a data URI (HTML) or a file name beside the page (Markdown)."""


@dataclass(frozen=True, kw_only=True)
class QuestionView:
    id: str
    title: str
    score: float
    max_score: float
    """The points shown: in a student's view, the visible tests' only."""
    checks: tuple[CheckView, ...]
    hidden_tests: int
    """Tests left out of this view."""
    hidden_points: float
    run: QuestionRun | None
    run_words: str
    run_message: str
    """The run's one sentence, unless it only repeats the first cell error shown below it."""
    probe_words: str
    notebook_note: str
    parameters: tuple[tuple[str, str], ...]
    cell_errors: tuple[CellError, ...]
    probe_errors: tuple[ProbeStepError, ...]
    notices: tuple[str, ...]
    """What the grader did differently to run the notebook as written."""
    charts: tuple[ChartView, ...]
    manual: tuple[ManualItem, ...]
    outcome: str
    """``full``, ``some``, ``none`` or ``empty`` (nothing to score): the colour of the score."""
    missing: str = ""
    """No notebook answers the question: this one line is all a page shows of it."""


@dataclass(frozen=True, kw_only=True)
class FeedbackView:
    report: GradeReport
    student_view: bool
    name: str
    score: float
    max_score: float
    hidden_tests: int
    hidden_points: float
    manual_max_score: float
    problems: tuple[LoadProblem, ...]
    questions: tuple[QuestionView, ...]
    outcome: str
    manual_score: float = 0.0
    """Points TAs awarded for free-response parts so far."""
    manual_scored: int = 0
    """Free-response parts a TA has scored; 0: the totals below are the automatic ones."""
    manual_parts: int = 0
    total: float = 0.0
    """The grade shown: the automatic points plus the TAs' (once any part is scored)."""
    max_total: float = 0.0


def is_hidden(check: CheckResult) -> bool:
    """Anything not plainly visible is withheld from a student until a TA publishes it."""
    return check.visibility is not Visibility.VISIBLE


def _total(values: Iterable[float]) -> float:
    """Points summed and rounded to 3 decimals as ``score.py`` rounds them, maxima as scores:
    a rounded 1.5 against an unrounded 1.5000000001 would colour a full score as partial."""
    return round(sum(values), 3)


def _outcome(score: float, max_score: float) -> str:
    if max_score <= 0:
        return "empty"
    if score >= max_score:
        return "full"
    return "some" if score > 0 else "none"


def _details(check: CheckResult) -> tuple[tuple[str, str], ...]:
    out = []
    for key in sorted(check.details):
        if key == GRADER_PROBABILITIES:  # drawn as the chart beside, not listed
            continue
        text = data(check.details[key])
        if len(text) > DETAIL_CHARS:
            text = text[: DETAIL_CHARS - 1] + "…"
        out.append((key, text))
    return tuple(out)


def _check_view(check: CheckResult, student_view: bool) -> CheckView:
    return CheckView(
        result=check,
        label=STATUS_LABELS[check.status],
        hidden=is_hidden(check),
        details=() if student_view else _details(check),
    )


def _notebook_note(run: QuestionRun | None) -> str:
    if run is None or run.notebook is None:
        return "no notebook"
    nb = run.notebook
    if nb.matched_by is MatchedBy.CONTENT:
        return f"{nb.original_name} (matched to {run.question} by its content, not its name)"
    return nb.original_name


def _run_words(run: QuestionRun | None) -> str:
    if run is not None and run.missing is not None:
        return NO_NOTEBOOK
    return RUN_WORDS[run.execution.status if run else RunStatus.NOT_RUN]


def _run_message(run: QuestionRun | None) -> str:
    if run is None:
        return ""
    ex = run.execution
    return "" if ex.status is RunStatus.CELL_ERRORS and ex.cell_errors else ex.message


def _parameters(run: QuestionRun | None) -> tuple[tuple[str, str], ...]:
    if run is None:
        return ()
    params = run.execution.parameters
    return tuple((k, data(params[k])) for k in sorted(params))


def question_view(
    result: QuestionResult,
    run: QuestionRun | None,
    charts: tuple[ChartView, ...],
    *,
    student_view: bool,
) -> QuestionView:
    missing = run.missing.message if run is not None and run.missing is not None else ""
    # A question without a notebook ran no test, so there is nothing to withhold: all of its
    # points are shown as lost.
    withhold = student_view and not missing
    shown = [c for c in result.checks if not (withhold and is_hidden(c))]
    withheld = [c for c in result.checks if withhold and is_hidden(c)]
    score, max_score = result.score, result.max_score
    if withheld:
        score, max_score = _total(c.score for c in shown), _total(c.max_score for c in shown)
    return QuestionView(
        id=result.question,
        title=result.title,
        score=score,
        max_score=max_score,
        checks=tuple(_check_view(c, student_view) for c in shown),
        hidden_tests=len(withheld),
        hidden_points=sum(c.max_score for c in withheld),
        run=run,
        run_words=_run_words(run),
        run_message=_run_message(run),
        probe_words=PROBE_WORDS[run.probe.status] if run else PROBE_WORDS[ProbeStatus.NOT_RUN],
        notebook_note=_notebook_note(run),
        parameters=_parameters(run),
        cell_errors=tuple(sorted(run.execution.cell_errors, key=lambda e: e.cell_index))
        if run
        else (),
        probe_errors=run.probe.errors if run else (),
        notices=(*run.execution.notices, *run.probe.notices) if run else (),
        charts=charts,
        manual=result.manual,
        outcome=_outcome(score, max_score),
        missing=missing,
    )


ImageSource = Callable[[Chart], str]
"""Turns a drawable chart into the ``src`` a page links it by."""


def feedback_view(
    report: GradeReport,
    result_dir: Path | None,
    *,
    student_view: bool = False,
    bands: Mapping[str, LossBand] | None = None,
    image_src: ImageSource | None = None,
) -> FeedbackView:
    """The view of one graded submission; ``result_dir`` None (or no ``image_src``): no charts."""
    questions = []
    for result in report.questions:
        run = report.run.question(result.question)
        charts: tuple[ChartView, ...] = ()
        if run is not None and result_dir is not None and image_src is not None:
            charts = tuple(
                ChartView(chart=c, src=image_src(c) if c.plot is not None else "")
                for c in charts_for(run, result_dir, (bands or {}).get(run.question), result.checks)
            )
        questions.append(question_view(result, run, charts, student_view=student_view))
    score, max_score = report.score, report.max_score
    if any(q.hidden_tests for q in questions):
        score = _total(q.score for q in questions)
        max_score = _total(q.max_score for q in questions)
    items = [m for q in report.questions for m in q.manual]
    scored = sum(m.points is not None for m in items)
    total, max_total = score, max_score
    if scored:
        total = _total((score, report.manual_score))
        max_total = _total((max_score, report.manual_max_score))
    return FeedbackView(
        report=report,
        student_view=student_view,
        name=report.run.submission.name,
        score=score,
        max_score=max_score,
        hidden_tests=sum(q.hidden_tests for q in questions),
        hidden_points=sum(q.hidden_points for q in questions),
        manual_max_score=report.manual_max_score,
        problems=report.run.submission.problems,
        questions=tuple(questions),
        outcome=_outcome(total, max_total),
        manual_score=report.manual_score,
        manual_scored=scored,
        manual_parts=len(items),
        total=total,
        max_total=max_total,
    )
