"""What the students are in a batch folder, and a hash of each one's files.

One entry per student: a subfolder, a ``.ipynb`` or a ``.zip`` directly in the folder. A
Gradescope export (``submission_metadata.yml`` beside ``submission_<id>/`` folders) is the same
layout with a metadata file, which is skipped. The hash covers every file a student handed in
(relative path and bytes), so a rerun regrades exactly the submissions that changed.

A name is where a student's results go (``OUT/<name>/``) and how every output knows them, so
a name that cannot be given to one submission alone is given to none: two entries of one name
(``alice.zip`` and ``alice.ipynb``: which one is alice's?) and a name of the batch's own files
(``state.sqlite``, ``gradebook.csv``: ``layout``) are each refused, as a crashed row that says
so, and nothing of theirs is graded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from graders.batch.layout import clashes
from graders.batch.store import Entry
from graders.errors import InvalidSubmissionError

GRADESCOPE_METADATA = "submission_metadata.yml"
_IGNORED = {"__MACOSX", ".ipynb_checkpoints", ".git", ".DS_Store"}
_SURROGATE = re.compile("[\ud800-\udfff]")
"""How Python holds a file name's bytes that are not UTF-8: no text, and no SQLite value."""


@dataclass(frozen=True, kw_only=True)
class Refused:
    """An entry that is not graded because of its name; it gets a crashed row saying why."""

    name: str
    path: Path
    reason: str

    @property
    def label(self) -> str:
        """``name (file)``: which of the entries the row is, in text every output can hold."""
        return f"{self.name} ({_SURROGATE.sub(chr(0xFFFD), self.path.name)})"


@dataclass(frozen=True, kw_only=True)
class Discovery:
    entries: tuple[Entry, ...]
    refused: tuple[Refused, ...] = ()
    """Entries whose name is taken twice or is one of the batch's files, in path order."""
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


def _refusal(name: str, paths: list[Path], reserved: frozenset[str]) -> str:
    if _SURROGATE.search(name):
        return "the name is not valid UTF-8 text; rename the submission and rerun"
    if clashes(name, reserved):
        return (
            f"the name {name} is one of the batch's own files in its output folder; rename "
            "the submission and rerun"
        )
    if len(paths) > 1:
        listed = ", ".join(p.name for p in paths)
        return (
            f"the name {name} is taken twice ({listed}): neither is graded; rename one (or "
            "remove the wrong one) and rerun"
        )
    return ""


def discover(folder: Path, reserved: frozenset[str] = frozenset()) -> Discovery:
    """Every student in ``folder``, sorted by name; ``reserved``: names (casefolded) a
    submission may not have (``layout.reserved_names``)."""
    if not folder.is_dir():
        raise InvalidSubmissionError(
            "the batch folder does not exist or is not a folder", path=folder
        )
    by_name: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        if _is_submission(path):
            by_name.setdefault(submission_name(path), []).append(path)
    entries: list[Entry] = []
    refused: list[Refused] = []
    for name in sorted(by_name):
        paths = by_name[name]
        reason = _refusal(name, paths, reserved)
        if reason:
            shown = _SURROGATE.sub("\ufffd", name)
            refused += [Refused(name=shown, path=p, reason=reason) for p in paths]
            continue
        source = paths[0]
        entries.append(Entry(name=name, source=source.resolve(), content_hash=content_hash(source)))
    return Discovery(
        entries=tuple(entries),
        refused=tuple(refused),
        gradescope=(folder / GRADESCOPE_METADATA).is_file(),
    )
