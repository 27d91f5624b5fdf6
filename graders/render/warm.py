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

import threading

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
