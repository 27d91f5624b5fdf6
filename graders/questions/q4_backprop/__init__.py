"""Q4: a numpy network trained by hand-written backprop on MNIST."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from graders.models import ProbeInputs
from graders.numerics.datasets import load_scaled
from graders.numerics.numpy_mlp import LAYER_SIZES
from graders.questions.api import ProbeContext, QuestionSpec
from graders.questions.q4_backprop import checks
from graders.questions.q4_backprop.checks.shared import TEMPLATE_LEARNING_RATE

LAYERS = LAYER_SIZES
SNAPSHOT_NAMES = (
    "weights",
    "biases",
    "params",
    "parameters",
    "network",
    "net",
    "nn",
    "model",
    "theta",
    "weights_dict",
    *(f"{p}{sep}{i}" for p in ("w", "W", "b", "B") for sep in ("", "_") for i in range(5)),
)
"""Globals whose first values the grader keeps (the initial weights, wherever the notebook
holds them: see probe.py)."""
N_FORWARD = 8
N_TRAIN_STEPS = 2
TEMPLATE_LEARNING_RATES = (TEMPLATE_LEARNING_RATE,)
"""The learning rates the template holds (``train_one_sample``'s default and ``LEARNING_RATE``):
the probe's rate is drawn away from them, so a function that ignores its argument shows."""
LEARNING_RATE_RANGE = (0.012, 0.088)
"""Where the probe's rate is drawn: at least 4 times the template's 0.003, small enough that one
step stays a small change of the weights."""
ROUND_RATES = tuple(
    k * 10.0**e for e in (-3, -2, -1) for k in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)
)
"""Literals a student might type in instead of using the argument (0.01, 0.05, ...)."""
LITERAL_MARGIN = 0.05
"""The drawn rate differs from each of those (and from the template's) by more than 5 %."""


def probe_learning_rate(rng: np.random.Generator) -> float:
    """A learning rate no default or likely literal of a notebook holds, to 3 significant figures:
    an update that does not scale with it (the global or a typed-in 0.003 used instead) then
    differs from the reference by a factor of 4 or more."""
    avoid = (*TEMPLATE_LEARNING_RATES, *ROUND_RATES)
    while True:
        rate = float(f"{rng.uniform(*LEARNING_RATE_RANGE):.3g}")
        if all(abs(rate / literal - 1) > LITERAL_MARGIN for literal in avoid):
            return rate


def make_inputs(ctx: ProbeContext) -> ProbeInputs:
    """Grader-chosen weights (not the seeded init, so a copied table cannot match), real test
    images and a learning rate off the template's defaults; the reference side computes the
    expected values on the same inputs."""
    rng = ctx.rng
    arrays: dict[str, np.ndarray] = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(LAYERS)):
        arrays[f"w{i}"] = rng.normal(0.0, np.sqrt(1.0 / max(n_in, n_out)), size=(n_in, n_out))
        arrays[f"b{i}"] = rng.normal(0.0, 0.1, size=n_out)
    x, y = load_scaled(ctx.data_root, "MNIST", train=False)
    pick = rng.choice(len(x), size=N_FORWARD + N_TRAIN_STEPS, replace=False)
    arrays["samples"] = x[pick[:N_FORWARD]]
    arrays["labels"] = y[pick[:N_FORWARD]]
    arrays["train_samples"] = x[pick[N_FORWARD:]]
    arrays["train_labels"] = y[pick[N_FORWARD:]]
    arrays["z"] = np.concatenate(
        [[-1000.0, -60.0, -1.0, 0.0, 1.0, 60.0, 1000.0], rng.normal(0, 3, size=9)]
    )
    arrays["softmax_in"] = np.stack([rng.normal(0, 2, size=10), rng.normal(0, 2, size=10) + 900.0])
    learning_rate = probe_learning_rate(rng)  # drawn last: the arrays above stay as they were
    return ProbeInputs(
        arrays=arrays, values={"learning_rate": learning_rate, "layers": list(LAYERS)}
    )


SPEC = QuestionSpec(
    id="q4",
    title="Backpropagation in numpy on MNIST",
    order=4,
    notebook_stem="q4_numpy_backprop",
    name_pattern=r"(^|[^a-z0-9])q(uestion)?[ _-]?0?4([^0-9]|$)|backprop|numpy",
    content_markers=(
        "feed_forward_sample",
        "train_one_sample",
        "train_one_epoch",
        "feed_forward_dataset",
    ),
    uses_torch=False,
    snapshot_names=SNAPSHOT_NAMES,
    make_inputs=make_inputs,
    artifacts=(
        "helpers.npz",
        "final.npz",
        "layout.json",
        "init.npz",
        "forward.npz",
        "forward_meta.json",
        "train_meta.json",
        "train_step.npz",
        "input_scale.json",
    ),
    checks=checks.CHECKS,
    package_dir=Path(__file__).resolve().parent,
)
