"""What the students are in a batch folder, and a hash of each one's files.

One entry per student: a subfolder, a ``.ipynb`` or a ``.zip`` directly in the folder. A
Gradescope export (``submission_metadata.yml`` beside ``submission_<id>/`` folders) is the same
layout with a metadata file, which is skipped. The hash covers every file a student handed in
(relative path and bytes), so a rerun regrades exactly the submissions that changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from graders.batch.store import Entry
from graders.errors import InvalidSubmissionError

GRADESCOPE_METADATA = "submission_metadata.yml"
_IGNORED = {"__MACOSX", ".ipynb_checkpoints", ".git", ".DS_Store"}


@dataclass(frozen=True, kw_only=True)
class Discovery:
    entries: tuple[Entry, ...]
    duplicates: tuple[tuple[str, Path], ...] = ()
    """Names taken twice (``alice/`` and ``alice.zip``): each later one, with its path."""
    gradescope: bool = False


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file() and not p.is_symlink() and not (_IGNORED & set(p.relative_to(path).parts))
    )


def content_hash(path: Path) -> str:
    """sha256 over (relative path, size, bytes) of every file, in sorted order."""
    digest = hashlib.sha256()
    base = path if path.is_dir() else path.parent
    for file in _files(path):
        rel = file.relative_to(base).as_posix().encode()
        digest.update(len(rel).to_bytes(8, "little") + rel)
        digest.update(file.stat().st_size.to_bytes(8, "little"))
        with file.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _is_submission(path: Path) -> bool:
    if path.name.startswith(".") or path.name in _IGNORED or path.is_symlink():
        return False
    if path.is_dir():
        return True
    return path.is_file() and path.suffix.lower() in (".ipynb", ".zip")


def submission_name(path: Path) -> str:
    """The name ``grade`` gives the result folder (folder name or file stem)."""
    return path.name if path.is_dir() else path.stem


def discover(folder: Path) -> Discovery:
    """Every student in ``folder``, sorted by name; the first of two same-named ones wins."""
    if not folder.is_dir():
        raise InvalidSubmissionError(
            "the batch folder does not exist or is not a folder", path=folder
        )
    entries: dict[str, Entry] = {}
    duplicates: list[tuple[str, Path]] = []
    for path in sorted(folder.iterdir()):
        if not _is_submission(path):
            continue
        name = submission_name(path)
        if name in entries:
            duplicates.append((name, path))
            continue
        entries[name] = Entry(name=name, source=path.resolve(), content_hash=content_hash(path))
    return Discovery(
        entries=tuple(entries[n] for n in sorted(entries)),
        duplicates=tuple(duplicates),
        gradescope=(folder / GRADESCOPE_METADATA).is_file(),
    )
