"""Q4's ``q4.reported_consistent``: the test accuracy and loss the notebook printed last agree with
the grader's own measurement of the final weights.

The template's ``feed_forward_dataset`` prints ``Average loss: 1.39`` and ``Accuracy (# of correct
guesses): 618.0 / 1000 ( 61.80 %)`` after ``Feeding forward all test data...``; nothing is
returned to a global, so the printed output of the executed notebook is what is read. It is the
student's text, so it is parsed line by line with bounded patterns, and only numbers come out of
it: never the text itself into a message. The last test report is held to the grader's
measurement on the same number of test images. A report typed in, copied from another run or
printed before the last training step disagrees with the weights the notebook ends with.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from nbformat import NotebookNode

from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q4_backprop.checks.accuracy import Measured, measure_final
from graders.render.numbers import number, percent

ACCURACY_TOLERANCE = 0.005
"""Reported vs measured accuracy: the same weights on the same images; the grader's batched
float64 pass may still flip a near-tie the notebook's own arithmetic (float32, one sample at a
time) broke the other way. 5 of 1,000 images is far more than that."""
LOSS_ATOL = 0.006
"""The template prints the loss rounded to 2 decimals (0.005), plus float noise."""
LOSS_RTOL = 0.01
"""Relative slack for a loss computed in float32 or over a rescaled input."""
INJECTED_TAG = "dlgrader-injected"
"""The tag of the grader's own cells in the executed notebook (``graders.inject``)."""
MAX_LINE = 500
"""Longer printed lines are not reports (and are not searched)."""
MAX_LINES = 200_000
"""Lines read at most: the output cap keeps a notebook's output far below this anyway."""

