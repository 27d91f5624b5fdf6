"""The per-question modules of a tools package, found by their names rather than by a list.

The generators (notebooks, scenarios) keep one module per question, ``q<N>`` or ``q<N>_<name>``,
beside their shared code. Importing every module so named means a new question adds its own
modules and edits no list of questions; numeric order keeps ``q10`` after ``q9``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from types import ModuleType
from typing import Final

QUESTION_MODULE: Final = re.compile(r"q(?P<number>\d+)(_\w+)?")


def question_modules(package: str) -> list[ModuleType]:
    """Every module of ``package`` named after a question, imported, in question order."""
    found = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        match = QUESTION_MODULE.fullmatch(info.name)
        if match and not info.ispkg:
            found.append((int(match["number"]), info.name))
    return [importlib.import_module(f"{package}.{name}") for _, name in sorted(found)]
