"""A ``GradeReport`` back from its plain JSON form (``to_plain``'s inverse).

The batch keeps every result in its state file as JSON; the gradebook, the manual-grading page
and the summary are rebuilt from there, so a rerun that grades nothing new still writes them
complete. Decoding is driven by the models' own type hints: a field added to a model needs no
change here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from graders.models import GradeReport


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _decode(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _decode(options[0], value)
    if origin is tuple:
        args = typing.get_args(tp)
        return tuple(_decode(args[0], v) for v in value)
    if origin in (dict, list) or tp in (object, Any):
        return value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_plain(tp, value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is Path:
        return Path(value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def from_plain(cls: type, data: dict[str, Any]) -> Any:
    """An instance of dataclass ``cls`` from ``to_plain``'s dict; unknown keys are ignored."""
    hints = _hints(cls)
    kwargs = {
        f.name: _decode(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)
        if f.init and f.name in data
    }
    return cls(**kwargs)


def report_from_plain(data: dict[str, Any]) -> GradeReport:
    report = from_plain(GradeReport, data)
    assert isinstance(report, GradeReport)
    return report
