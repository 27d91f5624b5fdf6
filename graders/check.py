"""The check step: run a question's checks, in the grader's own process, on the probe's data.

What a check is and what it may read live in ``graders/questions/api.py``. A check that crashes
is the grader's bug: it is recorded as an ``error`` result for the TA, and the other checks
still run.
"""

from __future__ import annotations

import traceback

import numpy as np

from graders.errors import GraderError
from graders.questions.api import CheckContext, CheckDef, Outcome


def run_check(definition: CheckDef, ctx: CheckContext) -> tuple[Outcome, bool]:
    """Run one check; returns (outcome, crashed). A crash never escapes."""
    for need in definition.needs:
        if not ctx.has(need):
            return Outcome.failed(f"Could not be checked: {ctx.why_missing(need)}"), False
    try:
        outcome = definition.fn(ctx)
    except GraderError:
        raise  # a configuration fault (a missing threshold, say) must stop grading loudly
    except Exception as exc:  # the grader's bug, not the student's: flag it, keep grading
        tb = traceback.format_exc(limit=4)
        return (
            Outcome.failed(
                f"The grader could not evaluate this test ({type(exc).__name__}: {exc}). "
                "This is not your fault; a TA has been flagged.",
                traceback=tb,
            ),
            True,
        )
    fraction = float(min(1.0, max(0.0, outcome.fraction)))
    if fraction != outcome.fraction or not np.isfinite(outcome.fraction):
        outcome = Outcome(
            fraction=fraction if np.isfinite(fraction) else 0.0,
            message=outcome.message,
            hint=outcome.hint,
            details=outcome.details,
        )
    return outcome, False
