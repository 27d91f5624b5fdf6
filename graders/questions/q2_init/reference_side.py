"""Q2's reference side: the closed forms' values, the hidden Monte-Carlo test, and its part of
``dlgrade reference``. The student kit ships none of it (the values only as stored data)."""

from __future__ import annotations

from graders.questions.api import ReferenceSide
from graders.questions.q2_init import expected, hidden, reference_runs

SIDE = ReferenceSide(
    expectations=(*expected.EXPECTATIONS, *hidden.EXPECTATIONS),
    hidden_checks=hidden.CHECKS,
    reference_report=reference_runs.reference_report,
)
