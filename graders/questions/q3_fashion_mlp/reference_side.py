"""Q3's reference side: the values its checks compare with, its calibrated accuracy threshold
and training-loss band, and its part of ``dlgrade reference``. Q3 has no hidden test; the
student kit ships none of this (the values only as stored data)."""

from __future__ import annotations

from graders.questions.api import ReferenceSide
from graders.questions.q3_fashion_mlp import expected, reference_runs

SIDE = ReferenceSide(
    expectations=expected.EXPECTATIONS,
    thresholds=reference_runs.THRESHOLDS,
    bands=reference_runs.BANDS,
    reference_report=reference_runs.reference_report,
)
