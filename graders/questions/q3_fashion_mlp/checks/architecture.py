"""Q3's ``q3.architecture``: the right Linear layers (by their shapes), and the right function (by
behaviour: the student's model loaded with the grader's weights must give the reference logits).

The shapes alone would pass a model without its ReLUs or with a softmax on its output; the
behaviour alone could not say which layer is wrong. So each is half the points, and when the
behaviour is wrong the grader replays its weights through the usual mistakes (``diagnose``) to
name the one the student made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q3_fashion_mlp import diagnose
from graders.questions.q3_fashion_mlp.checks.shared import (
    LAYERS,
    FloatArray,
    reference_model,
    why,
)

SHAPES_PART = 0.5
"""Architecture: right Linear layers; the other half is the behaviour with the grader's weights."""


def _chain(pairs: Sequence[tuple[int, int]]) -> str:
    """784 -> 256 -> 10 when the layers connect, else the (in, out) pairs as they are."""
    if not pairs:
        return "no Linear layers"
    if all(a[1] == b[0] for a, b in pairwise(pairs)):
        return " -> ".join(str(n) for n in [pairs[0][0], *(p[1] for p in pairs)])
    return ", ".join(f"Linear({i}, {o})" for i, o in pairs)


# -- the behaviour of the student's model with the grader's weights ------------------------------


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    matches: bool | None
    """True: the reference logits; False: something else; None: could not be run."""
    message: str
    hint: str = ""


def _grader_params(arrays: Mapping[str, np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(LAYERS) - 1
    return [(arrays[f"ref.w{i}"], arrays[f"ref.b{i}"]) for i in range(n)]


def _reference_logits(arrays: Mapping[str, np.ndarray]) -> FloatArray:
    """The reference network's logits for the grader's weights on the probe's images."""
    state: dict[str, np.ndarray] = {}
    for i, (w, b) in enumerate(_grader_params(arrays)):
        state[f"layer{i}.weight"], state[f"layer{i}.bias"] = w, b
    import torch

    model = reference_model().model_from_state(state).eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(arrays["images"], dtype=np.float32)))
    result: FloatArray = logits.double().numpy()
    return result


def _behaviour(ctx: CheckContext, *, explain: bool = True) -> Behaviour:
    """Does the student's model compute the reference function? ``explain``: and if not, what
    does it compute instead (a search over variants, only worth it for the message)."""
    got = ctx.npz("reference_logits")
    if got is None or "logits" not in got:
        return Behaviour(
            matches=None,
            message="the grader could not run your model with its own weights: "
            + why(ctx, "reference_weights_logits"),
            hint="forward must accept a batch of images of shape (N, 1, 28, 28) and return "
            "(N, 10) logits.",
        )
    expected = _reference_logits(ctx.inputs.arrays)
    found = np.asarray(got["logits"], dtype=np.float64)
    if found.shape != expected.shape and found.size == expected.size:
        found = found.reshape(expected.shape)
    if found.shape != expected.shape:
        return Behaviour(
            matches=False,
            message=f"for a batch of {len(expected)} images of shape (1, 28, 28) it returned "
            f"shape {found.shape}; expected {expected.shape}",
            hint="forward receives (N, 1, 28, 28): flatten to (N, 784) with "
            "x.reshape(len(x), -1) or nn.Flatten(), and return (N, 10) logits.",
        )
    if not np.all(np.isfinite(found)):
        return Behaviour(matches=False, message="it returned NaN or infinite outputs")
    if diagnose.close(found, expected):
        return Behaviour(
            matches=True, message="with the grader's weights it gives the reference logits"
        )
    if not explain:
        return Behaviour(matches=False, message="it does not give the reference logits")
    images = np.asarray(ctx.inputs.arrays["images"], dtype=np.float64)
    variant = diagnose.matching_variant(found, images, _grader_params(ctx.inputs.arrays))
    said = (
        diagnose.describe_variant(variant, LAYERS)
        if variant is not None
        else diagnose.describe_outputs(found, expected)
    )
    hint = "The model must be Linear -> ReLU three times, then a last Linear, and return its "
    hint += "raw outputs (logits)."
    if "probabilities" in said:
        hint = "Return the last Linear layer's output as it is: CrossEntropyLoss applies "
        hint += "log_softmax itself; use torch.softmax(logits, dim=1) only where you need "
        hint += "probabilities (the sample plots)."
    return Behaviour(
        matches=False,
        message=f"with the grader's weights loaded, your model {said}",
        hint=hint,
    )


# -- q3.architecture -----------------------------------------------------------------------------


@check("q3.architecture", "Architecture 784-256-128-64-10 with ReLU, logits out")
def architecture(ctx: CheckContext) -> Outcome:
    summary = ctx.json("model_summary")
    if not isinstance(summary, dict):
        return Outcome.failed(f"No model to check: {why(ctx, 'model')}")
    layers = summary.get("linear_layers", [])
    have = [(int(layer["in"]), int(layer["out"])) for layer in layers]
    want = list(pairwise(LAYERS))
    details = {"linear_layers": have, "module_types": summary.get("module_types", [])}
    if have != want:
        return Outcome.failed(
            f"Expected Linear layers {_chain(want)}, found {_chain(have)} "
            f"(in `{summary.get('name')}`, a {summary.get('class')})",
            hint="Three hidden Linear layers of 256, 128 and 64 units, each followed by a "
            "ReLU, and an output Linear layer of 10: Linear(784, 256), Linear(256, 128), "
            "Linear(128, 64), Linear(64, 10).",
            **details,
        )
    no_bias = [layer["name"] for layer in layers if not layer.get("bias", True)]
    behaviour = _behaviour(ctx)
    if no_bias:
        return Outcome(
            fraction=SHAPES_PART / 2,
            message=f"The Linear layers have the right sizes ({_chain(have)}), but "
            f"{', '.join(no_bias)} {'has' if len(no_bias) == 1 else 'have'} no bias; "
            f"{behaviour.message}",
            hint="Keep the default bias=True in every torch.nn.Linear.",
            details=details,
        )
    if behaviour.matches:
        return Outcome.passed(
            f"Linear layers {_chain(have)}, and {behaviour.message} (so the ReLUs are in place "
            "and the output is logits)",
            **details,
        )
    return Outcome(
        fraction=SHAPES_PART,
        message=f"The Linear layers are right ({_chain(have)}), but {behaviour.message}",
        hint=behaviour.hint,
        details=details,
    )
