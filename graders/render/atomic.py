"""The one way the grader writes a file: a reader sees the old file or the new one, never half.

A uniquely named temporary beside the target (same file system, so ``os.replace`` is atomic),
created with the ordinary umask rather than ``mkstemp``'s 0600; a failure leaves no litter.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_bytes_atomic(data: bytes, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("xb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(text: str, path: Path) -> None:
    """UTF-8; a lone surrogate (no character, but a Python string may hold one: a notebook's
    ``"\\ud800"``, a kernel's output) is written as ``?`` instead of failing the whole report."""
    write_bytes_atomic(text.encode("utf-8", errors="replace"), path)
