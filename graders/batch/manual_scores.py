"""The TAs' free-response points: read from the manual-grading page's CSV, checked row by row.

The page (``render/manual.py``) downloads ``manual_scores.csv`` with one row per scored
answer; ``dlgrade batch --manual-scores FILE`` reads it here. A row is taken only when its
submission is graded in this batch, its part is one of that submission's free-response parts,
and its points are a number from 0 to the part's maximum; any other row is an
``InputProblem`` naming the file and line, and the rows around it are still taken. A part
given twice keeps its later row (a TA who corrected a score below the first one meant it),
but only when both rows name it alike: two rows whose cells differ yet read as one part
(`` q2`` and ``q2``, ``'=bob`` and ``=bob``) may be two students' answers, so neither is taken.
Submission names are matched exactly (``csv_input``): ``alice `` is not ``alice``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from dataclasses import dataclass
from pathlib import Path

from graders.batch.csv_input import CsvRow, InputProblem, read_rows
from graders.models import GradeReport, ManualScore
from graders.render.numbers import points as fmt_points

COLUMNS = ("submission", "question", "item", "points", "max_points", "comment")
"""What the page writes; ``max_points`` is for the TA's eyes and is not read back."""
REQUIRED = ("submission", "question", "item", "points")
MAX_COMMENT_CHARS = 4_000

Parts = Mapping[str, Mapping[tuple[str, str], float]]
"""Submission -> (question, part id) -> the part's maximum: what a row may score."""


@dataclass(frozen=True, kw_only=True)
class ScoredPart:
    """A row that was taken: whose part, its score, and where it came from."""

    submission: str
    score: ManualScore
    source: str
    """``file:line``, kept in the state so a TA can trace a score back to its file."""


def parts_of(reports: list[GradeReport]) -> dict[str, dict[tuple[str, str], float]]:
    """The free-response parts each graded submission has, with their maxima."""
    return {
        r.run.submission.name: {
            (m.question, m.id): m.max_score for q in r.questions for m in q.manual
        }
        for r in reports
    }


def _points(text: str, maximum: float, part: str) -> float | str:
    """The points as a number, or what is wrong with them."""
    if not text:
        return f"no points for {part} (a comment alone is not merged)"
    try:
        value = float(text)
    except ValueError:
        hint = " (use a dot for decimals)" if "," in text else ""
        return f"points {text!r} for {part} is not a number{hint}"
    if not math.isfinite(value):
        return f"points {text!r} for {part} is not a number"
    if not 0 <= value <= maximum + 1e-9:
        return f"{fmt_points(value)} points for {part}, which is worth 0 to {fmt_points(maximum)}"
    return value


def _row(row: CsvRow, path: Path, parts: Parts, ungraded: Set[str]) -> ScoredPart | str:
    """A row taken, or what is wrong with it."""
    name, question, item = (row.values.get(k, "") for k in ("submission", "question", "item"))
    text, comment = row.values.get("points", ""), row.values.get("comment", "")
    if not text and not comment:
        return ""  # nothing entered for this answer: not a problem, nothing to take
    if name not in parts:
        if name in ungraded:
            return f"{name!r} has no graded result to add points to (grade it first)"
        near = name.strip()
        if near != name and (near in parts or near in ungraded):
            return (
                f"no submission named {name!r} in this batch (names are matched exactly, "
                f"spaces included; {near!r} is another submission)"
            )
        return f"no submission named {name!r} in this batch"
    maximum = parts[name].get((question, item))
    if maximum is None:
        known = ", ".join(sorted(f"{q}/{i}" for q, i in parts[name])) or "none"
        return f"{name!r} has no free-response part {question}/{item} (its parts: {known})"
    value = _points(text, maximum, f"{question}/{item}")
    if isinstance(value, str):
        return value
    if len(comment) > MAX_COMMENT_CHARS:
        return f"the comment for {question}/{item} is over {MAX_COMMENT_CHARS} characters"
    score = ManualScore(question=question, item=item, points=value, comment=comment)
    return ScoredPart(submission=name, score=score, source=f"{path}:{row.line}")


def _cells(row: CsvRow) -> tuple[str, str, str]:
    """The cells that name the part, as the file holds them."""
    raw = row.raw
    return raw.get("submission", ""), raw.get("question", ""), raw.get("item", "")


def _clash(key: tuple[str, str, str], first: int) -> str:
    return (
        f"{key[1]}/{key[2]} of {key[0]!r} is also scored on line {first}, in cells written "
        "differently (spaces, a leading quote): it may be another student's row, so neither "
        "is taken; keep one of them"
    )


def read_manual_scores(
    path: Path, parts: Parts, ungraded: Set[str] = frozenset()
) -> tuple[list[ScoredPart], list[InputProblem]]:
    """Every good row of ``path`` and a problem for every bad one.

    ``parts``: what each graded submission may be scored on; ``ungraded``: names the batch
    knows but could not grade (crashed), so their rows get a better reason than "unknown".
    """
    taken: dict[tuple[str, str, str], tuple[CsvRow, ScoredPart]] = {}
    clashed: dict[tuple[str, str, str], int] = {}
    """Parts named by differing cells: the first line that named them."""
    problems: list[InputProblem] = []
    for row in read_rows(path, REQUIRED, "manual scores"):
        result = _row(row, path, parts, ungraded)
        if isinstance(result, str):
            if result:
                problems.append(InputProblem(path=path, line=row.line, message=result))
            continue
        key = (result.submission, result.score.question, result.score.item)
        if key in clashed:
            message = _clash(key, clashed[key])
            problems.append(InputProblem(path=path, line=row.line, message=message))
            continue
        if key in taken:
            earlier = taken[key][0]
            if _cells(earlier) != _cells(row):
                del taken[key]
                clashed[key] = earlier.line
                problems += [
                    InputProblem(path=path, line=earlier.line, message=_clash(key, row.line)),
                    InputProblem(path=path, line=row.line, message=_clash(key, earlier.line)),
                ]
                continue
            problems.append(
                InputProblem(
                    path=path,
                    line=earlier.line,
                    message=f"{key[1]}/{key[2]} of {key[0]!r} is scored again on line "
                    f"{row.line}; that later line is the one taken",
                )
            )
        taken[key] = (row, result)
    return [scored for _, scored in taken.values()], sorted(problems, key=lambda p: p.line)
