"""Q4's tests: the helpers, the initial weights, one forward pass and one backprop step on the
grader's own weights, and the grader's own test accuracy of the trained weights.

Every number a student is held to is recomputed here from ``reference.q4_numpy`` on the exact
inputs the probe used; nothing the notebook printed is read. The probe has already turned
weights stored ``(out, in)`` and biases shaped ``(1, n)`` or ``(n, 1)`` into the canonical
``(in, out)`` / ``(n,)`` layout, so the checks below see one layout only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from graders.data import as_data_error
from graders.questions.api import CheckContext, Outcome, check
from graders.questions.q4_backprop import diagnose
from graders.render.numbers import number, numbers, percent
from reference import q4_numpy as ref
from reference.datasets import load_pixels

LAYERS = ref.LAYER_SIZES
RTOL = 1e-6
"""Relative tolerance for values the student computes with the same formulas as the reference."""
HELPER_ATOL = 1e-12
INIT_RTOL = 1e-10
"""Same draws from the same generator; only the last bits may differ (``z * s`` vs ``z / n``)."""
INIT_Z = 5.0
"""How many standard errors a layer's second moment may stray from the required variance."""
INIT_PARTIAL = 0.75
"""Right shapes, variances and zero biases, but not the seeded draws."""
BIASES_NONZERO_PARTIAL = 0.5
UPDATE_RTOL = 1e-6
"""An update may differ from the reference by this fraction of the layer's largest update."""


# -- shared helpers ------------------------------------------------------------------------------


def _params(arrays: Mapping[str, np.ndarray]) -> tuple[ref.Params | None, str]:
    """Canonical params from ``w0, b0, ...``, or None and what is wrong with them."""
    shapes = list(itertools.pairwise(LAYERS))
    found_w = [arrays[f"w{i}"] for i in range(len(shapes)) if f"w{i}" in arrays]
    found_b = [arrays[f"b{i}"] for i in range(len(shapes)) if f"b{i}" in arrays]
    n_layers = sum(1 for k in arrays if k.startswith("w"))
    if n_layers != len(shapes) or len(found_w) != len(shapes) or len(found_b) != len(shapes):
        return None, f"expected {len(shapes)} weight matrices and bias vectors, found {n_layers}"
    for i, ((n_in, n_out), w, b) in enumerate(zip(shapes, found_w, found_b, strict=True)):
        if w.shape != (n_in, n_out):
            either = f" (or ({n_out}, {n_in}))" if n_in != n_out else ""
            return None, f"weights[{i}]: expected shape ({n_in}, {n_out}){either}, got {w.shape}"
        if b.size != n_out:
            return None, f"biases[{i}]: expected {n_out} values, got shape {b.shape}"
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            return None, f"weights[{i}] or biases[{i}] contain NaN or infinity"
    return ref.Params.of(found_w, [b.reshape(-1) for b in found_b]), ""


def _injected(ctx: CheckContext) -> ref.Params:
    """The weights the probe put into the student's globals before calling their functions."""
    arrays = ctx.inputs.arrays
    n = len(LAYERS) - 1
    return ref.Params.of([arrays[f"w{i}"] for i in range(n)], [arrays[f"b{i}"] for i in range(n)])


def _close(found: np.ndarray, expected: np.ndarray, *, rtol: float, atol: float) -> bool:
    return found.shape == expected.shape and bool(
        np.all(np.isfinite(found)) and np.allclose(found, expected, rtol=rtol, atol=atol)
    )


def _fmt(values: np.ndarray, limit: int = 4) -> str:
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    shown = numbers(flat[:limit])
    return f"[{shown}{', ...' if flat.size > limit else ''}]"


def _first_cell_error(ctx: CheckContext) -> str:
    errors = ctx.run.execution.cell_errors
    if not errors:
        return ""
    e = errors[0]
    return f"cell {e.cell_index} raised {e.ename}: {e.evalue[:200]}"


# -- q4.helpers ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Part:
    """One separately scored piece of a check."""

    weight: float
    ok: bool
    message: str
    hint: str = ""


