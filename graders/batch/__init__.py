"""TA batch grading: many submissions in parallel, resumable from a SQLite state file."""

from __future__ import annotations

from graders.batch.options import BatchOptions
from graders.batch.runner import BatchResult, run_batch

__all__ = ["BatchOptions", "BatchResult", "run_batch"]
