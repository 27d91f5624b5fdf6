"""A plain-text progress bar with an ETA on stderr; no dependency, readable in a log file too.

On a terminal it redraws one line; otherwise (a log, CI) it prints one line per finished
submission, so the log says what finished when.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from graders.batch.store import RowStatus
from graders.render.controls import terminal_field

WIDTH = 30


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Counts this run's finished submissions; the ETA is remaining / this run's throughput."""

    def __init__(self, *, total: int, todo: int, stream: TextIO | None = None):
        self.total = total
        self.todo = todo
        self.finished = 0
        self.crashed = 0
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.monotonic()

    def line(self) -> str:
        done = self.total - self.todo + self.finished
        fill = round(WIDTH * done / self.total) if self.total else WIDTH
        bar = "#" * fill + "." * (WIDTH - fill)
        elapsed = time.monotonic() - self.started
        left = self.todo - self.finished
        if self.finished and left:
            eta = f"ETA {_duration(elapsed / self.finished * left)}"
        elif left:
            eta = "ETA --"
        else:
            eta = f"took {_duration(elapsed)}"
        rate = self.finished / elapsed * 60 if elapsed > 0 else 0.0
        crashed = f", {self.crashed} crashed" if self.crashed else ""
        return f"[{bar}] {done}/{self.total} graded{crashed}, {rate:.1f}/min, {eta}"

    def update(self, name: str, status: RowStatus) -> None:
        self.finished += 1
        self.crashed += status is RowStatus.CRASHED
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K")
        else:
            # A name is a student's folder or file name: one line, no escape sequences.
            self.stream.write(f"{self.line()}  ({terminal_field(name)}: {status})\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(terminal_field(text) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
