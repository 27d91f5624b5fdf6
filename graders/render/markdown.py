"""The Markdown feedback: the HTML page's content for a repository, an issue or a TA's notes.

Markdown cannot carry images inline portably, so the charts are SVG files written beside the
page (``feedback-<slug>.svg``, the HTML page's own drawing) and linked by that relative name;
the caller writes both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from graders.models import GradeReport
from graders.render.plots import Chart, LossBand, svg_bytes
from graders.render.templating import render
from graders.render.view import feedback_view

TEMPLATE = "feedback.md.j2"


@dataclass(frozen=True, kw_only=True)
class MarkdownPage:
    text: str
    images: Mapping[str, bytes] = field(default_factory=dict)
    """File name (relative to the page) -> SVG bytes, for every chart the text links."""


def chart_file_name(chart: Chart) -> str:
    return f"feedback-{chart.slug}.svg"


def render_markdown(
    report: GradeReport,
    result_dir: Path | None,
    *,
    student_view: bool = False,
    bands: Mapping[str, LossBand] | None = None,
) -> MarkdownPage:
    images: dict[str, bytes] = {}

    def image_src(chart: Chart) -> str:
        assert chart.plot is not None, "only drawable charts get an image"
        name = chart_file_name(chart)
        images[name] = svg_bytes(chart.plot)
        return name

    view = feedback_view(
        report, result_dir, student_view=student_view, bands=bands, image_src=image_src
    )
    return MarkdownPage(text=render(TEMPLATE, v=view), images=dict(sorted(images.items())))
