"""TA batch grading: many submissions in parallel, resumable from a SQLite state file."""

from __future__ import annotations

from graders.batch.runner import BatchOptions, BatchResult, run_batch

__all__ = ["BatchOptions", "BatchResult", "run_batch"]
