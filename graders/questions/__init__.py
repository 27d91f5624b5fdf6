"""The assignment's questions, one sub-package each; the harness knows none of them by name.

A question package exports ``SPEC`` (a ``QuestionSpec``) from its ``__init__.py`` and keeps its
kernel-side probe in ``probe.py`` beside it (run as source inside the student's kernel, never
imported by the grader). Adding a question means adding one folder here and its rubric entries.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from graders.config import Profile
from graders.errors import ConfigError

if TYPE_CHECKING:
    from graders.check import CheckDef


@dataclass(frozen=True, kw_only=True)
class ProbeInputs:
    """Grader-chosen inputs handed to the probe: arrays go to an .npz, the rest to JSON."""

    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ProbeContext:
    """What a question needs to choose its probe inputs."""

    profile: Profile
    data_root: Path
    """Where the datasets lie for this run (full root or the fixture slices)."""
    rng: np.random.Generator
    """Seeded per submission and question, so a regrade probes with the same inputs."""


@dataclass(frozen=True, kw_only=True)
class QuestionSpec:
    """Everything the harness needs to know about one question, and nothing about its content."""

    id: str
    """Short id used in file names, parameters and the rubric: ``q1`` ... ``q4``."""
    title: str
    order: int
    notebook_stem: str
    """The template's file name without ``.ipynb``."""
    name_pattern: str
    """Regex (case-insensitive) on a file name that says "this notebook is this question"."""
    content_markers: tuple[str, ...]
    """Identifiers whose definitions in code cells identify the question when the name does not."""
    free_response_ids: tuple[str, ...] = ()
    uses_torch: bool = False
    """Import and seed torch in the preamble (and give its thread pool the kernel's share)."""
    snapshot_names: tuple[str, ...] = ()
    """Globals copied the first time a cell defines them (e.g. Q4's initial weights)."""
    make_inputs: Callable[[ProbeContext], ProbeInputs] | None = None
    artifacts: tuple[str, ...] = ()
    """The file names its probe writes (``name.npz`` / ``name.json``); the grader refuses any
    other file in the probe's results, whatever the kernel put there."""
    checks: tuple[CheckDef, ...] = ()
    """The question's tests (``checks.py`` beside it); points are in the rubric."""
    package_dir: Path

    @property
    def probe_source(self) -> str:
        return (self.package_dir / "probe.py").read_text(encoding="utf-8")

    def name_matches(self, file_name: str) -> bool:
        return re.search(self.name_pattern, file_name, flags=re.IGNORECASE) is not None

    def content_score(self, code: str) -> int:
        """How many of the question's marker definitions appear in the code."""
        score = 0
        for marker in self.content_markers:
            pattern = (
                rf"(^|\n)\s*(def|class)\s+{re.escape(marker)}\b|(^|\n)\s*{re.escape(marker)}\s*="
            )
            if re.search(pattern, code):
                score += 1
        return score


def load_questions() -> tuple[QuestionSpec, ...]:
    """Every question package under ``graders/questions``, in assignment order."""
    specs: list[QuestionSpec] = []
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, QuestionSpec):
            raise ConfigError(f"question package {info.name!r} has no SPEC", path=module.__file__)
        specs.append(spec)
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"duplicate question ids: {ids}")
    return tuple(sorted(specs, key=lambda s: s.order))
