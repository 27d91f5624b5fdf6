"""The batch's own outputs, rebuilt from the state file: gradebook, manual page, summary.

Rebuilt from every stored result, not only this run's, so a rerun that graded one student
still writes the whole class; each file is replaced atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from graders.batch.decode import report_from_plain
from graders.batch.discover import Discovery
from graders.batch.options import BatchOptions
from graders.batch.similarity import find_similar
from graders.batch.store import Row, RowStatus
from graders.batch.summary import summary_view, write_summary_html
from graders.models import GradeReport
from graders.render.gradebook import CrashedSubmission, write_gradebook
from graders.render.manual import write_manual_html

GRADEBOOK = "gradebook.csv"
MANUAL = "manual_grading.html"
SUMMARY = "summary.html"


def collect(
    rows: list[Row], discovery: Discovery
) -> tuple[list[GradeReport], list[CrashedSubmission]]:
    """Graded reports and crashed rows (a duplicate name is a crashed row of its own)."""
    reports: list[GradeReport] = []
    crashed: list[CrashedSubmission] = []
    for row in rows:
        if row.status is RowStatus.DONE and row.result_json:
            reports.append(report_from_plain(json.loads(row.result_json)))
        else:
            error = row.error or f"not graded ({row.status})"
            crashed.append(CrashedSubmission(name=row.name, error=error))
    for name, path in discovery.duplicates:
        crashed.append(
            CrashedSubmission(
                name=f"{name} ({path.name})",
                error=f"another submission is also named {name}; rename one and rerun",
            )
        )
    return reports, crashed


def write_batch_reports(
    rows: list[Row], discovery: Discovery, options: BatchOptions
) -> dict[str, Path]:
    reports, crashed = collect(rows, discovery)
    files = {
        "gradebook": options.out / GRADEBOOK,
        "manual": options.out / MANUAL,
        "summary": options.out / SUMMARY,
    }
    write_gradebook([*reports, *crashed], files["gradebook"])
    write_manual_html(reports, files["manual"])
    graded = {r.run.submission.name for r in reports}
    sources = [(row.name, Path(row.source)) for row in rows if row.name in graded]
    similar = find_similar(sources, options.similarity_threshold)
    view = summary_view(rows, reports, crashed, similar, options.similarity_threshold)
    write_summary_html(view, files["summary"])
    return files