def _helper_missing(ctx: CheckContext, name: str) -> str:
    return f"{name}: could not be checked: {ctx.why_missing(f'helpers[{name}]')}"


def _sigmoid_part(ctx: CheckContext, found: Mapping[str, np.ndarray]) -> Part:
    z = ctx.inputs.arrays["z"]
    if "sigmoid" not in found:
        return Part(weight=0.25, ok=False, message=_helper_missing(ctx, "sigmoid"))
    expected = ref.sigmoid(z)
    if _close(found["sigmoid"], expected, rtol=RTOL, atol=HELPER_ATOL):
        return Part(weight=0.25, ok=True, message="sigmoid is correct, including at +-1000")
    return Part(
        weight=0.25,
        ok=False,
        message=f"sigmoid({_fmt(z)}) should be {_fmt(expected)}, got {_fmt(found['sigmoid'])}",
        hint="sigmoid(x) = 1 / (1 + exp(-x)), element-wise; keep the given stable version.",
    )


def _dsigmoid_part(ctx: CheckContext, found: Mapping[str, np.ndarray]) -> Part:
    z = ctx.inputs.arrays["z"]
    if "dsigmoid" not in found:
        return Part(weight=0.25, ok=False, message=_helper_missing(ctx, "dsigmoid"))
    expected = ref.dsigmoid(z)
    got = found["dsigmoid"]
    if _close(got, expected, rtol=RTOL, atol=HELPER_ATOL):
        return Part(weight=0.25, ok=True, message="dsigmoid is correct")
    if _close(got, z * (1 - z), rtol=RTOL, atol=HELPER_ATOL):
        return Part(
            weight=0.25,
            ok=False,
            message=(
                "dsigmoid(x) computes x * (1 - x): that is the derivative only when x is already "
                "the activation sigmoid(z); dsigmoid takes the pre-activation z"
            ),
            hint="Keep the given dsigmoid(x) = sigmoid(x) * (1 - sigmoid(x)).",
        )
    return Part(
        weight=0.25,
        ok=False,
        message=f"dsigmoid({_fmt(z)}) should be {_fmt(expected)}, got {_fmt(got)}",
        hint="dsigmoid(x) = sigmoid(x) * (1 - sigmoid(x)).",
    )


def _softmax_parts(ctx: CheckContext, found: Mapping[str, np.ndarray]) -> list[Part]:
    rows = ctx.inputs.arrays["softmax_in"]
    if "softmax" not in found:
        missing = _helper_missing(ctx, "softmax")
        return [
            Part(weight=0.25, ok=False, message=missing),
            Part(weight=0.25, ok=False, message=""),
        ]
    got = found["softmax"]
    if got.shape != rows.shape:
        message = f"softmax of a vector of {rows.shape[1]} values should return {rows.shape[1]} "
        message += f"probabilities, got shape {got.shape[1:]}"
        return [
            Part(weight=0.25, ok=False, message=message),
            Part(weight=0.25, ok=False, message=""),
        ]
    small, large = ref.softmax(rows[0]), ref.softmax(rows[1])
    parts = []
    if _close(got[0], small, rtol=RTOL, atol=HELPER_ATOL):
        parts.append(Part(weight=0.25, ok=True, message="softmax is correct"))
    else:
        parts.append(
            Part(
                weight=0.25,
                ok=False,
                message=f"softmax({_fmt(rows[0])}) should be {_fmt(small)}, got {_fmt(got[0])}",
                hint="softmax(x) = exp(x) / sum(exp(x)), over the vector's entries.",
            )
        )
    if _close(got[1], large, rtol=RTOL, atol=HELPER_ATOL):
        parts.append(Part(weight=0.25, ok=True, message="stable for inputs near +900"))
    elif not np.all(np.isfinite(got[1])):
        parts.append(
            Part(
                weight=0.25,
                ok=False,
                message="softmax of inputs near +900 gave NaN/inf: exp(900) overflows",
                hint="Subtract the maximum before exponentiating: y = exp(x - x.max()).",
            )
        )
    else:
        parts.append(
            Part(
                weight=0.25,
                ok=False,
                message=(
                    f"softmax of inputs near +900 should be {_fmt(large)}, got {_fmt(got[1])}"
                ),
                hint="Subtract the maximum before exponentiating: y = exp(x - x.max()).",
            )
        )
    return parts


