"""Q4's ``q4.forward``: ``feed_forward_sample`` on the grader's weights gives the reference's loss
and one-hot guess for each grader sample (``ctx.expected("forward")``).

The probe set the global ``weights`` and ``biases`` to the grader's own before each call, so a
seeded table copied into the notebook cannot match. A wrong loss is compared with the usual
mistakes (no biases, the notebook's own weights instead of the globals) to name the one made.
"""

from __future__ import annotations

import math

import numpy as np

from graders.numerics.numpy_mlp import Params, forward_batch
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q4_backprop.checks.shared import (
    RTOL,
    canonical_params,
    close_to,
    injected_params,
    shown,
)
from graders.render.numbers import number


def _forward_variants(ctx: CheckContext) -> dict[str, Params]:
    """Parameters a wrong forward pass effectively uses, to name the mistake."""
    injected = injected_params(ctx)
    variants = {
        "a forward pass without the biases": Params.of(
            injected.weights, [np.zeros_like(b) for b in injected.biases]
        )
    }
    for name, what in (("final", "trained"), ("init", "initial")):
        own, _ = canonical_params(ctx.npz(name) or {})
        if own is not None:
            variants[f"your notebook's {what} weights instead of the global `weights`"] = own
    return variants


def _explain_forward(ctx: CheckContext, losses: np.ndarray, index: np.ndarray) -> str:
    samples, labels = ctx.inputs.arrays["samples"], ctx.inputs.arrays["labels"]
    rows = samples[index].reshape(len(index), -1)
    for what, params in _forward_variants(ctx).items():
        with np.errstate(all="ignore"):  # a variant's loss may be inf; it then matches nothing
            probs = forward_batch(params, rows)
            expected = -np.log(probs[np.arange(len(index)), labels[index]])
        if close_to(losses, expected, rtol=RTOL, atol=0.0):
            return f" Your losses match {what}."
    return ""


@check("q4.forward", "feed_forward_sample on the grader's weights")
def forward(ctx: CheckContext) -> Outcome:
    """Half for the losses, half for the one-hot guesses, per sample."""
    data = ctx.npz("forward")
    if data is None:
        return Outcome.failed(f"Could not be checked: {ctx.why_missing('feed_forward_sample')}")
    labels = ctx.inputs.arrays["labels"]
    n = len(labels)
    index = data.get("index", np.arange(len(data.get("losses", []))))
    expected = ctx.expected("forward")
    losses_ok = guesses_ok = 0
    problems: list[str] = []
    for row, i in enumerate(index.tolist()):
        loss, guess = float(expected["losses"][i]), expected["guesses"][i]
        got_loss, got_guess = float(data["losses"][row]), data["guesses"][row]
        if math.isclose(got_loss, loss, rel_tol=RTOL):
            losses_ok += 1
        else:
            problems.append(
                f"sample {i} (label {labels[i]}): loss {number(got_loss, 6)}, "
                f"expected {number(loss, 6)}"
            )
        if got_guess.shape == guess.shape and np.array_equal(got_guess, guess):
            guesses_ok += 1
        elif got_guess.shape != guess.shape:
            problems.append(
                f"sample {i}: one_hot_guess has shape {got_guess.shape}, expected (10,)"
            )
        else:
            problems.append(
                f"sample {i}: guess {shown(got_guess, 10)}, expected class {int(np.argmax(guess))}"
            )
    for i in sorted(set(range(n)) - set(index.tolist())):
        problems.append(f"sample {i}: {ctx.why_missing(f'feed_forward_sample[{i}]')}")
    fraction = 0.5 * (losses_ok + guesses_ok) / n
    if not problems:
        return Outcome.passed(
            f"Losses and one-hot guesses match the reference on all {n} grader samples "
            "(with the grader's weights)."
        )
    explain = _explain_forward(ctx, data["losses"], index) if losses_ok < len(index) else ""
    return Outcome(
        fraction=fraction,
        message=(
            f"{losses_ok} of {n} losses and {guesses_ok} of {n} guesses match the reference on "
            f"the grader's weights: {'; '.join(problems[:3])}"
            + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
            + "."
            + explain
        ),
        hint="feed_forward_sample must use the global `weights` and `biases` as they are when it "
        "is called: z = a @ W + b per layer, sigmoid on the hidden layers, softmax on the last; "
        "return (cross-entropy loss, one-hot vector of length 10).",
    )
