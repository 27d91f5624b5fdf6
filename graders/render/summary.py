"""The terminal summary of one graded submission, as the CLI prints it (see ``terminal.py``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from graders.models import GradeReport
from graders.render.terminal import render_terminal, use_color

REPORT_FILES = (
    ("results", "result.json"),
    ("feedback", "feedback.html"),
    ("markdown", "feedback.md"),
)


def report_files(report: GradeReport) -> list[tuple[str, Path]]:
    """The files of the result folder worth pointing at; result.json always, the rest if written."""
    out = report.run.output_dir
    return [
        (label, out / name)
        for label, name in REPORT_FILES
        if name == "result.json" or (out / name).is_file()
    ]


def report_lines(report: GradeReport, *, verbose: bool = False) -> list[str]:
    """The summary as plain lines (no colour), as tests and logs read it."""
    text = render_terminal(report, color=False, files=report_files(report), verbose=verbose)
    return text.splitlines()


def print_report_summary(
    report: GradeReport, stream: TextIO | None = None, *, verbose: bool = False
) -> None:
    out = stream or sys.stdout
    files = report_files(report)
    text = render_terminal(report, color=use_color(out), files=files, verbose=verbose)
    out.write(text)
    out.flush()