def _combine(parts: Sequence[Part], all_ok: str) -> Outcome:
    fraction = sum(p.weight for p in parts if p.ok)
    failed = [p for p in parts if not p.ok and p.message]
    if not failed:
        return Outcome(fraction=fraction, message=all_ok)
    return Outcome(
        fraction=fraction,
        message="; ".join(p.message for p in failed),
        hint=" ".join(dict.fromkeys(p.hint for p in failed if p.hint)),
    )


@check("q4.helpers", "sigmoid, dsigmoid and a numerically stable softmax")
def helpers(ctx: CheckContext) -> Outcome:
    """A quarter each: sigmoid, dsigmoid, softmax, and softmax on inputs near +900."""
    found = ctx.npz("helpers") or {}
    parts = [_sigmoid_part(ctx, found), _dsigmoid_part(ctx, found), *_softmax_parts(ctx, found)]
    return _combine(parts, "sigmoid, dsigmoid and softmax are correct (softmax stable at +900)")


# -- q4.init -------------------------------------------------------------------------------------


def _seeded_draws(w: np.ndarray, expected: np.ndarray) -> bool:
    """The generator's stream, whether drawn with ``size=(n_in, n_out)`` or ``(n_out, n_in)``.

    The probe hands over ``(in, out)``; a matrix drawn as ``(out, in)`` and stored so holds the
    same numbers in the same order once transposed back, so both count as the seeded draws.
    """
    return any(
        np.allclose(candidate, expected, rtol=INIT_RTOL, atol=0.0)
        for candidate in (w, w.T.reshape(expected.shape))
    )


def variance_z(values: np.ndarray, variance: float) -> float:
    """How many standard errors the second moment about 0 is from ``variance``.

    For N iid N(0, s^2) values, N * m2 / s^2 is chi-square with N degrees of freedom; the
    Wilson-Hilferty cube-root transform makes it standard normal with tails that match the
    normal's even for N = 320, the last layer (simulated out to z = 4.5), so |z| <= 5 fails a
    correct initialization with probability ~6e-7 per layer. The normal approximation of the
    variance itself would be skewed at N = 320.
    """
    n = values.size
    ratio = float(np.mean(np.square(values))) / variance
    return (ratio ** (1 / 3) - (1 - 2 / (9 * n))) / math.sqrt(2 / (9 * n))


def _variance_diagnosis(values: np.ndarray, n_in: int, n_out: int) -> str:
    """Name the usual wrong variance when the sample is consistent with it."""
    big = max(n_in, n_out)
    candidates = {
        "1/max(n_in, n_out)^2: the standard deviation was set to the variance": 1 / big**2,
        "1/n_out instead of 1/max(n_in, n_out)": 1 / n_out,
        "1/n_in instead of 1/max(n_in, n_out)": 1 / n_in,
        "2/(n_in + n_out) (Xavier) instead of 1/max(n_in, n_out)": 2 / (n_in + n_out),
        "1: the draws were not scaled": 1.0,
        "1/sqrt(max(n_in, n_out)): the variance was used as the standard deviation": (
            1 / math.sqrt(big)
        ),
    }
    for name, var in candidates.items():
        if not math.isclose(var, 1 / big) and abs(variance_z(values, var)) <= INIT_Z:
            return name
    return ""


