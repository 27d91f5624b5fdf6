"""Gradescope's ``results.json`` from a graded submission, a crash, or nothing yet (a placeholder).

Gradescope answers a missing or invalid results file with "The autograder failed to execute
correctly", which tells a student nothing. So the bundle's entry point
(``graders/gradescope/entry.py``) writes a placeholder before grading starts (a kill by the time
or memory limit leaves that), and every failure in our own process ends as a valid file with a
visible notice and whatever score is known.

Field rules (``docs/specs.md`` of gradescope/autograder_samples; summarised in
``tests/schemas/gradescope_results.schema.json``): the top-level ``score`` is always written, so
the free-response entries may carry no score at all (they are informational boxes, not tests);
a hidden test becomes ``hidden_visibility`` (default ``after_published``: the spec reserves
``hidden`` for tests that carry no points); every output is plain ``text``, because student-
controlled strings (file names, exception messages, answers) appear in it and ``md``/``html``
would interpret them.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from graders.errors import ConfigError, SubmissionError
from graders.models import (
    CheckResult,
    CheckStatus,
    GradeReport,
    ManualItem,
    MissingNotebook,
    QuestionResult,
    RunStatus,
    Visibility,
)
from graders.render.atomic import write_text_atomic
from graders.render.controls import one_line, unix_lines, without_controls
from graders.render.numbers import amount, data, points

JsonDict = dict[str, Any]

OUTPUT_FORMAT = "text"
MAX_TEST_OUTPUT = 8_000
"""Characters per test output: enough for a message and a traceback excerpt, never megabytes."""
MAX_ANSWER_ECHO = 1_500
"""Characters of a free-response answer echoed back, so a student sees it was collected."""
PLACEHOLDER_MESSAGE = (
    "Grading did not finish: the autograder was stopped before it could report (most likely "
    "the time or memory limit of the grading machine). Course staff can see the log; you do "
    "not need to resubmit unless they ask you to."
)


def _clean(text: str, limit: int = MAX_TEST_OUTPUT) -> str:
    """Unix newlines (the spec asks for them; U+2028, U+2029 and NEL too, which the page also
    breaks at), no control characters (Gradescope shows the text as it is: an ESC sequence or
    a direction control from a kernel's output would reach the student's page), and a bounded
    length."""
    text = without_controls(unix_lines(text))
    if len(text) > limit:
        text = text[:limit].rstrip() + f"\n... (cut: {len(text) - limit} more characters)"
    return text


def _points(value: float) -> float:
    """A finite, rounded number: a NaN would make the whole file invalid JSON."""
    return round(float(value), 3) if math.isfinite(value) else 0.0


def _fmt(value: float) -> str:
    return points(_points(value))


def _count(n: float, word: str) -> str:
    """``1 point``, ``2.5 points``, ``3 tests``: a student reads these lines."""
    return amount(_points(n), word)


def _question_number(qid: str, position: int) -> str:
    """``q4`` -> ``"4"``; an id without digits is numbered by its place in the report."""
    match = re.search(r"\d+", qid)
    return str(int(match.group())) if match else str(position)


def resolve_visibility(value: Visibility | str, setting: str = "hidden_visibility") -> Visibility:
    """A visibility setting as Gradescope spells it, or a ConfigError naming the setting."""
    try:
        return Visibility(value)
    except ValueError:
        allowed = ", ".join(v.value for v in Visibility)
        raise ConfigError(f"{setting} must be one of {allowed}; got {value!r}") from None


def _test_visibility(check: CheckResult, hidden: Visibility) -> str:
    return hidden.value if check.visibility is Visibility.HIDDEN else check.visibility.value


def _check_output(check: CheckResult) -> str:
    parts = []
    if check.status is CheckStatus.ERROR:
        parts.append(
            "The grader could not evaluate this test (a problem on the grader's side, flagged "
            "for course staff)."
        )
    if check.message:
        parts.append(check.message)
    for key in ("expected", "found"):
        if key in check.details:
            value = check.details[key]
            parts.append(f"{key.capitalize()}: {value if isinstance(value, str) else data(value)}")
    if check.hint:
        parts.append(f"Hint: {check.hint}")
    return _clean("\n".join(parts))


def _check_test(check: CheckResult, number: str, hidden: Visibility) -> JsonDict:
    return {
        "name": f"{check.question.upper()} {check.title}",
        "number": number,
        "score": _points(check.score),
        "max_score": _points(check.max_score),
        "status": "passed" if check.status is CheckStatus.PASSED else "failed",
        "output": _check_output(check),
        "output_format": OUTPUT_FORMAT,
        "visibility": _test_visibility(check, hidden),
        "tags": [check.question, check.id],
    }


def _manual_test(item: ManualItem, number: str) -> JsonDict:
    """Informational (no score, max_score or status: Gradescope counts no points for it) until
    a TA has scored it (``dlgrade batch --manual-scores``); then a test with those points."""
    if item.points is None:
        lines = [
            f"Graded manually by course staff: up to {_count(item.max_score, 'point')}, not "
            "part of the autograder's score."
        ]
    else:
        lines = [
            f"Graded by course staff: {_fmt(item.points)} / {_count(item.max_score, 'point')}."
        ]
        lines += [f"Comment: {item.comment}"] if item.comment else []
    if item.answered:
        lines += ["Your answer, as collected:", "", _clean(item.text.strip(), MAX_ANSWER_ECHO)]
    else:
        lines.append("No answer was found in this part's answer cell.")
    test: JsonDict = {
        "name": f"{item.question.upper()} {item.title} (free response)",
        "number": number,
    }
    if item.points is not None:
        test["score"] = _points(item.points)
        test["max_score"] = _points(item.max_score)
    test.update(
        {
            "output": _clean("\n".join(lines)),
            "output_format": OUTPUT_FORMAT,
            "visibility": Visibility.VISIBLE.value,
            "tags": [item.question, f"{item.question}.{item.id}", "manual"],
        }
    )
    return test


def _missing_test(question: QuestionResult, missing: MissingNotebook, number: str) -> JsonDict:
    """One test for a question without a notebook: its points lost, the one reason why.

    Gradescope needs no test per check (the top-level ``score`` is always written), and none
    of them ran; one visible test still shows the question's points, so the tests' maxima add
    up to the assignment's, and reveals nothing of a hidden test but its share of the points.
    """
    return {
        "name": f"{question.question.upper()} {question.title}: no notebook",
        "number": number,
        "score": 0.0,
        "max_score": _points(question.max_score),
        "status": "failed",
        "output": _clean(missing.message),
        "output_format": OUTPUT_FORMAT,
        "visibility": Visibility.VISIBLE.value,
        "tags": [question.question, "missing_notebook"],
    }


def _missing(report: GradeReport, qid: str) -> MissingNotebook | None:
    run = report.run.question(qid)
    return run.missing if run is not None else None


def _tests(report: GradeReport, hidden: Visibility) -> list[JsonDict]:
    tests: list[JsonDict] = []
    for position, question in enumerate(report.questions, start=1):
        qnum = _question_number(question.question, position)
        missing = _missing(report, question.question)
        if missing is not None:
            tests.append(_missing_test(question, missing, f"{qnum}.1"))
            continue
        index = 0
        for check in question.checks:
            index += 1
            tests.append(_check_test(check, f"{qnum}.{index}", hidden))
        for item in question.manual:
            index += 1
            tests.append(_manual_test(item, f"{qnum}.{index}"))
    return tests


def _score_line(report: GradeReport, hidden: Visibility) -> str:
    """The total only when every test is visible: Gradescope itself hides it otherwise."""
    checks = [c for q in report.questions for c in q.checks]
    shown = [
        c
        for q in report.questions
        for c in q.checks
        if _missing(report, q.question) is not None
        or _test_visibility(c, hidden) == Visibility.VISIBLE.value
    ]
    if len(shown) == len(checks):
        return f"Autograder score: {_fmt(report.score)} / {_fmt(report.max_score)} points."
    later = _count(len(checks) - len(shown), "more test")
    held = sum(c.max_score for c in checks) - sum(c.max_score for c in shown)
    return (
        f"Tests shown now: {_fmt(sum(c.score for c in shown))} / "
        f"{_count(sum(c.max_score for c in shown), 'point')}. {later} "
        f"({_count(held, 'point')}) will be shown {_WHEN[hidden]}."
    )


_WHEN = {
    Visibility.VISIBLE: "now",
    Visibility.HIDDEN: "to course staff only",
    Visibility.AFTER_DUE_DATE: "after the due date",
    Visibility.AFTER_PUBLISHED: "when grades are published",
}


def _summary(report: GradeReport, hidden: Visibility) -> str:
    run = report.run
    lines = [
        f"Graded with profile {run.profile.name}: {run.profile.reason}.",
        f"Sandbox: {run.confinement.mode.value}: {run.confinement.reason}.",
        "",
    ]
    lines.append(_score_line(report, hidden))
    items = [m for q in report.questions for m in q.manual]
    scored = [m for m in items if m.points is not None]
    if scored:
        todo = len(items) - len(scored)
        later = f"; {todo} of {len(items)} parts are still to grade" if todo else ""
        lines.append(
            f"Free-response answers, graded by course staff: {_fmt(report.manual_score)} / "
            f"{_count(report.manual_max_score, 'point')}, included in the score{later}."
        )
    elif report.manual_max_score:
        lines.append(
            f"Free-response answers ({_count(report.manual_max_score, 'point')}) are graded "
            "by course staff and are not included."
        )
    # A quoted file name or cell error is one line of the list: a message with line breaks
    # ("...\n\nTests shown now: 34 / 34 points.") must not print lines in the grader's wording.
    if run.submission.problems:
        lines += ["", "Problems with the submitted files:"]
        lines += [
            f"  - {one_line(p.path) + ': ' if p.path else ''}{one_line(p.message)}"
            for p in run.submission.problems
        ]
    troubled = [
        q for q in run.questions if q.execution.status is not RunStatus.OK and q.missing is None
    ]
    if troubled:
        lines += ["", "How the notebooks ran:"]
        lines += [
            f"  - {q.question}: {one_line(q.execution.message or q.execution.status.value)}"
            for q in troubled
        ]
    return _clean("\n".join(lines))


def _envelope(score: float, seconds: float, output: str, stdout: Visibility) -> JsonDict:
    return {
        "score": _points(score),
        "execution_time": max(0, round(seconds)),
        "output": output,
        "output_format": OUTPUT_FORMAT,
        "test_output_format": OUTPUT_FORMAT,
        "test_name_format": OUTPUT_FORMAT,
        "visibility": Visibility.VISIBLE.value,
        "stdout_visibility": stdout.value,
    }


def gradescope_results(
    report: GradeReport,
    *,
    hidden_visibility: Visibility | str = Visibility.AFTER_PUBLISHED,
    stdout_visibility: Visibility | str = Visibility.HIDDEN,
) -> JsonDict:
    """The results.json for one graded submission (a plain dict, ready for ``json.dumps``)."""
    hidden = resolve_visibility(hidden_visibility)
    stdout = resolve_visibility(stdout_visibility, "stdout_visibility")
    score = report.score + report.manual_score  # 0 until a TA scores a free-response part
    results = _envelope(score, report.run.seconds, _summary(report, hidden), stdout)
    results["tests"] = _tests(report, hidden)
    results["extra_data"] = {
        "submission": report.run.submission.name,
        "profile": report.run.profile.name,
        "sandbox": report.run.confinement.mode.value,
        "grader_version": report.run.grader_version,
        "max_score": _points(report.max_score),
        "manual_max_score": _points(report.manual_max_score),
        "manual_score": _points(report.manual_score),
    }
    return results


def _crash_notice(exc: BaseException) -> str:
    detail = _clean(one_line(f"{type(exc).__name__}: {exc}"), 600)
    if isinstance(exc, SubmissionError):
        return (
            f"Your submission could not be graded: {one_line(str(exc))}\n\n"
            "Fix this and submit again (upload your .ipynb notebooks, or a .zip of them)."
        )
    if isinstance(exc, KeyboardInterrupt):
        return f"Grading was interrupted before it finished ({detail})."
    return (
        "The autograder failed while grading this submission; this is a problem on the "
        "grader's side, not necessarily with your work. Course staff can see the details and "
        f"will regrade it; you do not need to resubmit.\n\n({detail})"
    )


def crash_results(
    exc: BaseException,
    partial_report: GradeReport | None = None,
    *,
    seconds: float = 0.0,
    hidden_visibility: Visibility | str = Visibility.AFTER_PUBLISHED,
    stdout_visibility: Visibility | str = Visibility.HIDDEN,
) -> JsonDict:
    """A valid results.json after a failure: a visible notice, and the scores already known."""
    notice = _crash_notice(exc)
    base: JsonDict | None = None
    if partial_report is not None:
        try:
            base = gradescope_results(
                partial_report,
                hidden_visibility=hidden_visibility,
                stdout_visibility=stdout_visibility,
            )
        except Exception:  # the report itself may be what broke: fall back to the notice alone
            base = None
    if base is None:
        base = _envelope(0.0, seconds, "", _stdout_visibility(stdout_visibility))
        base["tests"] = []
    base["output"] = _clean(notice + ("\n\n" + base["output"] if base["output"] else ""))
    base["extra_data"] = {**base.get("extra_data", {}), "crashed": True}
    base["extra_data"]["error"] = type(exc).__name__
    return base


def placeholder_results() -> JsonDict:
    """What lies in results.json while grading runs: true if the process is killed mid-way."""
    results = _envelope(0.0, 0.0, PLACEHOLDER_MESSAGE, Visibility.HIDDEN)
    results["tests"] = []
    results["extra_data"] = {"crashed": True, "error": "unfinished"}
    return results


def write_results_json(results: JsonDict, path: Path) -> None:
    """Atomic (a reader sees the old file or the new one) and strict JSON (no NaN)."""
    write_text_atomic(json.dumps(results, indent=2, allow_nan=False) + "\n", path)


def _stdout_visibility(value: Visibility | str) -> Visibility:
    """The crash path must not fail on a bad setting: fall back to instructors-only."""
    try:
        return Visibility(value)
    except ValueError:
        return Visibility.HIDDEN
