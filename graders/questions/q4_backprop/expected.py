"""What the reference gives on Q4's probe inputs: the values its public checks compare with.

The only module of Q4's public tests that imports ``reference/`` (with ``diagnose.py``, which
it calls); in the student kit these values are read from the data ``dlgrade kit build`` stored
for the kit's fixed inputs. Networks are stored as ``w0, b0, ...`` arrays
(``checks.shared.params_at`` reads them back).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graders.models import ProbeInputs
from graders.questions.api import Argument, ExpectationContext, expectation
from graders.questions.q4_backprop import diagnose
from graders.questions.q4_backprop.checks.evidence import KNOWN_MISTAKES
from graders.questions.q4_backprop.checks.shared import (
    TEMPLATE_LEARNING_RATE,
    params_arrays,
)
from reference import q4_numpy as ref

KIT_INIT_SAMPLE = 256
"""Positions per layer of the seeded initial weights the student kit holds. The full draws are
themselves an answer the real grader takes (its seed is the assignment's, so they are the same
for every run); a sample of them tells a copy from the draws just as well, and is no answer."""


def _init_sample(value: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``KIT_INIT_SAMPLE`` random positions per layer of ``init``, in increasing order."""
    out: dict[str, np.ndarray] = {}
    for key in sorted(k for k in value if k.endswith(".index")):
        layer = key.removesuffix(".index")
        index, values = value[key], value[f"{layer}.values"]
        keep = np.sort(rng.choice(index.size, size=min(KIT_INIT_SAMPLE, index.size), replace=False))
        out[key], out[f"{layer}.values"] = index[keep], values[keep]
    return out


@expectation("init", publish=_init_sample)
def init(_ctx: ExpectationContext, _arguments: Mapping[str, Argument]) -> dict[str, np.ndarray]:
    """The seeded initial weights of ``default_rng(80085)``, per layer as flat positions and
    values (``w0.index``, ``w0.values``, ...): the grader holds every position."""
    out: dict[str, np.ndarray] = {}
    for i, w in enumerate(ref.init_params().weights):
        out[f"w{i}.index"] = np.arange(w.size)
        out[f"w{i}.values"] = w.reshape(-1)
    return out


@expectation("forward")
def forward(ctx: ExpectationContext, _arguments: Mapping[str, Argument]) -> dict[str, np.ndarray]:
    """The reference's loss and one-hot guess per grader sample, on the grader's weights."""
    params = _injected(ctx.inputs)
    samples, labels = ctx.inputs.arrays["samples"], ctx.inputs.arrays["labels"]
    results = [
        ref.feed_forward_sample(params, x, int(y)) for x, y in zip(samples, labels, strict=True)
    ]
    return {
        "losses": np.array([loss for loss, _ in results]),
        "guesses": np.stack([guess for _, guess in results]),
    }


@expectation("train_step")
def train_step(
    ctx: ExpectationContext, _arguments: Mapping[str, Argument]
) -> dict[str, np.ndarray]:
    """The reference's network after one SGD step per training sample, from the grader's
    weights at the probe's learning rate (``s0.w0``, ``s0.b0``, ...)."""
    params, lr = _injected(ctx.inputs), float(ctx.inputs.values["learning_rate"])
    out: dict[str, np.ndarray] = {}
    for i, (x, y) in enumerate(_train_samples(ctx.inputs)):
        out |= params_arrays(ref.train_one_sample(params, x, y, lr), prefix=f"s{i}.")
    return out


@expectation("fd_points")
def fd_points(ctx: ExpectationContext, _arguments: Mapping[str, Argument]) -> list[dict[str, Any]]:
    """The loss gradient by finite differences at a few coordinates of the first training
    sample, beside the reference's own; computing it raises if the two disagree (the
    reference's gradients would be wrong, and so every expected update)."""
    x, y = next(iter(_train_samples(ctx.inputs)))
    _, points = diagnose.verified_gradients(_injected(ctx.inputs), x, y)
    return [p.plain() for p in points]


def _kit_rates(inputs: ProbeInputs) -> tuple[Mapping[str, Argument], ...]:
    """The rates the kit stores the mistakes at: the probe's, and the template's default."""
    return ({"rate": float(inputs.values["learning_rate"])}, {"rate": TEMPLATE_LEARNING_RATE})


@expectation("mistake_steps", kit_arguments=_kit_rates)
def mistake_steps(
    ctx: ExpectationContext, arguments: Mapping[str, Argument]
) -> dict[str, np.ndarray]:
    """Each known mistake's step per training sample at ``arguments["rate"]`` (the rate passed,
    or one the notebook holds): ``<mistake>.s0.w0``, ..."""
    params, rate = _injected(ctx.inputs), float(arguments["rate"])
    out: dict[str, np.ndarray] = {}
    for mistake in KNOWN_MISTAKES:
        update = diagnose.MISTAKE_UPDATES[mistake.name]
        for i, (x, y) in enumerate(_train_samples(ctx.inputs)):
            out |= params_arrays(update(params, x, y, rate), prefix=f"{mistake.name}.s{i}.")
    return out


def _injected(inputs: ProbeInputs) -> ref.Params:
    n = len(ref.LAYER_SIZES) - 1
    arrays = inputs.arrays
    return ref.Params.of([arrays[f"w{i}"] for i in range(n)], [arrays[f"b{i}"] for i in range(n)])


def _train_samples(inputs: ProbeInputs) -> list[tuple[np.ndarray, int]]:
    arrays = inputs.arrays
    return [
        (x, int(y)) for x, y in zip(arrays["train_samples"], arrays["train_labels"], strict=True)
    ]


EXPECTATIONS = (init, forward, train_step, fd_points, mistake_steps)
