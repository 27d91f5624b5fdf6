"""The machine-readable result of one graded submission (``result.json``).

Written atomically: a reader never sees half a file, and a crash leaves the previous one.
"""

from __future__ import annotations

import dataclasses
import json
from enum import Enum
from pathlib import Path
from typing import Any

from graders.render.atomic import write_text_atomic

RESULT_SCHEMA_VERSION = 1


def to_plain(value: Any) -> Any:
    """Dataclasses, enums, paths and containers as JSON values, fields in declaration order."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    return value


def write_result_json(result: Any, path: Path) -> None:
    data = {"schema_version": RESULT_SCHEMA_VERSION, **to_plain(result)}
    write_text_atomic(json.dumps(data, indent=2) + "\n", path)
