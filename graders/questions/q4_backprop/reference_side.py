"""Q4's reference side: the values its checks compare with, its calibrated thresholds and its
part of ``dlgrade reference``. Q4 has no hidden test; the student kit ships none of this (the
values only as stored data, the initial weights only as a sample)."""

from __future__ import annotations

from graders.questions.api import ReferenceSide
from graders.questions.q4_backprop import expected, reference_runs

SIDE = ReferenceSide(
    expectations=expected.EXPECTATIONS,
    thresholds=reference_runs.THRESHOLDS,
    reference_report=reference_runs.reference_report,
)
