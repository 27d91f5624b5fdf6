"""The TA's summary page of a batch: distributions, failures by cause, slow submissions.

Built from the stored reports only (never re-grading anything). One self-contained HTML file:
the plots are PNG data URIs, the style inline, no scripts. Failures are grouped by their
message with the numbers taken out, so "expected 0, got 1" and "expected 0, got 7" are one
cause with a list of students, which is what a TA needs to spot a shared misconception or a
grader bug.
"""

from __future__ import annotations

import base64
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.figure import Figure

from graders.batch.similarity import PAIRS_SHOWN, SimilarPair, shown
from graders.batch.store import Row
from graders.models import CheckStatus, GradeReport, RunStatus
from graders.render.atomic import write_text_atomic
from graders.render.gradebook import CrashedSubmission
from graders.render.templating import render

TEMPLATE = "batch_summary.html.j2"
SLOWEST = 10
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)
_RC: dict[Any, Any] = {"font.size": 9, "axes.spines.top": False, "axes.spines.right": False}


@dataclass(frozen=True, kw_only=True)
class Cause:
    where: str
    """A test id, ``q3 execution`` or ``grading``."""
    message: str
    submissions: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Slow:
    submission: str
    seconds: float
    worker: str
    questions: tuple[tuple[str, float], ...]


@dataclass(frozen=True, kw_only=True)
class SummaryView:
    total: int
    graded: int
    crashed: int
    profiles: tuple[tuple[str, str, int], ...]
    """(profile, why it was chosen, submissions) for each profile used."""
    grader_versions: tuple[str, ...]
    mean_total: float
    max_total: float
    plots: tuple[tuple[str, str], ...]
    """(caption, PNG data URI)."""
    causes: tuple[Cause, ...]
    slowest: tuple[Slow, ...]
    similar: tuple[SimilarPair, ...]
    """The pairs shown side by side: the most similar ``PAIRS_SHOWN`` of each question."""
    similar_counts: tuple[tuple[str, int, int], ...]
    """(question, pairs at or above the threshold, pairs shown), per question with a pair."""
    similarity_threshold: float


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _hist(ax: object, values: Sequence[float], top: float, title: str) -> None:
    bins = max(1, min(20, int(top * 2) or 1))
    ax.hist(values, bins=bins, range=(0, max(top, 1e-9)), color="#3b6ea5")  # type: ignore[attr-defined]
    ax.set_title(title)  # type: ignore[attr-defined]
    ax.set_xlabel("points")  # type: ignore[attr-defined]


def score_plots(reports: Sequence[GradeReport]) -> list[tuple[str, str]]:
    """Total and per-question histograms; per test, how many passed, partly, failed."""
    if not reports:
        return []
    plots = []
    with matplotlib.rc_context(_RC):
        questions = sorted({q.question for r in reports for q in r.questions})
        fig = Figure(figsize=(3 * (len(questions) + 1), 2.6), layout="constrained")
        axes = fig.subplots(1, len(questions) + 1, squeeze=False)[0]
        _hist(axes[0], [r.score for r in reports], max(r.max_score for r in reports), "total")
        for ax, qid in zip(axes[1:], questions, strict=True):
            found = [q for r in reports for q in r.questions if q.question == qid]
            _hist(ax, [q.score for q in found], max(q.max_score for q in found), qid)
        plots.append(("Score distribution: total and per question", _png(fig)))
        tests = sorted({c.id for r in reports for q in r.questions for c in q.checks})
        counts = {s: [0] * len(tests) for s in CheckStatus}
        for r in reports:
            for q in r.questions:
                for c in q.checks:
                    counts[c.status][tests.index(c.id)] += 1
        fig = Figure(figsize=(8, 0.28 * len(tests) + 1.2), layout="constrained")
        ax = fig.subplots()
        left = [0] * len(tests)
        colors = {"passed": "#3a8a4f", "partial": "#d9a73a", "failed": "#c0504d", "error": "#777"}
        for status in CheckStatus:
            ax.barh(tests, counts[status], left=left, label=status.value, color=colors[status])
            left = [a + b for a, b in zip(left, counts[status], strict=True)]
        ax.invert_yaxis()
        ax.set_xlabel("submissions")
        ax.legend(loc="lower right", fontsize=8)
        plots.append(("Per test: passed, partial, failed, grader error", _png(fig)))
    return plots


