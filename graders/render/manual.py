"""The manual-grading page: every student's answer to each free-response part, side by side.

Grouped by part, not by student: a TA grades one part across the whole class with one set of
expectations in mind, which is faster and fairer than reading submission after submission.
The page is one self-contained HTML file that fetches nothing: it opens from a zip or a shared
drive. Answers are rendered from their Markdown (``answers.py``).

Each answer has a points field (0 to the part's maximum) and a comment; one small inline
script (``reports/templates/manual_grading.js``, allowed by the page's Content-Security-Policy
through its hash and nothing else) checks the fields, keeps a draft in the browser's local
storage, and downloads ``manual_scores.csv`` for ``dlgrade batch --manual-scores``. No server
is needed. Scores already merged into the batch are filled in, so the TA goes on from there.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import markupsafe

from graders.models import GradeReport
from graders.render.atomic import write_text_atomic
from graders.render.templating import TEMPLATE_DIR, TEMPLATE_PACKAGE, render

TEMPLATE = "manual_grading.html.j2"


SCRIPT = "manual_grading.js"
CSV_NAME = "manual_scores.csv"
"""The file the page downloads (``graders/batch/manual_scores.py`` reads it)."""


@dataclass(frozen=True, kw_only=True)
class ManualAnswer:
    submission: str
    answered: bool
    text: str
    anchor: str
    points: float | None = None
    """Merged into the batch already (the field starts with it); None: not scored."""
    comment: str = ""


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
    script: markupsafe.Markup
    """The page's one script, verbatim (its hash is in the page's policy)."""
    script_hash: str
    """``sha256-...`` of ``script``, for the Content-Security-Policy."""
    draft_key: str
    """Local-storage key of this page's draft: the same class and parts give the same key."""
    csv_name: str = CSV_NAME

    @property
    def answers(self) -> int:
        return sum(len(p.answers) for p in self.parts)


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
                        points=item.points,
                        comment=item.comment,
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
    submissions = tuple(r.run.submission.name for r in ordered)
    script = _script()
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    identity = json.dumps([submissions, [(p.question, p.id) for p in parts]])
    return ManualView(
        parts=parts,
        submissions=submissions,
        max_score=sum(p.max_score for p in parts),
        grader_versions=tuple(sorted({r.run.grader_version for r in ordered})),
        script=markupsafe.Markup(script),
        script_hash=f"sha256-{digest}",
        draft_key="dlgrade-manual-" + hashlib.sha256(identity.encode()).hexdigest()[:16],
    )


def _script() -> str:
    source = resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR, SCRIPT)
    text = source.read_text(encoding="utf-8")
    assert "</script" not in text.lower(), "the script must not end its own element"
    return text


def render_manual_html(reports: Iterable[GradeReport]) -> str:
    return render(TEMPLATE, v=manual_view(reports))


def write_manual_html(reports: Iterable[GradeReport], path: Path) -> None:
    write_text_atomic(render_manual_html(reports), path)