def _layer_variance_problem(i: int, w: np.ndarray) -> tuple[str, str]:
    """(what is wrong with layer i's variance, the likely cause), or ("", "") if nothing."""
    n_in, n_out = LAYERS[i], LAYERS[i + 1]
    required = 1 / max(n_in, n_out)
    z = variance_z(w, required)
    if abs(z) <= INIT_Z:
        return "", ""
    measured = float(np.mean(np.square(w)))
    return (
        f"weights[{i}] ({n_in} -> {n_out}): expected variance 1/{max(n_in, n_out)} = "
        f"{number(required)}, got {number(measured)} ({number(round(abs(z)))} standard errors off; "
        f"{number(INIT_Z)} allowed)"
    ), _variance_diagnosis(w, n_in, n_out)


def _variance_failure(params: ref.Params) -> Outcome | None:
    found = [_layer_variance_problem(i, w) for i, w in enumerate(params.weights)]
    problems = [(text, cause) for text, cause in found if text]
    if not problems:
        return None
    causes = list(dict.fromkeys(cause for _, cause in problems))
    if len(causes) == 1 and causes[0]:
        message = "; ".join(text for text, _ in problems) + f". The variance is {causes[0]}."
    else:
        message = "; ".join(text + (f" (that is {c})" if c else "") for text, c in problems)
    return Outcome.failed(
        message,
        hint="Draw each layer with rng.normal(loc=0, scale=np.sqrt(1 / max(n_in, n_out)), "
        "size=(n_in, n_out)): `scale` is the standard deviation, the square root of the "
        "variance.",
    )


@check("q4.init", "Initial weights: seeded normal draws with variance 1/max(n_in, n_out)")
def init(ctx: CheckContext) -> Outcome:
    """Full marks for the seeded reference draws; 0.75 for the right distribution otherwise."""
    data = ctx.npz("init")
    if data is None:
        return Outcome.failed(f"Could not be checked: {ctx.why_missing('initial_weights')}")
    params, problem = _params(data)
    if params is None:
        return Outcome.failed(
            f"Initial weights: {problem}",
            hint="Layers 784 -> 32 -> 32 -> 10: weights[i] of shape (n_in, n_out), biases[i] "
            "of shape (n_out,).",
        )
    expected = ref.init_params()
    zero_biases = all(not np.any(b) for b in params.biases)
    if zero_biases and all(
        _seeded_draws(w, e) for w, e in zip(params.weights, expected.weights, strict=True)
    ):
        return Outcome.passed("The initial weights are exactly the draws of default_rng(80085).")
    wrong_variance = _variance_failure(params)
    if wrong_variance is not None:
        return wrong_variance
    if not zero_biases:
        return Outcome(
            fraction=BIASES_NONZERO_PARTIAL,
            message="The weights have the right shapes and variances, but the biases are not "
            "all zero.",
            hint="Initialize every bias to zero: biases.append(np.zeros(n_out)).",
        )
    return Outcome(
        fraction=INIT_PARTIAL,
        message=(
            "The weights have the right shapes and variances (each layer within "
            f"{number(INIT_Z)} standard errors of 1/max(n_in, n_out)) and the biases are zero, but "
            "they are not the draws of default_rng(80085) in layer order."
        ),
        hint="Use rng = default_rng(80085) and draw the layers one after the other, first "
        "layer first, with rng.normal(..., size=(n_in, n_out)), and nothing else drawn between.",
    )


# -- q4.forward ----------------------------------------------------------------------------------


def _forward_variants(ctx: CheckContext) -> dict[str, ref.Params]:
    """Parameters a wrong forward pass effectively uses, to name the mistake."""
    injected = _injected(ctx)
    variants = {
        "a forward pass without the biases": ref.Params.of(
            injected.weights, [np.zeros_like(b) for b in injected.biases]
        )
    }
    for name, what in (("final", "trained"), ("init", "initial")):
        own, _ = _params(ctx.npz(name) or {})
        if own is not None:
            variants[f"your notebook's {what} weights instead of the global `weights`"] = own
    return variants


