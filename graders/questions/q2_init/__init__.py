"""Q2: initialization scales, the derived formulas implemented as functions."""

from __future__ import annotations

from pathlib import Path

from graders.models import ProbeInputs
from graders.questions.api import ProbeContext, QuestionSpec
from graders.questions.q2_init import checks, reference_runs

FUNCTIONS: dict[str, tuple[str, ...]] = {
    "activation_variance": ("n_in", "sigma2", "v2"),
    "forward_variance": ("n_in",),
    "relu_factor": (),
    "relu_forward_variance": ("n_in",),
    "backward_variance": ("n_out",),
    "xavier_variance": ("n_in", "n_out"),
}
POINTS = 6
"""Random points per formula, from the whole range a layer's width can take."""
STACK_DEPTH = 10
STACK_WIDTHS = (64, 160)
"""Widths of the Monte-Carlo stack: small enough to simulate in well under a second, wide
enough that a correct rule's measured signal stays within a few percent of its input's."""


def make_inputs(ctx: ProbeContext) -> ProbeInputs:
    """Random points for the closed forms, plus the points the Monte-Carlo stack needs.

    The stack's widths are drawn here so that the probe can ask the student's own rules for
    their values at exactly those widths; the checks then simulate with those numbers.
    """
    rng = ctx.rng

    def draw(arg: str) -> float | int:
        if arg in ("n_in", "n_out"):
            return int(rng.integers(1, 4097))
        if arg == "sigma2":
            return float(10 ** rng.uniform(-4, 0))
        return float(10 ** rng.uniform(-1, 1))  # v2

    calls = {
        name: [[draw(a) for a in args] for _ in range(POINTS if args else 1)]
        for name, args in FUNCTIONS.items()
    }
    low, high = STACK_WIDTHS
    stack = {
        "widths": [int(w) for w in rng.integers(low, high + 1, size=STACK_DEPTH + 1)],
        "square": int(rng.integers(low, high + 1)),
        "seed": int(rng.integers(2**31)),
    }
    for name, needed in checks.stack_calls(stack).items():
        extra: list[list[float | int]] = [[*a] for a in needed if a not in calls[name]]
        calls[name] += extra
    return ProbeInputs(values={"calls": calls, "stack": stack})


SPEC = QuestionSpec(
    id="q2",
    title="Choosing the scale of initialization",
    order=2,
    notebook_stem="q2_initialization",
    name_pattern=r"(^|[^a-z0-9])q(uestion)?[ _-]?0?2([^0-9]|$)|initiali[sz]ation",
    content_markers=tuple(FUNCTIONS),
    free_response_ids=("q2a", "q2b", "q2c", "q2d", "q2e"),
    make_inputs=make_inputs,
    artifacts=("formulas.json",),
    checks=checks.CHECKS,
    reference_report=reference_runs.reference_report,
    package_dir=Path(__file__).resolve().parent,
)
