"""Get the renderers ready on a thread while the kernels boot, off the grade's critical path.

A one-question grade's own cost is mostly what runs before its kernel starts and after its
probe. The renderers (Jinja, markdown-it, the report templates: about 0.1 s to import and as
much to compile) are needed only at the end, so ``graders.pipeline`` does not import them at
start-up: ``pipeline.grade`` calls ``in_background`` once its kernels are started
(``evaluate.start_kernels``), and a daemon thread imports them and compiles the templates
while the grading process would otherwise only wait for the kernels to boot. Whatever calls
the renderers without it imports them when it writes its reports, as before.

Imports on a second thread are safe: each module's import lock makes the main thread wait for
a module the thread is importing, and both import the renderers in the same order.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from graders.models import QuestionRun

if TYPE_CHECKING:
    from graders.render.plots import LossBand

_thread: threading.Thread | None = None
_lock = threading.Lock()


def in_background() -> None:
    """Start the warm-up thread (once per process; returns at once)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_warm_up, name="dlgrade-renderers", daemon=True)
            _thread.start()


def _warm_up() -> None:
    from graders.render import summary, templating, write  # noqa: F401  (importing is the point)

    templating.precompile_in_background()


def charts_in_background(
    run: QuestionRun, result_dir: Path, bands: Mapping[str, LossBand]
) -> threading.Thread:
    """Draw the charts of a question whose kernel has finished, on a thread, while the other
    questions' kernels still run (``plots`` keeps each drawing for the pages written at the
    end, which wait for a drawing in progress). Nothing here is reported: a chart that fails
    fails again, and is explained, when the page asks for it."""
    thread = threading.Thread(
        target=_draw_charts,
        args=(run, result_dir, bands.get(run.question)),
        name=f"dlgrade-charts-{run.question}",
        daemon=True,
    )
    thread.start()
    return thread


def _draw_charts(run: QuestionRun, result_dir: Path, band: LossBand | None) -> None:
    from graders.render import plots

    with contextlib.suppress(Exception):
        for chart in plots.charts_for(run, result_dir, band):
            if chart.plot is not None:
                plots.svg_bytes(chart.plot)