def _explain_forward(ctx: CheckContext, losses: np.ndarray, index: np.ndarray) -> str:
    samples, labels = ctx.inputs.arrays["samples"], ctx.inputs.arrays["labels"]
    for what, params in _forward_variants(ctx).items():
        expected = [ref.feed_forward_sample(params, samples[i], int(labels[i]))[0] for i in index]
        if _close(losses, np.array(expected), rtol=RTOL, atol=0.0):
            return f" Your losses match {what}."
    return ""


@check("q4.forward", "feed_forward_sample on the grader's weights")
def forward(ctx: CheckContext) -> Outcome:
    """Half for the losses, half for the one-hot guesses, per sample."""
    data = ctx.npz("forward")
    if data is None:
        return Outcome.failed(f"Could not be checked: {ctx.why_missing('feed_forward_sample')}")
    samples, labels = ctx.inputs.arrays["samples"], ctx.inputs.arrays["labels"]
    n = len(labels)
    index = data.get("index", np.arange(len(data.get("losses", []))))
    params = _injected(ctx)
    losses_ok = guesses_ok = 0
    problems: list[str] = []
    for row, i in enumerate(index.tolist()):
        loss, guess = ref.feed_forward_sample(params, samples[i], int(labels[i]))
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
                f"sample {i}: guess {_fmt(got_guess, 10)}, expected class {int(np.argmax(guess))}"
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


# -- q4.backprop_step ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StepSample:
    """One grader sample: what the probe recorded after train_one_sample, and the reference."""

    index: int
    before: ref.Params
    expected: ref.Params
    found: Mapping[str, np.ndarray]
    """``w0, b0, ...`` after the student's step, canonical layout; empty if the call failed."""


def _update_ok(found: np.ndarray | None, before: np.ndarray, expected: np.ndarray) -> bool:
    """Compare the *updates*: they are ~1e-4 of the weights, which would hide them."""
    if found is None or found.shape != before.shape or not np.all(np.isfinite(found)):
        return False
    want = expected - before
    scale = float(np.max(np.abs(want)))
    return bool(np.allclose(found - before, want, rtol=0.0, atol=UPDATE_RTOL * scale + 1e-15))


def _found(sample: StepSample, kind: str, layer: int) -> np.ndarray | None:
    value = sample.found.get(f"{kind[0]}{layer}")
    if value is None:
        return None
    return value.reshape(-1) if kind == "biases" else value


def _layer_ok(sample: StepSample, kind: str, layer: int) -> bool:
    before = (sample.before.weights if kind == "weights" else sample.before.biases)[layer]
    expected = (sample.expected.weights if kind == "weights" else sample.expected.biases)[layer]
    return _update_ok(_found(sample, kind, layer), before, expected)


def _step_samples(ctx: CheckContext, data: Mapping[str, np.ndarray]) -> list[StepSample]:
    arrays = ctx.inputs.arrays
    lr = float(ctx.inputs.values["learning_rate"])
    before = _injected(ctx)
    out = []
    for i, (x, y) in enumerate(zip(arrays["train_samples"], arrays["train_labels"], strict=True)):
        found = {k.split(".", 1)[1]: v for k, v in data.items() if k.startswith(f"s{i}.")}
        expected = ref.train_one_sample(before, x, int(y), lr)
        out.append(StepSample(index=i, before=before, expected=expected, found=found))
    return out


def _mistake_for(
    ctx: CheckContext, samples: Sequence[StepSample], wrong: Sequence[tuple[str, int]]
) -> diagnose.KnownMistake | None:
    """The known mistake whose updates match the student's on every wrong layer."""
    arrays, lr = ctx.inputs.arrays, float(ctx.inputs.values["learning_rate"])
    for mistake in diagnose.KNOWN_MISTAKES:
        variants = [
            StepSample(
                index=s.index,
                before=s.before,
                expected=mistake.update(
                    s.before,
                    arrays["train_samples"][s.index],
                    int(arrays["train_labels"][s.index]),
                    lr,
                ),
                found=s.found,
            )
            for s in samples
        ]
        if all(_layer_ok(v, kind, layer) for v in variants for kind, layer in wrong):
            return mistake
    return None


