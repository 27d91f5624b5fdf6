"""The HTML feedback page: one self-contained file (inline CSS, figures as data URIs).

Self-contained so it can be mailed, uploaded to an LMS or opened from a zip: it fetches
nothing, runs no script, and looks the same offline. ``student_view`` is the page a student
may see before hidden tests are published: hidden tests left out, their points counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from graders.models import GradeReport
from graders.render.plots import Chart, LossBand, svg_data_uri
from graders.render.templating import render
from graders.render.view import feedback_view

TEMPLATE = "feedback.html.j2"


def _svg_src(chart: Chart) -> str:
    assert chart.plot is not None, "only drawable charts get an image"
    return svg_data_uri(chart.plot)


def render_html(
    report: GradeReport,
    result_dir: Path | None,
    *,
    student_view: bool = False,
    bands: Mapping[str, LossBand] | None = None,
) -> str:
    """The page for one graded submission; charts are read from ``result_dir``'s artifacts."""
    view = feedback_view(
        report, result_dir, student_view=student_view, bands=bands, image_src=_svg_src
    )
    return render(TEMPLATE, v=view)
