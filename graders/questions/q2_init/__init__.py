"""Q2: initialization scales, the derived formulas implemented as functions."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from graders.models import ProbeInputs
from graders.questions.api import ProbeContext, QuestionSpec, draw_away
from graders.questions.q2_init import checks

FUNCTIONS: dict[str, tuple[str, ...]] = {
    "activation_variance": ("n_in", "sigma2", "v2"),
    "forward_variance": ("n_in",),
    "relu_factor": (),
    "relu_forward_variance": ("n_in",),
    "backward_variance": ("n_out",),
    "xavier_variance": ("n_in", "n_out"),
}
POINTS = 6
"""Random points per formula, one from each sixth of the (log) range an argument can take."""
RANGES: dict[str, tuple[float, float]] = {
    "n_in": (2, 4096),
    "n_out": (2, 4096),
    "sigma2": (1e-4, 1.0),
    "v2": (0.1, 10.0),
}
"""The range each argument is drawn from, log-uniformly."""
TEMPLATE_NUMBERS = (0.002, 0.01, 1.0, 2.0, 3.0, 4.0, 10.0, 100.0, 256.0, 300.0, 1000.0, 2000.0)
"""Every number in the template's code (its globals n_in, n_out = 300, 100; the examples
sigma2, v2 = 0.01, 1.0 and 0.002, 4.0; the simulation's width 256, depth 10, 2000 samples) and
q2b's 100 and 1000: no probe argument comes within 5 % of one, so a formula that ignores an
argument and uses the notebook's global instead is wrong at every point."""
XAVIER_SHIFTS = (2, 3, 4)
"""xavier_variance's n_out is drawn from a sixth of the range 2 to 4 sixths away from its
n_in's: the layers are never near square, where every mean of 1/n_in and 1/n_out agrees."""
STACK_DEPTH = 10
STACK_WIDTHS = (150, 220)
"""Widths of the Monte-Carlo stacks of the forward, ReLU and backward rules: small enough to
simulate in well under a second, wide enough that a correct rule's measured signal stays
within a few percent of its input's, and away from the notebook's globals (at least 1.5 times
its n_out = 100, at most 1/1.36 of its n_in = 300), so that a rule that uses one of those
instead of its argument drifts out of the band within the stack's 10 layers."""
XAVIER_WIDTHS = ((40, 50), (180, 220))
"""The Xavier stack alternates a narrow and a wide layer (n_out / n_in about 4, then 1/4):
there 1/n_in, 1/n_out and 1/sqrt(n_in n_out) all keep the signal's size over two layers,
while 2/(n_in + n_out) shrinks it by 4 n_in n_out / (n_in + n_out)^2 ~ 0.64 per pair; after 10
layers the others are more than 6 times off what Glorot's rule gives (measured over 150 seeds:
at least 8.9 times; a correct rule at most 1.1 times)."""


def spread(rng: np.random.Generator, arg: str) -> list[float | int]:
    """POINTS values of ``arg``, the k-th from the k-th sixth of its log range."""
    low, high = np.log(RANGES[arg])
    edges = np.exp(np.linspace(low, high, POINTS + 1))
    whole = arg in ("n_in", "n_out")
    values = [
        draw_away(rng, lo, hi, TEMPLATE_NUMBERS, log=True, digits=0 if whole else None)
        for lo, hi in itertools.pairwise(edges)
    ]
    return [int(v) for v in values] if whole else list(values)


def make_inputs(ctx: ProbeContext) -> ProbeInputs:
    """Random points for the closed forms, plus the points the Monte-Carlo stacks need.

    Every argument takes a value from each sixth of its range, in random order. The stacks'
    widths are drawn here so that the probe can ask the student's own rules for their values at
    exactly those widths; the checks then simulate with those numbers.
    """
    rng = ctx.rng
    calls: dict[str, list[list[float | int]]] = {}
    for name, args in FUNCTIONS.items():
        orders = [rng.permutation(POINTS) for _ in args]
        if name == "xavier_variance":  # n_out 2 to 4 sixths from n_in: never near square
            orders[1] = (orders[0] + int(rng.choice(XAVIER_SHIFTS))) % POINTS
        columns = [
            [values[int(k)] for k in order]
            for values, order in zip([spread(rng, a) for a in args], orders, strict=True)
        ]
        calls[name] = [list(p) for p in zip(*columns, strict=True)] if args else [[]]
    narrow, wide = XAVIER_WIDTHS
    stack = {
        "widths": [
            int(w) for w in rng.integers(*STACK_WIDTHS, size=STACK_DEPTH + 1, endpoint=True)
        ],
        "xavier_widths": [
            int(rng.integers(*(wide if i % 2 else narrow), endpoint=True))
            for i in range(STACK_DEPTH + 1)
        ],
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
    package_dir=Path(__file__).resolve().parent,
)