def _scale_of_update(samples: Sequence[StepSample], kind: str, layer: int) -> float | None:
    """c when the student's update is c times the reference's (sign, learning rate)."""
    s = samples[0]
    found = _found(s, kind, layer)
    before = (s.before.weights if kind == "weights" else s.before.biases)[layer]
    expected = (s.expected.weights if kind == "weights" else s.expected.biases)[layer]
    if found is None or found.shape != before.shape:
        return None
    want, got = (expected - before).reshape(-1), (found - before).reshape(-1)
    denom = float(want @ want)
    if denom == 0:
        return None
    c = float(want @ got) / denom
    tolerance = 1e-5 * max(abs(c), 1.0) * float(np.max(np.abs(want)))
    return c if np.allclose(got, c * want, rtol=0, atol=tolerance) else None


def _fd_evidence(
    ctx: CheckContext, sample: StepSample, kind: str, layer: int, points: Sequence[diagnose.FdPoint]
) -> str:
    """The largest checked coordinate of this layer: what the loss gradient says, what changed."""
    mine = [p for p in points if p.at.kind == kind and p.at.layer == layer]
    found = _found(sample, kind, layer)
    if (
        not mine
        or found is None
        or found.shape
        != (sample.before.weights if kind == "weights" else sample.before.biases)[layer].shape
    ):
        return ""
    point = max(mine, key=lambda p: abs(p.finite_difference))
    lr = float(ctx.inputs.values["learning_rate"])
    before = (sample.before.weights if kind == "weights" else sample.before.biases)[layer]
    got = float(found[point.at.index] - before[point.at.index])
    return (
        f"at {point.at} the loss gradient is {number(point.finite_difference)} (finite "
        f"differences), so the step should change it by -lr * gradient = "
        f"{number(-lr * point.finite_difference)}; yours changed it by {number(got)}"
    )


def _before(sample: StepSample, kind: str, layer: int) -> np.ndarray:
    return (sample.before.weights if kind == "weights" else sample.before.biases)[layer]


def _unchanged(sample: StepSample, wrong: Sequence[tuple[str, int]]) -> bool:
    return all(
        np.array_equal(found, _before(sample, kind, layer))
        for kind, layer in wrong
        if (found := _found(sample, kind, layer)) is not None
    )


def _describe_wrong_layers(
    ctx: CheckContext,
    samples: Sequence[StepSample],
    wrong: Sequence[tuple[str, int]],
    points: Sequence[diagnose.FdPoint],
) -> tuple[str, str]:
    names = ", ".join(f"{kind}[{layer}]" for kind, layer in wrong)
    first = next(s for s in samples if any(not _layer_ok(s, k, lay) for k, lay in wrong))
    if not first.found:
        reason = ctx.why_missing(f"train_one_sample[{first.index}]")
        return f"train_one_sample failed on grader sample {first.index}: {reason}", ""
    if _unchanged(first, wrong):
        return (
            f"{names} did not change after train_one_sample",
            "train_one_sample must update the global `weights` and `biases` in place "
            "(weights[i] -= learning_rate * gradient), or return the new (weights, biases).",
        )
    mistake = _mistake_for(ctx, samples, wrong)
    if mistake is not None:
        return f"The update of {names} {mistake.message}", mistake.hint
    kind, layer = wrong[0]
    scale = _scale_of_update(samples, kind, layer)
    if scale is not None and math.isclose(scale, -1.0, rel_tol=1e-3):
        return (
            f"The update of {names} has the wrong sign (gradient ascent)",
            "Update with parameter -= learning_rate * gradient.",
        )
    if scale is not None:
        lr = float(ctx.inputs.values["learning_rate"])
        return (
            f"The update of {names} is {number(scale)} times the expected one",
            f"Use the learning_rate argument (the grader passed {number(lr, 6)}) and no other "
            "factor.",
        )
    evidence = _fd_evidence(ctx, first, kind, layer, points)
    return (
        f"The update of {names} differs from -lr * the loss gradient"
        + (f": {evidence}" if evidence else ""),
        "Check the backward pass of the layers named: delta of the output layer = softmax "
        "output - one_hot(y); delta of a hidden layer = (delta_next @ W_next.T) * dsigmoid(z); "
        "gradient of W = outer(a_prev, delta), of b = delta.",
    )


