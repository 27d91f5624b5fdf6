"""The TA's summary page of a batch: distributions, failures by cause, slow submissions.

Built from the stored reports only (never re-grading anything). One self-contained HTML file:
the plots are SVG data URIs (``graders.render.svg``), the style inline, no scripts. Failures
are grouped by their message with the numbers taken out, so "expected 0, got 1" and "expected
0, got 7" are one cause with a list of students, which is what a TA needs to spot a shared
misconception or a grader bug.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from graders.batch.similarity import PAIRS_SHOWN, SimilarPair, shown
from graders.batch.store import Row
from graders.models import CheckStatus, GradeReport, RunStatus
from graders.render import svg
from graders.render.atomic import write_text_atomic
from graders.render.gradebook import CrashedSubmission
from graders.render.templating import render

TEMPLATE = "batch_summary.html.j2"
SLOWEST = 10
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.IGNORECASE)


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
    """(caption, SVG data URI)."""
    causes: tuple[Cause, ...]
    slowest: tuple[Slow, ...]
    similar: tuple[SimilarPair, ...]
    """The pairs shown side by side: the most similar ``PAIRS_SHOWN`` of each question."""
    similar_counts: tuple[tuple[str, int, int], ...]
    """(question, pairs at or above the threshold, pairs shown), per question with a pair."""
    similarity_threshold: float


def _svg(data: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")


def _histogram(values: Sequence[float], top: float, title: str) -> svg.Histogram:
    """Half-point bins (at most 20) from 0 to the most points there are; the last bin holds the
    full score."""
    bins = max(1, min(20, int(top * 2) or 1))
    high = max(top, 1e-9)
    counts, _ = np.histogram(np.asarray(values, dtype=np.float64), bins=bins, range=(0, high))
    return svg.Histogram(title=title, counts=tuple(int(c) for c in counts), low=0.0, high=high)


STATUS_COLOURS = {
    CheckStatus.PASSED: "#3a8a4f",
    CheckStatus.PARTIAL: "#d9a73a",
    CheckStatus.FAILED: "#c0504d",
    CheckStatus.ERROR: "#777777",
}


def score_plots(reports: Sequence[GradeReport]) -> list[tuple[str, str]]:
    """Total and per-question histograms; per test, how many passed, partly, failed."""
    if not reports:
        return []
    questions = sorted({q.question for r in reports for q in r.questions})
    panels = [_histogram([r.score for r in reports], max(r.max_score for r in reports), "total")]
    for qid in questions:
        found = [q for r in reports for q in r.questions if q.question == qid]
        panels.append(_histogram([q.score for q in found], max(q.max_score for q in found), qid))
    distribution = svg.histograms(
        panels, colour="#3b6ea5", x_label="points", title="Score distribution"
    )
    tests = sorted({c.id for r in reports for q in r.questions for c in q.checks})
    counts = {s: [0] * len(tests) for s in CheckStatus}
    for r in reports:
        for q in r.questions:
            for c in q.checks:
                counts[c.status][tests.index(c.id)] += 1
    stacks = [
        svg.Stack(label=s.value, colour=STATUS_COLOURS[s], counts=tuple(counts[s]))
        for s in CheckStatus
    ]
    per_test = svg.stacked_bars(tests, stacks, x_label="submissions", title="Per test")
    return [
        ("Score distribution: total and per question", _svg(distribution)),
        ("Per test: passed, partial, failed, grader error", _svg(per_test)),
    ]


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
