"""The assignment's questions, one sub-package each; the harness knows none of them by name.

A question package exports ``SPEC`` (a ``QuestionSpec``) from its ``__init__.py`` and keeps its
kernel-side probe in ``probe.py`` beside it (run as source inside the student's kernel, never
imported by the grader). Adding a question means adding one folder here and its rubric
entries; what a question package is made of is ``api.py``.
"""

from __future__ import annotations

import importlib
import pkgutil

from graders.errors import ConfigError
from graders.questions.api import QuestionSpec


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
