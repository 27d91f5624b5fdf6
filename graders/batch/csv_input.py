"""CSV files a TA hands the batch (manual scores, a roster): rows with their line numbers.

A TA's CSV comes from a browser, a spreadsheet or a text editor: it may start with Excel's
byte-order mark, spell a column ``Submission`` or ``student id``, and hold a defused formula
(``'=name``, as our own gradebook writes one). Every problem with one row is data, reported
as ``file:line: what is wrong`` so the TA can fix that line; only a file that cannot be read
at all, or lacks a required column, stops the command (``ConfigError``).

A ``submission`` cell is a name, kept exactly as written: a submission's name is a student's
folder or file name, spaces and tabs included (``alice .zip`` is ``alice ``, not ``alice``), so
stripping it would hand one student's row to another. Only the defusing quote our own
writers add (``spreadsheet_text``, the manual page) is taken off again, so a name read back is
the name that was written.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from graders.errors import ConfigError
from graders.render.gradebook import needs_defusing

MAX_BYTES = 20 << 20
"""A scores file or a roster is kilobytes; anything past this is not one."""
EXACT = ("submission",)
"""Columns whose cells are names, kept as written (only the defusing quote is removed)."""


@dataclass(frozen=True, kw_only=True)
class InputProblem:
    """One row the batch did not take, and why; everything else in the file was taken."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class CsvRow:
    line: int
    """The line the row starts on (1 is the header)."""
    values: dict[str, str]
    """Column (normalised name) -> the cell, stripped (but ``EXACT`` columns) and with a
    defusing quote removed."""
    raw: dict[str, str]
    """Column -> the cell as the file holds it: two rows whose cells differ are two rows,
    even where their values are the same."""


def column_key(name: str) -> str:
    """``"SIS User ID"`` -> ``"sis_user_id"``: how a header is matched, whatever its spelling."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def cell(text: str, *, exact: bool = False) -> str:
    """A cell as the TA meant it: no surrounding space (but in a name: ``exact``), no
    defusing quote before a formula."""
    text = text if exact else text.strip()
    return text[1:] if text.startswith("'") and needs_defusing(text[1:]) else text


def read_rows(path: Path, required: Iterable[str], what: str) -> list[CsvRow]:
    """The data rows of ``path``; a ConfigError when it cannot be read as a ``what`` file."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"the {what} file is over {MAX_BYTES >> 20} MiB", path=path)
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the {what} file: {exc}", path=path) from None
    reader = csv.reader(text.splitlines(keepends=True))
    try:
        header = [column_key(h) for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            found = ", ".join(h for h in header if h) or "nothing"
            raise ConfigError(
                f"the {what} file has no column {', '.join(missing)} on its first line "
                f"(found: {found})",
                path=path,
            )
        rows: list[CsvRow] = []
        start = reader.line_num + 1
        for record in reader:
            if any(v.strip() for v in record):
                raw = {h: v for h, v in zip(header, record, strict=False) if h}
                values = {h: cell(v, exact=h in EXACT) for h, v in raw.items()}
                rows.append(CsvRow(line=start, values=values, raw=raw))
            start = reader.line_num + 1
    except csv.Error as exc:
        message = f"not a readable CSV file (line {reader.line_num}): {exc}"
        raise ConfigError(message, path=path) from None
    return rows
