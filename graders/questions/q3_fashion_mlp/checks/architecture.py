"""Q3's ``q3.architecture``: the right Linear layers (by their shapes), and the right function (by
behaviour: the student's model loaded with the grader's weights must give the reference logits,
``ctx.expected("reference_logits")``).

The shapes alone would pass a model without its ReLUs or with a softmax on its output; the
behaviour alone could not say which layer is wrong. So each is half the points, and when the
behaviour is wrong the grader replays its weights through the usual mistakes (``variants``) to
name the one the student made.

The layers are the ones forward applies, in the order it applies them (the probe traces a
forward pass): any registration order and any attribute names pass, a layer applied twice
counts twice, and a layer ``__init__`` creates but forward never applies is named and costs
nothing (it does not change what the model computes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q3_fashion_mlp.checks import variants
from graders.questions.q3_fashion_mlp.checks.shared import (
    LAYERS,
    LinearLayer,
    grader_weights,
    linear_layers,
    text_of,
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
    expected = np.asarray(ctx.expected("reference_logits")["logits"], dtype=np.float64)
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
    if variants.close(found, expected):
        return Behaviour(
            matches=True, message="with the grader's weights it gives the reference logits"
        )
    if not explain:
        return Behaviour(matches=False, message="it does not give the reference logits")
    images = np.asarray(ctx.inputs.arrays["images"], dtype=np.float64)
    variant = variants.matching_variant(found, images, grader_weights(ctx.inputs.arrays))
    said = (
        variants.describe_variant(variant, LAYERS)
        if variant is not None
        else variants.describe_outputs(found, expected)
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


def behaves_as_reference(ctx: CheckContext) -> bool | None:
    """Whether the student's model, loaded with the grader's weights, gives the reference logits
    (None: it could not be run): ``q3.training_setup`` leaves to this check any extra layer
    that changes what the model computes."""
    return _behaviour(ctx, explain=False).matches


def _order_notes(summary: dict[str, object], layers: list[LinearLayer]) -> str:
    """What to add about how the layers were found: an unused or reused layer, or forward
    failing (so the layers are in the order __init__ created them)."""
    notes = []
    if summary.get("order") == "definition":
        error = text_of(summary.get("forward_error"), 200)
        if not error:
            why_not = "forward applies no Linear module the grader could trace (F.linear?)"
        elif error.startswith("the model could not be copied"):
            why_not = error
        else:
            why_not = f"forward raised {error} on the grader's images"
        notes.append(f"{why_not}, so the layers are taken in the order your __init__ creates them")
    names = [layer.name for layer in layers]
    for name in dict.fromkeys(names):
        if names.count(name) > 1:
            notes.append(f"forward applies `{name}` {names.count(name)} times")
    unused = linear_layers(summary, "unused_linear_layers") or []
    if unused:
        listed = ", ".join(f"`{u.name}` (Linear({u.n_in}, {u.n_out}))" for u in unused[:5])
        verb = "is" if len(unused) == 1 else "are"
        notes.append(
            f"{listed} {verb} created but never applied by forward, so "
            f"{'it does' if len(unused) == 1 else 'they do'} not change what the model computes"
        )
    return "".join(f"; {note}" for note in notes)


# -- q3.architecture -----------------------------------------------------------------------------


@check("q3.architecture", "Architecture 784-256-128-64-10 with ReLU, logits out")
def architecture(ctx: CheckContext) -> Outcome:
    summary = ctx.json("model_summary")
    if not isinstance(summary, dict):
        return Outcome.failed(f"No model to check: {why(ctx, 'model')}")
    layers = linear_layers(summary)
    if layers is None:
        return Outcome.failed("The grader could not read your model's Linear layers.")
    have = [(layer.n_in, layer.n_out) for layer in layers]
    want = list(pairwise(LAYERS))
    types = summary.get("module_types")
    details = {
        "linear_layers": have,
        "module_types": [t for t in types[:50] if isinstance(t, str)]
        if isinstance(types, list)
        else [],
    }
    notes = _order_notes(summary, layers)
    model_name, model_class = text_of(summary.get("name")), text_of(summary.get("class"))
    if have != want:
        return Outcome.failed(
            f"Expected Linear layers {_chain(want)}, found {_chain(have)} "
            f"(in `{model_name}`, a {model_class}){notes}",
            hint="Three hidden Linear layers of 256, 128 and 64 units, each followed by a "
            "ReLU, and an output Linear layer of 10: Linear(784, 256), Linear(256, 128), "
            "Linear(128, 64), Linear(64, 10).",
            **details,
        )
    no_bias = [layer.name for layer in layers if not layer.bias]
    behaviour = _behaviour(ctx)
    if no_bias:
        return Outcome(
            fraction=SHAPES_PART / 2,
            message=f"The Linear layers have the right sizes ({_chain(have)}), but "
            f"{', '.join(no_bias)} {'has' if len(no_bias) == 1 else 'have'} no bias; "
            f"{behaviour.message}{notes}",
            hint="Keep the default bias=True in every torch.nn.Linear.",
            details=details,
        )
    if behaviour.matches:
        return Outcome.passed(
            f"Linear layers {_chain(have)}, and {behaviour.message} (so the ReLUs are in place "
            f"and the output is logits){notes}",
            **details,
        )
    return Outcome(
        fraction=SHAPES_PART,
        message=f"The Linear layers are right ({_chain(have)}), but {behaviour.message}{notes}",
        hint=behaviour.hint,
        details=details,
    )
