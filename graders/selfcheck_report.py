"""The self-check's report: the public tests in full, the hidden ones as a count and points.

Plain functions of the report and the rubric, with no template engine, because they ship in the
student kit (which carries no renderer beyond this). ``summary_lines`` is what the terminal (and
a notebook cell, through ``check_me``) shows; ``summary_markdown`` is the same for a file.
Messages quote student text (a cell's error), so every line loses its control characters: an
escape sequence in an exception message must not repaint the student's terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graders.models import (
    CheckResult,
    CheckStatus,
    GradeReport,
    ProbeStatus,
    QuestionResult,
    QuestionRun,
    RunStatus,
    Visibility,
)
from graders.render.controls import without_controls
from graders.render.numbers import points, seconds
from graders.rubric import Rubric

MARK = {
    CheckStatus.PASSED: "PASS",
    CheckStatus.PARTIAL: "PART",
    CheckStatus.FAILED: "FAIL",
    CheckStatus.ERROR: "ERR ",
}
RUN_WORDS = {
    RunStatus.OK: "ran cleanly",
    RunStatus.CELL_ERRORS: "some cells raised errors",
    RunStatus.TIMEOUT: "TIMED OUT",
    RunStatus.KERNEL_DIED: "the kernel DIED",
    RunStatus.NOT_RUN: "not run",
}
QUICK_NOTE = (
    "This self-check runs the public tests on small slices of the data with short training. "
    "Your grade also counts the hidden tests, run with the full profile."
)


def inert(text: str) -> str:
    return without_controls(text)


def _run_lines(run: QuestionRun) -> list[str]:
    ex = run.execution
    name = run.notebook.original_name if run.notebook else "no notebook"
    cells = (
        f" ({ex.cells_run}/{ex.cells_total} cells)" if ex.status is not RunStatus.NOT_RUN else ""
    )
    lines = [f"{name}: {RUN_WORDS[ex.status]}{cells}, {seconds(ex.seconds)}"]
    if ex.message:
        lines.append(ex.message)
    if run.probe.status is ProbeStatus.FAILED and run.probe.message not in ("", ex.message):
        lines.append(f"the grader could not inspect the results: {run.probe.message}")
    return lines


def _public(result: QuestionResult) -> list[CheckResult]:
    return [c for c in result.checks if c.visibility is Visibility.VISIBLE]


def _hidden_line(result: QuestionResult, rubric: Rubric) -> str:
    hidden = rubric.hidden_tests(result.question)
    if not hidden.count:
        return ""
    worth = points(hidden.points)
    tests = f"{hidden.count} hidden test{'s' if hidden.count != 1 else ''}"
    return f"+ {tests} worth {worth} point{'s' if worth != '1' else ''}, run when you submit"


def _manual_line(result: QuestionResult) -> str:
    if not result.manual:
        return ""
    todo = [m.id for m in result.manual if not m.answered]
    done = len(result.manual) - len(todo)
    text = f"free response: {done} of {len(result.manual)} answered"
    return text + (f" (still to answer: {', '.join(todo)})" if todo else "")


def _footer(result: QuestionResult, rubric: Rubric) -> list[str]:
    return [text for text in (_hidden_line(result, rubric), _manual_line(result)) if text]


def _shown(
    report: GradeReport, *, only_found: bool
) -> Iterator[tuple[QuestionResult, QuestionRun | None]]:
    for result in report.questions:
        qrun = report.run.question(result.question)
        if only_found and (qrun is None or qrun.notebook is None):
            continue
        yield result, qrun


def _problems(report: GradeReport, questions: tuple[str, ...]) -> list[str]:
    return [
        f"{p.path + ': ' if p.path else ''}{p.message}"
        for p in report.run.submission.problems
        if not questions or p.question in questions
    ]


def _heading(report: GradeReport) -> str:
    run = report.run
    return (
        f"Self-check of {run.submission.name} (public tests, profile {run.profile.name}: "
        f"{run.profile.reason})"
    )


def _score_line(result: QuestionResult) -> str:
    shown = _public(result)
    score, top = sum(c.score for c in shown), sum(c.max_score for c in shown)
    return f"{result.question} {result.title}: {points(score)} / {points(top)} public points"


def summary_lines(
    report: GradeReport,
    rubric: Rubric,
    *,
    only_found: bool = False,
    questions: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> list[str]:
    """The student's summary for a terminal: visible tests in full, hidden ones counted.

    ``only_found`` leaves out questions without a notebook (a single notebook was checked);
    with ``questions``, load problems about other questions' notebooks are left out too.
    ``notes`` come last but one (the kit's word on the questions it does not check).
    """
    lines = [_heading(report)]
    lines += [f"  ! {p}" for p in _problems(report, questions)]
    for result, qrun in _shown(report, only_found=only_found):
        lines.append(f"  {_score_line(result)}")
        if qrun is not None and qrun.missing is not None:  # one line, not a failure per test
            lines.append(f"    {qrun.missing.message}")
            continue
        lines += [f"    {line}" for line in (_run_lines(qrun) if qrun else [])]
        for c in _public(result):
            lines.append(
                f"    [{MARK[c.status]}] {c.title} ({points(c.score)}/{points(c.max_score)})"
            )
            if c.status is not CheckStatus.PASSED:
                lines += [f"           {line}" for line in c.message.splitlines() if line.strip()]
                if c.hint:
                    lines.append(f"           hint: {c.hint}")
        lines += [f"    {text}" for text in _footer(result, rubric)]
    lines += [*notes, QUICK_NOTE]
    return [inert(line) for line in lines]


def _md(text: str) -> str:
    """Student text as inert Markdown: no control characters, no markup of its own."""
    return re.sub(r"([\\`*_\[\]<>#|])", r"\\\1", inert(" ".join(text.split())))


def summary_markdown(
    report: GradeReport,
    rubric: Rubric,
    *,
    only_found: bool = False,
    questions: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> str:
    """The same summary as a Markdown page (``--out``), for a file or a course forum post."""
    out = [f"# {_md(_heading(report))}", ""]
    out += [f"- **!** {_md(p)}" for p in _problems(report, questions)]
    for result, qrun in _shown(report, only_found=only_found):
        out += ["", f"## {_md(_score_line(result))}", ""]
        if qrun is not None and qrun.missing is not None:
            out.append(_md(qrun.missing.message))
            continue
        out += [f"*{_md(line)}*" for line in (_run_lines(qrun) if qrun else [])]
        out.append("")
        for c in _public(result):
            line = f"- **{MARK[c.status].strip()}** {_md(c.title)} ({points(c.score)}/"
            out.append(line + f"{points(c.max_score)})")
            if c.status is not CheckStatus.PASSED:
                out.append(f"  - {_md(c.message)}")
                if c.hint:
                    out.append(f"  - hint: {_md(c.hint)}")
        out += [f"- {_md(text)}" for text in _footer(result, rubric)]
    out += ["", *(_md(note) for note in notes), _md(QUICK_NOTE), ""]
    return "\n".join(out)
