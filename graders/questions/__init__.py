"""The assignment's questions, one sub-package each; the harness knows none of them by name.

A question package exports ``SPEC`` (a ``QuestionSpec``: the public half, which the student kit
ships) from its ``__init__.py`` and keeps its kernel-side probe in ``probe.py`` beside it (run
as source inside the student's kernel, never imported by the grader). Its ``reference_side.py``
exports ``SIDE`` (a ``ReferenceSide``: the expectation providers, hidden checks and reference
runs, everything that needs ``reference/``), which the full grader joins to the spec. Adding a
question means adding one folder here and its rubric entries; what a question package is made
of is ``api.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

from graders.errors import ConfigError
from graders.questions.api import QuestionSpec, ReferenceSide

REFERENCE_SIDE = "reference_side"
"""The module of a question package that holds its ``SIDE``."""


def has_reference_side(package: str) -> bool:
    """Whether ``package`` (``graders.questions.<name>``) has been split into a public half and
    a reference side. A question not split yet keeps everything in its ``SPEC``; the student
    kit leaves it out."""
    return importlib.util.find_spec(f"{package}.{REFERENCE_SIDE}") is not None


def _reference_side(package: str) -> ReferenceSide:
    module = importlib.import_module(f"{package}.{REFERENCE_SIDE}")
    side = getattr(module, "SIDE", None)
    if not isinstance(side, ReferenceSide):
        raise ConfigError(f"{package}.{REFERENCE_SIDE} has no SIDE", path=module.__file__)
    return side


def load_questions(*, with_reference: bool = True) -> tuple[QuestionSpec, ...]:
    """Every question package under ``graders/questions``, in assignment order.

    ``with_reference``: each question as the grader runs it, its reference side joined in
    (hidden checks, expectation providers, reference runs). False: the public halves only, as
    the student kit has them.
    """
    specs: list[QuestionSpec] = []
    for info in pkgutil.iter_modules(__path__):
        if not info.ispkg:
            continue
        package = f"{__name__}.{info.name}"
        module = importlib.import_module(package)
        spec = getattr(module, "SPEC", None)
        if not isinstance(spec, QuestionSpec):
            raise ConfigError(f"question package {info.name!r} has no SPEC", path=module.__file__)
        if with_reference and has_reference_side(package):
            spec = spec.with_reference(_reference_side(package))
        specs.append(spec)
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"duplicate question ids: {ids}")
    return tuple(sorted(specs, key=lambda s: s.order))
