"""Writes the feedback pages into a submission's result folder, each file atomically.

Called by the pipeline on the staging folder, before it is swapped into place, so the pages
always match the ``result.json`` beside them; a reader never sees half a page.
"""

from __future__ import annotations

from pathlib import Path

from graders.config import Thresholds
from graders.models import GradeReport
from graders.render.atomic import write_bytes_atomic, write_text_atomic
from graders.render.html import render_html
from graders.render.markdown import render_markdown
from graders.render.plots import reference_loss_bands

HTML_NAME = "feedback.html"
MARKDOWN_NAME = "feedback.md"


def write_reports(
    report: GradeReport,
    out_dir: Path,
    *,
    thresholds: Thresholds | None = None,
    student_view: bool = False,
) -> list[Path]:
    """Write ``feedback.html``, ``feedback.md`` and its SVG charts into ``out_dir``; returns
    the paths.

    ``out_dir`` is the submission's result folder (or its staging twin): the artifacts the
    charts are drawn from are read relative to it. ``thresholds`` supplies the reference's loss
    bands where calibration recorded them (``plots.reference_loss_bands``).
    """
    bands = reference_loss_bands(thresholds, report.run.profile.name)
    html = render_html(report, out_dir, student_view=student_view, bands=bands)
    page = render_markdown(report, out_dir, student_view=student_view, bands=bands)
    written = []
    for name, data in sorted(page.images.items()):
        write_bytes_atomic(data, out_dir / name)
        written.append(out_dir / name)
    for name, text in ((MARKDOWN_NAME, page.text), (HTML_NAME, html)):
        write_text_atomic(text, out_dir / name)
        written.append(out_dir / name)
    return written
