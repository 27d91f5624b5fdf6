"""The coloured terminal summary printed after grading: scores, what failed and why, where to look.

Colour only helps a person at a terminal: it is used when the stream is a TTY, or when
``FORCE_COLOR`` asks for it (CI logs); ``NO_COLOR`` (https://no-color.org) and ``TERM=dumb``
turn it off, and win over ``FORCE_COLOR`` as in CPython's own rule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from graders.models import GradeReport
from graders.render.templating import Ansi, render
from graders.render.view import feedback_view

TEMPLATE = "summary.txt.j2"
"""The default: the total, per question one line, and one line per test not passed."""
VERBOSE_TEMPLATE = "summary_verbose.txt.j2"
"""``--verbose``: also the profile and sandbox, each notebook's run, every test, the hints."""
MESSAGE_CHARS = 240
"""A test's message or hint is cut to this in the verbose summary; the feedback page has it
whole."""
SHORT_MESSAGE_CHARS = 120
"""A failed test's message is cut to this in the short summary, to stay on one line."""
MARKS = {"passed": "PASS", "partial": "PART", "failed": "FAIL", "error": "ERR "}
_CODES = {
    "bold": "\x1b[1m",
    "dim": "\x1b[2m",
    "reset": "\x1b[0m",
    "ok": "\x1b[32m",
    "bad": "\x1b[31m",
    "full": "\x1b[32m",
    "some": "\x1b[33m",
    "none": "\x1b[31m",
    "empty": "",
    "passed": "\x1b[32m",
    "partial": "\x1b[33m",
    "failed": "\x1b[31m",
    "error": "\x1b[35m",
}
_ANSI = {name: Ansi(code) for name, code in _CODES.items()}
"""The colour codes, marked as the only control characters the summary may print."""
_PLAIN = dict.fromkeys(_ANSI, "")


def use_color(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    if env.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def render_terminal(
    report: GradeReport,
    *,
    color: bool = False,
    files: Sequence[tuple[str, Path]] = (),
    verbose: bool = False,
) -> str:
    """The summary; ``files`` are ``(label, path)`` lines closing it (result.json, feedback...).

    Short by default, because it is read after every grade: a line per question, a line per
    test not passed. ``verbose`` adds what a TA debugging a run wants (how each notebook ran,
    the passed tests, hints, notices)."""
    view = feedback_view(report, None)
    return render(
        VERBOSE_TEMPLATE if verbose else TEMPLATE,
        v=view,
        c=_ANSI if color else _PLAIN,
        marks=MARKS,
        limit=MESSAGE_CHARS,
        short_limit=SHORT_MESSAGE_CHARS,
        files=[(label, str(path)) for label, path in files],
    )