_NUMBER = r"[0-9]{1,12}(?:\.[0-9]{0,12})?(?:[eE][-+]?[0-9]{1,3})?"
HEADER = re.compile(r"feeding forward (?:all |the )?(test|training|train)\b", re.IGNORECASE)
LOSS = re.compile(rf"average loss\s{{0,5}}:?\s{{0,5}}(nan|-?inf|{_NUMBER})", re.IGNORECASE)
COUNT = re.compile(
    rf"accuracy[^\n:]{{0,60}}:?\s{{0,5}}({_NUMBER})\s{{0,5}}/\s{{0,5}}([0-9]{{1,9}})"
    rf"(?:\s{{0,5}}\(\s{{0,5}}({_NUMBER})\s{{0,5}}%)?",
    re.IGNORECASE,
)
PERCENT = re.compile(rf"accuracy[^\n0-9]{{0,60}}({_NUMBER})\s{{0,5}}%", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Report:
    """One accuracy line the notebook printed, with the loss line printed just before it."""

    cell: int
    """The printing cell's index in the student's notebook (0-based, as cell errors count)."""
    data: str
    """``test``, ``training`` (the last ``Feeding forward all ... data`` line before it) or ""."""
    correct: float | None
    total: int | None
    percent: float | None
    loss: float | None


def _printed_lines(nb: NotebookNode) -> Iterator[tuple[int, str]]:
    """(student cell index, line) of everything the student's code cells printed to stdout."""
    index = -1
    count = 0
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        if isinstance(tags, list) and INJECTED_TAG in tags:
            continue
        index += 1
        if cell.get("cell_type") != "code":
            continue
        text = "".join(
            out.get("text", "")
            for out in cell.get("outputs", [])
            if out.get("output_type") == "stream"
            and out.get("name") == "stdout"
            and isinstance(out.get("text", ""), str)
        )
        for line in text.splitlines():
            count += 1
            if count > MAX_LINES:
                return
            if len(line) <= MAX_LINE:
                yield index, line


def printed_reports(nb: NotebookNode) -> list[Report]:
    """Every accuracy report in the notebook's printed output, in order."""
    reports: list[Report] = []
    data, loss = "", None
    for cell, line in _printed_lines(nb):
        header = HEADER.search(line)
        if header:
            data = "test" if header.group(1).lower() == "test" else "training"
            loss = None
        found_loss = LOSS.search(line)
        if found_loss:
            loss = float(found_loss.group(1))
        count = COUNT.search(line)
        if count:
            shown = count.group(3)
            reports.append(
                Report(
                    cell=cell,
                    data=data,
                    correct=float(count.group(1)),
                    total=int(count.group(2)),
                    percent=float(shown) if shown else None,
                    loss=loss,
                )
            )
            loss = None
            continue
        share = PERCENT.search(line)
        if share:
            reports.append(
                Report(
                    cell=cell,
                    data=data,
                    correct=None,
                    total=None,
                    percent=float(share.group(1)),
                    loss=loss,
                )
            )
            loss = None
    return reports


def final_test_report(reports: list[Report]) -> Report | None:
    """The last report on test data: counted ones (``618 / 1000``) before percentages alone,
    which may be another question's in a notebook holding several."""
    counted = [r for r in reports if r.total is not None]
    pool = [r for r in (counted or reports) if r.data != "training"]
    return pool[-1] if pool else None


def _said(report: Report) -> str:
    parts = []
    if report.correct is not None and report.total is not None:
        parts.append(f"{number(report.correct)} / {report.total} correct")
    if report.percent is not None:
        parts.append(f"{number(report.percent)} %")
    return ", ".join(parts)


def _accuracy_ok(report: Report, m: Measured) -> bool:
    if report.correct is not None and not (
        math.isfinite(report.correct)
        and abs(report.correct - m.correct) <= ACCURACY_TOLERANCE * m.total
    ):
        return False
    if report.percent is not None:
        return math.isfinite(report.percent) and (
            abs(report.percent / 100 - m.accuracy) <= ACCURACY_TOLERANCE + 5e-5
        )
    return True


def _loss_ok(reported: float, measured: float) -> bool:
    return math.isfinite(measured) and (
        abs(reported - measured) <= LOSS_ATOL + LOSS_RTOL * abs(measured)
    )


def _why_stale(ctx: CheckContext, report: Report) -> str:
    """Why the last report may not be of the final weights: a cell at or after it that failed,
    cells never run, output dropped at the cap."""
    ex = ctx.run.execution
    notes = []
    later = [e for e in ex.cell_errors if e.cell_index >= report.cell]
    if later:
        e = later[0]
        notes.append(
            f"cell {e.cell_index} raised {e.ename} at or after that report, so the weights may "
            "have changed after it was printed"
        )
    if ex.cells_total and ex.cells_run < ex.cells_total:
        notes.append(f"only {ex.cells_run} of {ex.cells_total} code cells ran")
    if ex.output_truncated:
        notes.append("the notebook's output passed the size cap, so later reports were dropped")
    return f" ({'; '.join(notes)})" if notes else ""


def _nothing_reported(ctx: CheckContext, reports: list[Report]) -> Outcome:
    ex = ctx.run.execution
    if reports:
        what = "the notebook printed accuracies for the training data only"
    else:
        what = (
            "no line such as `Accuracy (# of correct guesses): 618.0 / 1000 ( 61.80 %)` (what "
            "feed_forward_dataset prints) is in the notebook's output"
        )
    cut = (
        " The notebook's output passed the size cap and the rest was dropped."
        if (ex.output_truncated)
        else ""
    )
    return Outcome.failed(
        f"No reported test accuracy to compare with the trained weights: {what}.{cut}",
        hint="Keep the printing code feed_forward_dataset is given, and call "
        "feed_forward_test_data() after the last epoch of training (test_and_train does).",
    )


@check("q4.reported_consistent", "Reported test accuracy and loss match the trained weights")
def reported_consistent(ctx: CheckContext) -> Outcome:
    """Half for the accuracy, half for the loss; the accuracy alone when no finite loss was
    printed with it (the template's loss reads ``nan`` once a softmax output underflows)."""
    default = measure_final(ctx)
    if isinstance(default, Outcome):
        return default
    nb = ctx.executed_notebook()
    if nb is None:
        return Outcome.failed(
            "No executed notebook to read the reported accuracy from: "
            f"{ctx.run.execution.message or 'the notebook did not run'}"
        )
    reports = printed_reports(nb)
    report = final_test_report(reports)
    if report is None:
        return _nothing_reported(ctx, reports)
    m = default
    if report.total == 0:
        return Outcome.failed(
            f"The last test accuracy the notebook printed (cell {report.cell}) counts 0 images.",
            hint="Report the accuracy over x_test, the whole test set the notebook loads.",
        )
    if report.total is not None and report.total != default.total:
        measured = measure_final(ctx, limit=report.total)
        if isinstance(measured, Outcome):
            return measured
        if measured.total != report.total:
            return Outcome.failed(
                f"The last test accuracy the notebook printed (cell {report.cell}) counts "
                f"{report.total} images, but the test set has {measured.total}.",
                hint="Report the accuracy over x_test, the whole test set the notebook loads.",
            )
        m = measured
    grader = (
        f"the grader measured {m.correct} / {m.total} correct ({percent(m.accuracy)}) and a mean "
        f"loss of {number(m.loss)} with the final weights, on {m.pixels.words}"
    )
    agree: list[str] = []
    disagree: list[str] = []
    notes: list[str] = []
    (agree if _accuracy_ok(report, m) else disagree).append("accuracy")
    shown = _said(report)
    if report.loss is None:
        notes.append("no average loss was printed with it, so only the accuracy is compared")
    elif not math.isfinite(report.loss):
        notes.append(
            f"its average loss reads {number(report.loss)} (a softmax output underflowed to 0 "
            "inside the sum), so only the accuracy is compared"
        )
    else:
        shown += f", average loss {number(report.loss)}"
        (agree if _loss_ok(report.loss, m.loss) else disagree).append("average loss")
    details = {
        "report_cell": report.cell,
        "reported_correct": _finite(report.correct),
        "reported_total": report.total,
        "reported_percent": _finite(report.percent),
        "reported_loss": _finite(report.loss),
        "measured_correct": m.correct,
        "measured_total": m.total,
        "measured_loss": _finite(m.loss),
    }
    where = f"The last test report the notebook printed (cell {report.cell}: {shown})"
    note = f" Note: {'; '.join(notes)}." if notes else ""
    if not disagree:
        return Outcome.passed(f"{where} matches the trained weights: {grader}.{note}", **details)
    return Outcome(
        fraction=len(agree) / (len(agree) + len(disagree)),
        message=f"{where} does not match the trained weights: {grader}. The reported "
        f"{' and '.join(disagree)} {'is' if len(disagree) == 1 else 'are'} wrong"
        + _why_stale(ctx, report)
        + (f"; the {agree[0]} agrees" if agree else "")
        + f".{note}",
        hint="Report what feed_forward_dataset computes on x_test with the weights as they are "
        "after the last epoch; do not type numbers in, or keep a report from an earlier run "
        "or from the training data.",
        details=details,
    )


def _finite(value: float | None) -> float | None:
    """A number for ``details`` (result.json stays strict JSON: no NaN)."""
    return value if value is not None and math.isfinite(value) else None
