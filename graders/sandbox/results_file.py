"""The probe's results file, read by the grader only through a descriptor it opened first.

The kernel must write ``artifacts.zip`` (bound read-write into its sandbox), so the file is the
kernel's: a root grader gives it to the kernel's uid, and an ordinary user's kernel *is* that
user. An owner may change a file's mode, and ``chmod 0`` would lock an ordinary user's grader
out of it (root reads it anyway): that submission would end in a crash, not a score.
Permissions are checked when a file is opened, not when it is read, so the grader opens the
file before any kernel starts and reads it through that descriptor alone. Its folder is not the
kernel's, so the path cannot be made to name another file either (and would not be read).
"""

from __future__ import annotations

import os
from pathlib import Path


class ResultsFile:
    """An open, read-only handle on one kernel's results file; ``close`` may be called twice."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)

    def read(self, limit: int) -> bytes:
        """The file from its start, at most ``limit + 1`` bytes (one more shows it is too big)."""
        if self._fd is None:
            raise ValueError(f"{self.path} was closed")
        chunks: list[bytes] = []
        got = 0
        while got <= limit:
            chunk = os.pread(self._fd, limit + 1 - got, got)
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
