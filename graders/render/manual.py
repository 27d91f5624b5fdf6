"""The manual-grading page: every student's answer to each free-response part, side by side.

Grouped by part, not by student: a TA grades one part across the whole class with one set of
expectations in mind, which is faster and fairer than reading submission after submission.
The page is one self-contained HTML file (inline style, no scripts, no network): it opens from
a zip or a shared drive. Answers are shown as the student wrote them, escaped; nothing here
scores anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from graders.models import GradeReport
from graders.render.atomic import write_text_atomic
from graders.render.templating import render

TEMPLATE = "manual_grading.html.j2"


@dataclass(frozen=True, kw_only=True)
class ManualAnswer:
    submission: str
    answered: bool
    text: str
    anchor: str


@dataclass(frozen=True, kw_only=True)
class ManualPart:
    question: str
    id: str
    title: str
    max_score: float
    anchor: str
    answers: tuple[ManualAnswer, ...]
    """Sorted by submission name."""

    @property
    def answered(self) -> int:
        return sum(a.answered for a in self.answers)


@dataclass(frozen=True, kw_only=True)
class ManualView:
    parts: tuple[ManualPart, ...]
    submissions: tuple[str, ...]
    max_score: float
    grader_versions: tuple[str, ...]


def _anchor(*parts: str) -> str:
    """An id attribute from submission and part names (escaped again by the template)."""
    return "-".join("".join(ch if ch.isalnum() else "_" for ch in p) for p in parts)


def manual_view(reports: Iterable[GradeReport]) -> ManualView:
    """Parts in the order the reports list them (question order, then rubric order)."""
    ordered = sorted(reports, key=lambda r: r.run.submission.name)
    keys: list[tuple[str, str]] = []
    meta: dict[tuple[str, str], tuple[str, float]] = {}
    answers: dict[tuple[str, str], list[ManualAnswer]] = {}
    for report in ordered:
        name = report.run.submission.name
        for question in report.questions:
            for item in question.manual:
                key = (item.question, item.id)
                if key not in meta:
                    keys.append(key)
                    meta[key] = (item.title, item.max_score)
                answers.setdefault(key, []).append(
                    ManualAnswer(
                        submission=name,
                        answered=item.answered,
                        text=item.text.strip(),
                        anchor=_anchor(item.question, item.id, name),
                    )
                )
    parts = tuple(
        ManualPart(
            question=q,
            id=mid,
            title=meta[(q, mid)][0],
            max_score=meta[(q, mid)][1],
            anchor=_anchor(q, mid),
            answers=tuple(answers[(q, mid)]),
        )
        for q, mid in keys
    )
    return ManualView(
        parts=parts,
        submissions=tuple(r.run.submission.name for r in ordered),
        max_score=sum(p.max_score for p in parts),
        grader_versions=tuple(sorted({r.run.grader_version for r in ordered})),
    )


def render_manual_html(reports: Iterable[GradeReport]) -> str:
    return render(TEMPLATE, v=manual_view(reports))


def write_manual_html(reports: Iterable[GradeReport], path: Path) -> None:
    write_text_atomic(render_manual_html(reports), path)
