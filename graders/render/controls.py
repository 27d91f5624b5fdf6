"""Control characters out of student text, for every renderer that prints it.

A kernel's output, a file name or an exception message may carry ESC sequences (a terminal
would obey them), C1 controls, or Unicode direction controls that make a line read other than
it is. Tab and newline are text and stay.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 and C1 control characters (ESC and DEL among them; tab and newline are text) and the
Unicode direction controls."""


def without_controls(text: str) -> str:
    return CONTROL.sub("", text)
