"""The batch's own outputs, rebuilt from the state file: gradebook, manual page, summary.

Rebuilt from every stored result, not only this run's, so a rerun that graded one student
still writes the whole class; each file is replaced atomically. The TAs' free-response scores
(``--manual-scores``) are kept in the state apart from the automatic results and merged here
into every output: the gradebook's totals, the manual-grading page (its fields filled in), and
each student's own result folder (feedback pages, Gradescope's results, result.json), which is
rewritten only when the scores it shows changed or the pipeline rewrote it without them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from graders.batch.decode import report_from_plain
from graders.batch.discover import Discovery
from graders.batch.layout import GRADEBOOK, MANUAL, SIMILARITY, SUMMARY
from graders.batch.options import BatchOptions
from graders.batch.roster import Roster
from graders.batch.similarity import Answer, find_similar, pairs_csv
from graders.batch.store import Row, RowStatus, Store
from graders.batch.summary import summary_view, write_summary_html
from graders.config import load_thresholds
from graders.models import GradeReport, ManualScore
from graders.pipeline import write_outputs
from graders.render.atomic import write_text_atomic
from graders.render.canvas import CANVAS_NAME, write_canvas_gradebook
from graders.render.gradebook import CrashedSubmission, write_gradebook
from graders.render.json_result import to_plain
from graders.render.manual import write_manual_html
from graders.rubric import load_rubric
from graders.score import with_manual_scores


@dataclass(frozen=True, kw_only=True)
class Collected:
    reports: list[GradeReport]
    """Graded submissions, with the TAs' stored scores merged in."""
    crashed: list[CrashedSubmission]


def collect(
    rows: list[Row],
    discovery: Discovery,
    manual: Mapping[str, tuple[ManualScore, ...]] | None = None,
) -> Collected:
    """Graded reports (TA scores merged) and crashed rows (a refused submission is one too)."""
    reports: list[GradeReport] = []
    crashed: list[CrashedSubmission] = []
    for row in rows:
        if row.status is RowStatus.DONE and row.result_json:
            report = report_from_plain(json.loads(row.result_json))
            scores = (manual or {}).get(row.name, ())
            reports.append(with_manual_scores(report, scores) if scores else report)
        else:
            error = row.error or f"not graded ({row.status})"
            crashed.append(CrashedSubmission(name=row.name, error=error))
    for refused in discovery.refused:
        crashed.append(CrashedSubmission(name=refused.label, error=refused.reason))
    return Collected(reports=reports, crashed=crashed)


def manual_digest(scores: tuple[ManualScore, ...]) -> str:
    """What a result folder's TA scores are, in a few bytes (compared with the state's)."""
    plain = json.dumps([to_plain(s) for s in scores], sort_keys=True)
    return hashlib.sha256(plain.encode()).hexdigest()[:16]


def refresh_result_folders(
    store: Store,
    rows: list[Row],
    reports: list[GradeReport],
    manual: Mapping[str, tuple[ManualScore, ...]],
    options: BatchOptions,
) -> list[str]:
    """Rewrite the result folder of each student whose TA scores it does not show yet."""
    applied = {row.name: row.manual_applied for row in rows}
    rubric = load_rubric(options.grade.rubric_file)
    thresholds = load_thresholds(options.grade.thresholds_file)
    refreshed = []
    for report in reports:
        name = report.run.submission.name
        scores = manual.get(name, ())
        folder = options.out / name
        if not scores or not folder.is_dir() or applied.get(name) == manual_digest(scores):
            continue
        write_outputs(report, folder, rubric, thresholds)
        store.set_manual_applied(name, manual_digest(scores))
        refreshed.append(name)
    return refreshed


def write_batch_reports(
    rows: list[Row],
    discovery: Discovery,
    options: BatchOptions,
    collected: Collected,
    roster: Roster | None = None,
    answers: Mapping[str, Sequence[Answer]] | None = None,
) -> dict[str, Path]:
    """The gradebooks, the manual page and the summary; ``answers``: the answer code the workers
    read for this run's submissions (the rest is read here, for the similarity scan)."""
    files = {
        "gradebook": options.out / GRADEBOOK,
        "manual": options.out / MANUAL,
        "summary": options.out / SUMMARY,
        "similarity": options.out / SIMILARITY,
    }
    reports, crashed = collected.reports, collected.crashed
    people = {e.submission: e for e in roster.entries if e.submission} if roster else None
    write_gradebook([*reports, *crashed], files["gradebook"], roster=people)
    if roster is not None:
        files["canvas"] = options.out / CANVAS_NAME
        write_canvas_gradebook(
            reports, roster.entries, files["canvas"], assignment=options.canvas_assignment
        )
    write_manual_html(reports, files["manual"])
    graded = {r.run.submission.name for r in reports}
    sources = [(row.name, Path(row.source)) for row in rows if row.name in graded]
    similar = find_similar(sources, options.similarity_threshold, answers)
    write_text_atomic(pairs_csv(similar), files["similarity"])
    view = summary_view(rows, reports, crashed, similar, options.similarity_threshold)
    write_summary_html(view, files["summary"])
    return files
