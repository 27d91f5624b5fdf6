"""Q2: initialization scales, the derived formulas implemented as functions."""

from __future__ import annotations

from pathlib import Path

from graders.questions import ProbeContext, ProbeInputs, QuestionSpec

FUNCTIONS: dict[str, tuple[str, ...]] = {
    "activation_variance": ("n_in", "sigma2", "v2"),
    "forward_variance": ("n_in",),
    "relu_factor": (),
    "relu_forward_variance": ("n_in",),
    "backward_variance": ("n_out",),
    "xavier_variance": ("n_in", "n_out"),
}
POINTS = 6


def make_inputs(ctx: ProbeContext) -> ProbeInputs:
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
    return ProbeInputs(values={"calls": calls})


SPEC = QuestionSpec(
    id="q2",
    title="Choosing the scale of initialization",
    order=2,
    notebook_stem="q2_initialization",
    name_pattern=r"(^|[^a-z0-9])q(uestion)?[ _-]?0?2([^0-9]|$)|initiali[sz]ation",
    content_markers=tuple(FUNCTIONS),
    free_response_ids=("q2a", "q2b", "q2c", "q2d", "q2e"),
    make_inputs=make_inputs,
    package_dir=Path(__file__).resolve().parent,
)
