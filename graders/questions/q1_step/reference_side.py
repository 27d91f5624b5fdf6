"""Q1's reference side: its hidden test and its part of ``dlgrade reference``.

Q1's public checks need no expected values (a box is held to h and 0, the step to its
definition), so there are no expectation providers; the student kit ships none of this.
"""

from __future__ import annotations

from graders.questions.api import ReferenceSide
from graders.questions.q1_step import hidden, reference_runs

SIDE = ReferenceSide(
    hidden_checks=hidden.CHECKS,
    reference_report=reference_runs.reference_report,
)
