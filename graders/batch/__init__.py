"""TA batch grading: many submissions in parallel, resumable from a SQLite state file.

The package imports nothing itself: ``dlgrade``'s parser reads ``batch.command`` for its
arguments on every run, and the runner brings SQLite and Dask, which a one-question
``dlgrade grade`` should not pay for (about 1 s). ``from graders.batch import run_batch`` still
works, resolved on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graders.batch.options import BatchOptions
    from graders.batch.runner import BatchResult, run_batch

__all__ = ["BatchOptions", "BatchResult", "run_batch"]


def __getattr__(name: str) -> Any:
    if name == "BatchOptions":
        from graders.batch.options import BatchOptions

        return BatchOptions
    if name in ("BatchResult", "run_batch"):
        from graders.batch import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'graders.batch' has no attribute {name!r}")