def _key(message: str) -> str:
    return _NUMBER.sub("#", message.split("\n", 1)[0]).strip()[:200]


def failure_causes(
    reports: Sequence[GradeReport], crashed: Sequence[CrashedSubmission]
) -> list[Cause]:
    groups: dict[tuple[str, str], list[str]] = {}
    for r in reports:
        name = r.run.submission.name
        missing = set()
        for run in r.run.questions:
            if run.missing is not None:  # one cause, whatever each student did submit
                missing.add(run.question)
                why = "could not be read" if run.missing.unreadable else "not submitted"
                cause = f"no notebook ({run.missing.expected} {why})"
                groups.setdefault((f"{run.question} notebook", cause), []).append(name)
            elif run.execution.status not in (RunStatus.OK, RunStatus.CELL_ERRORS):
                key = (f"{run.question} execution", f"{run.execution.status.value}: ")
                groups.setdefault((key[0], key[1] + _key(run.execution.message)), []).append(name)
        for q in r.questions:
            for c in q.checks if q.question not in missing else ():
                if c.status is not CheckStatus.PASSED:
                    groups.setdefault((c.id, _key(c.message)), []).append(name)
    for crash in crashed:
        groups.setdefault(("grading", _key(crash.error)), []).append(crash.name)
    causes = [Cause(where=w, message=m, submissions=tuple(n)) for (w, m), n in groups.items()]
    return sorted(causes, key=lambda c: (-len(c.submissions), c.where, c.message))


def slowest(rows: Sequence[Row], reports: Sequence[GradeReport]) -> list[Slow]:
    by_name = {r.run.submission.name: r for r in reports}
    timed = sorted((r for r in rows if r.seconds is not None), key=lambda r: -(r.seconds or 0))
    out = []
    for row in timed[:SLOWEST]:
        report = by_name.get(row.name)
        per_q = (
            tuple((q.question, q.execution.seconds) for q in report.run.questions) if report else ()
        )
        out.append(
            Slow(
                submission=row.name,
                seconds=row.seconds or 0.0,
                worker=row.worker or "",
                questions=per_q,
            )
        )
    return out


def _pair_counts(similar: Sequence[SimilarPair]) -> tuple[tuple[str, int, int], ...]:
    found = Counter(pair.question for pair in similar)
    return tuple((q, n, min(n, PAIRS_SHOWN)) for q, n in sorted(found.items()))


def summary_view(
    rows: Sequence[Row],
    reports: Sequence[GradeReport],
    crashed: Sequence[CrashedSubmission],
    similar: Sequence[SimilarPair],
    threshold: float,
) -> SummaryView:
    profiles: dict[tuple[str, str], int] = {}
    for r in reports:
        key = (r.run.profile.name, r.run.profile.reason)
        profiles[key] = profiles.get(key, 0) + 1
    return SummaryView(
        total=len(reports) + len(crashed),
        graded=len(reports),
        crashed=len(crashed),
        profiles=tuple((p, why, n) for (p, why), n in sorted(profiles.items())),
        grader_versions=tuple(sorted({r.run.grader_version for r in reports})),
        mean_total=sum(r.score for r in reports) / len(reports) if reports else 0.0,
        max_total=max((r.max_score for r in reports), default=0.0),
        plots=tuple(score_plots(reports)),
        causes=tuple(failure_causes(reports, crashed)),
        slowest=tuple(slowest(rows, reports)),
        similar=tuple(shown(similar)),
        similar_counts=_pair_counts(similar),
        similarity_threshold=threshold,
    )


def write_summary_html(view: SummaryView, path: Path) -> None:
    write_text_atomic(render(TEMPLATE, v=view), path)
