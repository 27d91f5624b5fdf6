"""Control characters out of student text, for every renderer that prints it.

A kernel's output, a file name or an exception message may carry ESC sequences (a terminal
would obey them), C1 controls, or Unicode direction controls that make a line read other than
it is. Tab and newline are text and stay. The Unicode line and paragraph separators (U+2028,
U+2029) and NEL (U+0085) break a line in many viewers (Gradescope's page, editors, some
terminals) though Python's ``splitlines`` is all that counts them: they are stripped with the
controls, and ``one_line`` and ``unix_lines`` treat them as the line breaks they show as.
"""

from __future__ import annotations

import re

CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
    r"\ud800-\udfff]"
)
"""C0 and C1 control characters (ESC, DEL and NEL among them; tab and newline are text), the
Unicode direction controls, the line and paragraph separators, and lone surrogates (no
character at all: a file name of bytes that are not UTF-8 holds them, and printing or
writing one as UTF-8 fails)."""
LINE_BREAK = re.compile(r"\r\n|[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
"""Everything some viewer starts a new line at (what ``str.splitlines`` splits on)."""


def without_controls(text: str) -> str:
    return CONTROL.sub("", text)


def unix_lines(text: str) -> str:
    """Every kind of line break as ``\\n``, so that what shows as a new line is one."""
    return LINE_BREAK.sub("\n", text)


def one_line(text: str) -> str:
    """A field the terminal shows on one line: its line breaks as a visible mark, so that a
    message cannot print lines that look like the grader's own ("[PASS] ...")."""
    return re.sub(r"\s*\n\s*", " \u23ce ", unix_lines(str(text))).strip()


def terminal_field(text: object) -> str:
    """Student- or TA-controlled text printed outside a template (a submission name in the
    batch's progress and messages): on one line, without control characters."""
    return without_controls(one_line(str(text)))