@check("q4.backprop_step", "train_one_sample: one SGD step on the grader's weights")
def backprop_step(ctx: CheckContext) -> Outcome:
    """A third per layer, half for its weights and half for its biases, over all samples.

    The reference update is held to finite differences of the loss first, so "expected" below
    is -lr times the true gradient, not just another implementation's opinion.
    """
    arrays = ctx.inputs.arrays
    _, points = diagnose.verified_gradients(
        _injected(ctx), arrays["train_samples"][0], int(arrays["train_labels"][0])
    )
    data = ctx.npz("train_step") or {}
    samples = _step_samples(ctx, data)
    n_layers = len(LAYERS) - 1
    scores = {
        (kind, layer): all(_layer_ok(s, kind, layer) for s in samples)
        for layer in range(n_layers)
        for kind in ("weights", "biases")
    }
    fraction = sum(0.5 / n_layers for ok in scores.values() if ok)
    wrong = [key for key, ok in scores.items() if not ok]
    checked = (
        f"on {len(samples)} grader samples; the expected update is -lr * the loss gradient, "
        "confirmed by finite differences"
    )
    if not wrong:
        return Outcome.passed(f"Every layer's update is right ({checked}).")
    if not data:
        return Outcome.failed(f"Could not be checked: {ctx.why_missing('train_one_sample')}")
    message, hint = _describe_wrong_layers(ctx, samples, wrong, points)
    right = [f"{k}[{lay}]" for (k, lay), ok in scores.items() if ok]
    if right:
        message += f". Correct: {', '.join(right)}"
    return Outcome(fraction=fraction, message=message + f" ({checked}).", hint=hint)


# -- q4.final_accuracy ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Pixels:
    """The preprocessing a notebook trained on, as an affine map of the 0-255 pixel values.

    The network is measured on the grader's test images put through the same map, and held
    to the threshold calibrated for that kind of input: the course's starter code never
    divides by 255, and a correct backprop on raw pixels learns more slowly (saturated
    sigmoids), so it has its own calibrated threshold.
    """

    scale: float
    shift: float
    kind: str
    """``unit`` (x / 255), ``raw`` (0-255 as stored) or ``affine`` (another linear rescaling)."""
    words: str
    """How the report names it."""

    @property
    def threshold_key(self) -> str:
        raw = self.kind == "raw" or (self.kind == "affine" and 255 * self.scale + self.shift > 10)
        return "q4.min_test_accuracy_raw" if raw else "q4.min_test_accuracy"


UNIT_WORDS = "pixels divided by 255, as the assignment loads them"


def _pixels(ctx: CheckContext) -> tuple[Pixels, str]:
    """The notebook's pixel scale from the range of its training images, and a note when the
    grader had to assume the assignment's ``/ 255``."""
    unit = Pixels(scale=1 / 255, shift=0.0, kind="unit", words=UNIT_WORDS)
    info = ctx.json("input_scale")
    fields = info if isinstance(info, dict) else {}
    low, high, name = fields.get("min"), fields.get("max"), fields.get("name")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (low, high)):
        if info is None:
            why = ctx.why_missing("input_scale")
        elif "min" in fields:
            why = "their range is not finite"
        else:
            why = "no global array of shape (N, 784) or (N, 28, 28), such as `x_train`"
        return unit, f"The training images were not found ({why}): /255 assumed."
    assert isinstance(low, int | float) and isinstance(high, int | float)
    where = f"`{name}`" if isinstance(name, str) and name.isidentifier() else "the training images"
    if abs(low) <= 1e-3 and abs(high - 1.0) <= 1e-3:
        return unit, ""
    if abs(low) <= 1e-3 and abs(high - 255.0) <= 0.5:
        words = f"raw 0-255 pixels, as {where} holds them (never divided by 255)"
        return Pixels(scale=1.0, shift=0.0, kind="raw", words=words), ""
    if high <= low:
        return unit, f"{where} holds one value only ({number(low)}): /255 assumed."
    words = (
        f"pixels rescaled to [{number(low)}, {number(high)}], as {where} holds them "
        f"(the grader applies the same linear map to its test images)"
    )
    return Pixels(scale=(high - low) / 255.0, shift=float(low), kind="affine", words=words), ""


