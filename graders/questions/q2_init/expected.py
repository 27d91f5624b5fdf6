"""What the reference gives on Q2's probe inputs: the closed forms at the grader's calls.

The only module of Q2's public tests that imports ``reference/``; in the student kit its values
are read from the data ``dlgrade kit build`` stored for the kit's fixed inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from graders.questions.api import Argument, ExpectationContext, expectation
from reference import q2_init as ref

CLOSED_FORMS: dict[str, Callable[..., float]] = {
    "activation_variance": ref.activation_variance,
    "forward_variance": ref.forward_variance,
    "relu_factor": ref.relu_factor,
    "relu_forward_variance": ref.relu_forward_variance,
    "backward_variance": ref.backward_variance,
    "xavier_variance": ref.xavier_variance,
}


@expectation("formulas")
def formulas(ctx: ExpectationContext, _arguments: Mapping[str, Argument]) -> dict[str, list[float]]:
    """Per formula, the reference's value at each of the grader's calls, in their order."""
    calls = ctx.inputs.values["calls"]
    return {
        name: [float(closed(*args)) for args in calls[name]]
        for name, closed in CLOSED_FORMS.items()
    }


EXPECTATIONS = (formulas,)
