"""Q3: the FashionMNIST MLP in torch (784-256-128-64-10, ReLU, logits out)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from graders.models import ProbeInputs
from graders.numerics.datasets import load_split
from graders.questions.api import ProbeContext, QuestionSpec
from graders.questions.q3_fashion_mlp import checks

LAYERS = (784, 256, 128, 64, 10)
N_ARCH_IMAGES = 16


def make_inputs(ctx: ProbeContext) -> ProbeInputs:
    """Grader weights to load into the student's model (architecture by behaviour), a few
    real test images to run them on, and where the probe reads the whole test set from."""
    rng = ctx.rng
    arrays: dict[str, np.ndarray] = {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(LAYERS)):
        arrays[f"ref.w{i}"] = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_out, n_in)).astype(
            np.float32
        )
        arrays[f"ref.b{i}"] = rng.normal(0.0, 0.05, size=n_out).astype(np.float32)
    images, _labels = load_split(ctx.data_root, "FashionMNIST", train=False)
    pick = rng.choice(len(images), size=N_ARCH_IMAGES, replace=False)
    arrays["images"] = (images[pick].astype(np.float32) / 255.0)[:, None, :, :]
    return ProbeInputs(arrays=arrays, values={"layers": list(LAYERS)})


SPEC = QuestionSpec(
    id="q3",
    title="FashionMNIST multilayer perceptron",
    order=3,
    notebook_stem="q3_fashion_mlp",
    name_pattern=r"(^|[^a-z0-9])q(uestion)?[ _-]?0?3([^0-9]|$)|fashion",
    content_markers=(
        "train_loss_history",
        "test_loss_history",
        "trainDataLoader",
        "visualize_pred",
    ),
    free_response_ids=("q3_observations", "q3_test_vs_train"),
    uses_torch=True,
    make_inputs=make_inputs,
    artifacts=(
        "model_summary.json",
        "state_dict.npz",
        "histories.json",
        "samples.json",
        "sample_probabilities.npz",
        "reference_logits.npz",
        "training_setup.json",
    ),
    checks=checks.CHECKS,
    package_dir=Path(__file__).resolve().parent,
)