def _test_set(ctx: CheckContext, pixels: Pixels) -> tuple[np.ndarray, np.ndarray]:
    limit = ctx.profile.parameters_for("q4").get("TEST_LIMIT")
    with as_data_error():
        if pixels.kind in ("unit", "raw"):  # exactly as the notebook computes them
            return load_pixels(ctx.data_root, "MNIST", train=False, limit=limit, scale=pixels.kind)
        raw, labels = load_pixels(ctx.data_root, "MNIST", train=False, limit=limit, scale="raw")
        return raw.astype(np.float64) * pixels.scale + pixels.shift, labels


def _never_trained(ctx: CheckContext, final: ref.Params) -> bool:
    initial, _ = _params(ctx.npz("init") or {})
    return initial is not None and all(
        np.array_equal(a, b)
        for a, b in zip(
            (*initial.weights, *initial.biases), (*final.weights, *final.biases), strict=True
        )
    )


def _why_low(ctx: CheckContext, final: ref.Params) -> tuple[str, str]:
    """The likeliest cause of a low accuracy, as (sentence, hint)."""
    cause = _first_cell_error(ctx)
    if _never_trained(ctx, final):
        return (
            "Your final weights are exactly your initial weights: the network was never "
            f"trained{f' ({cause})' if cause else ''}.",
            "Run the training cell: EPOCHS epochs of train_one_epoch() over x_train, with the "
            "data read from DATA_ROOT.",
        )
    return (
        f"Note: {cause}." if cause else "",
        "Train for EPOCHS epochs with train_one_sample over the whole training set, in order; "
        "check q4.init and q4.backprop_step first.",
    )


@check("q4.final_accuracy", "The grader's own test accuracy of the trained weights")
def final_accuracy(ctx: CheckContext) -> Outcome:
    """Recomputed from the final weights on the real test set; printed numbers are never read.

    The threshold alone decides. Final weights equal to the initial ones only explain a
    failure: a notebook that initializes and trains in one cell has its snapshot taken after
    training, and must not fail for it.
    """
    if not ctx.has("final"):
        return Outcome.failed(f"Could not be checked: {ctx.why_missing('final_weights')}")
    params, problem = _params(ctx.npz("final") or {})
    if params is None:
        return Outcome.failed(
            f"Final weights: {problem}",
            hint="Keep the trained network in the global lists `weights` and `biases`.",
        )
    pixels, note = _pixels(ctx)
    x, y = _test_set(ctx, pixels)
    with np.errstate(all="ignore"):
        loss, correct = ref.evaluate_dataset(params, x, y)
    accuracy = correct / len(y)
    required = ctx.threshold(pixels.threshold_key)
    details = {
        "accuracy": accuracy,
        "correct": correct,
        "total": len(y),
        "mean_loss": loss,
        "pixels": pixels.kind,
        "threshold_key": pixels.threshold_key,
    }
    measured = (
        f"The grader's test accuracy of your final weights is {percent(accuracy)} "
        f"({correct} / {len(y)} test images, mean loss {number(loss)}) on {pixels.words}; at "
        f"least {percent(required)} is required for that input (profile {ctx.profile.name})."
    )
    if note:
        measured = f"{measured} {note}"
    if accuracy >= required:
        return Outcome.passed(measured, **details)
    why, hint = _why_low(ctx, params)
    return Outcome.failed(f"{measured} {why}".strip(), hint=hint, **details)


CHECKS = (helpers, init, forward, backprop_step, final_accuracy)
