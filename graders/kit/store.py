"""The kit's stored data: fixed probe inputs and the reference's expected values, per question.

``dlgrade kit build`` computes them once, with the reference, for the kit's public inputs
(``write_question``); the installed kit reads them back (``KitBasis``) where the grader would
draw inputs and ask the reference. Plain files only: ``inputs.npz`` / ``inputs.json`` and, per
expectation and argument set, one ``.npz`` (a dict of arrays) or ``.json`` (a JSON value),
listed in ``expected.json``. Arrays are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graders.config import GradeOptions
from graders.errors import ConfigError
from graders.models import ProbeInputs
from graders.questions import load_questions
from graders.questions.api import (
    Argument,
    ExpectationContext,
    Expectations,
    ProbeContext,
    QuestionSpec,
)
from graders.questions.expectations import argument_key, frozen, is_arrays

STORED_DIR = Path(__file__).resolve().parent / "stored"
"""Where an installed kit keeps its stored data (absent in a checkout of the grader)."""
DATA_DIR = Path(__file__).resolve().parent / "data"
"""Where an installed kit keeps the quick profile's data slices."""
MANIFEST = "manifest.json"
_NPZ_TIME = (1980, 1, 1, 0, 0, 0)
INDEX = "expected.json"


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What a kit holds, written last by the build: a kit without one is incomplete."""

    grader_version: str
    seed: int
    """The public seed its inputs were drawn with."""
    questions: tuple[str, ...]
    """The questions it checks, in assignment order."""
    left_out: tuple[str, ...] = ()
    """Questions of the grader the kit cannot check yet (their public half is not split)."""

    def plain(self) -> dict[str, Any]:
        return {
            "grader_version": self.grader_version,
            "seed": self.seed,
            "questions": list(self.questions),
            "left_out": list(self.left_out),
        }


def read_manifest(root: Path) -> Manifest:
    path = root / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(
            grader_version=str(raw["grader_version"]),
            seed=int(raw["seed"]),
            questions=tuple(str(q) for q in raw["questions"]),
            left_out=tuple(str(q) for q in raw.get("left_out", ())),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"the kit's stored data is unreadable ({exc}); reinstall the kit", path=path
        ) from None


def installed_kit() -> Path | None:
    """The stored data of this package when it is a student kit, else None (a checkout)."""
    return STORED_DIR if (STORED_DIR / MANIFEST).is_file() else None


# -- writing (the build) ---------------------------------------------------------------------


def _file_name(name: str, arguments: Mapping[str, Argument], number: int) -> str:
    return name if not arguments else f"{name}.{number}"


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """``np.savez``'s format with one fixed timestamp, so the same values give the same bytes
    (``np.savez`` stamps each member with the time of writing)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_NPZ_TIME)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def write_value(folder: Path, stem: str, value: Any) -> str:
    """One value as ``stem.npz`` (a dict of arrays) or ``stem.json``; returns the file name."""
    folder.mkdir(parents=True, exist_ok=True)
    if is_arrays(value):
        write_npz(folder / f"{stem}.npz", value)
        return f"{stem}.npz"
    (folder / f"{stem}.json").write_text(json.dumps(value, allow_nan=True), encoding="utf-8")
    return f"{stem}.json"


def write_question(
    root: Path,
    question: str,
    inputs: ProbeInputs,
    values: list[tuple[str, dict[str, Argument], Any]],
) -> None:
    """A question's inputs and its expected values ``(name, arguments, value)``."""
    folder = root / question
    folder.mkdir(parents=True, exist_ok=True)
    if inputs.arrays:
        write_npz(folder / "inputs.npz", {k: np.asarray(v) for k, v in inputs.arrays.items()})
    (folder / "inputs.json").write_text(json.dumps(dict(inputs.values)), encoding="utf-8")
    index = []
    for number, (name, arguments, value) in enumerate(values):
        file = write_value(folder / "expected", _file_name(name, arguments, number), value)
        index.append({"name": name, "arguments": arguments, "file": file})
    (folder / INDEX).write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")


def write_manifest(root: Path, manifest: Manifest) -> None:
    (root / MANIFEST).write_text(json.dumps(manifest.plain(), indent=1) + "\n", encoding="utf-8")


# -- reading (the installed kit) -------------------------------------------------------------


def _read_value(path: Path) -> Any:
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return frozen({key: archive[key] for key in archive.files})
    return json.loads(path.read_text(encoding="utf-8"))


def read_inputs(folder: Path) -> ProbeInputs:
    arrays_file = folder / "inputs.npz"
    arrays = _read_value(arrays_file) if arrays_file.is_file() else {}
    values = json.loads((folder / "inputs.json").read_text(encoding="utf-8"))
    return ProbeInputs(arrays=dict(arrays), values=values)


class StoredExpectations:
    """A question's expected values as the build stored them; None for arguments it did not."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
        self._files = {(e["name"], argument_key(e["arguments"])): e["file"] for e in index}
        self._names = {e["name"] for e in index}
        self._cache: dict[str, Any] = {}

    def get(self, name: str, arguments: Mapping[str, Argument]) -> Any | None:
        if name not in self._names:
            raise ConfigError(
                f"the kit stores no expectation {name!r}; rebuild it (`dlgrade kit build`)",
                path=self._folder / INDEX,
            )
        file = self._files.get((name, argument_key(arguments)))
        if file is None:
            return None
        if file not in self._cache:
            self._cache[file] = _read_value(self._folder / "expected" / file)
        return self._cache[file]

    def prefetch(self) -> None:
        """Nothing to compute: the build stored every value the kit's checks read."""


class KitBasis:
    """The kit's: its public questions, the inputs it stored, the values the reference gave."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = read_manifest(root)

    def questions(self) -> tuple[QuestionSpec, ...]:
        public = {q.id: q for q in load_questions(with_reference=False)}
        missing = [q for q in self.manifest.questions if q not in public]
        if missing:
            raise ConfigError(f"the kit lists {missing} but ships no such question", path=self.root)
        return tuple(public[q] for q in self.manifest.questions)

    def inputs(self, spec: QuestionSpec, ctx: ProbeContext) -> ProbeInputs:
        return read_inputs(self.root / spec.id)

    def expectations(self, spec: QuestionSpec, ctx: ExpectationContext) -> Expectations:
        return StoredExpectations(self.root / spec.id)


def kit_options(**overrides: Any) -> GradeOptions:
    """How the kit grades: the quick profile on its own data slices, public tests only, and the
    student's code run as the student (no sandbox: it is their code on their machine)."""
    settings: dict[str, Any] = {
        "profile": "quick",
        "public_only": True,
        "sandbox": "unconfined",
        "allow_unconfined": True,
        "fixtures_root": DATA_DIR,
    }
    return GradeOptions(**(settings | overrides))
