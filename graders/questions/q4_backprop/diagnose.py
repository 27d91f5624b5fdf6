"""Q4's yardsticks beside the reference: finite differences, and the known wrong answers.

The reference says what a correct update is; these say *why* a student's is not. Each known
mistake is recomputed on the grader's inputs, and a layer that matches one of them gets that
mistake named in the feedback instead of a bare "wrong". Finite differences of the reference's
own loss check the reference's gradients at a few coordinates per layer, so a feedback message
that quotes a loss gradient quotes one that does not depend on anybody's backprop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from graders.errors import ReferenceSolutionError
from graders.render.numbers import number
from reference import q4_numpy as ref

FloatArray = NDArray[np.float64]

FD_STEP = 1e-6
"""Central-difference step: truncation error ~ h^2 = 1e-12, cancellation ~ eps * loss / h ~ 1e-9."""
FD_RTOL = 1e-4
FD_ATOL = 1e-7
"""Loss gradients of one sample are 1e-5 .. 1e-1 here; both errors above are far below these."""


@dataclass(frozen=True, kw_only=True)
class Coordinate:
    """One parameter entry: ``weights[layer][index]`` or ``biases[layer][index]``."""

    kind: str
    """``"weights"`` or ``"biases"``."""
    layer: int
    index: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.kind}[{self.layer}][{', '.join(map(str, self.index))}]"


@dataclass(frozen=True, kw_only=True)
class FdPoint:
    """The reference's backprop gradient and the finite-difference one at one coordinate."""

    at: Coordinate
    backprop: float
    finite_difference: float


def loss_of(params: ref.Params, sample: FloatArray, label: int) -> float:
    return ref.feed_forward_sample(params, sample, label)[0]


def _perturbed(params: ref.Params, at: Coordinate, delta: float) -> ref.Params:
    copy = params.copy()
    target = (copy.weights if at.kind == "weights" else copy.biases)[at.layer]
    target[at.index] += delta
    return copy


def finite_difference(params: ref.Params, sample: FloatArray, label: int, at: Coordinate) -> float:
    up = loss_of(_perturbed(params, at, FD_STEP), sample, label)
    down = loss_of(_perturbed(params, at, -FD_STEP), sample, label)
    return (up - down) / (2 * FD_STEP)


def probe_coordinates(
    gradients: tuple[tuple[FloatArray, ...], tuple[FloatArray, ...]], per_kind: int = 2
) -> list[Coordinate]:
    """Per layer and kind: the largest gradient entry, then fixed pseudo-random nonzero ones.

    The largest is where a wrong backprop shows most; the others keep the check from looking
    only at one corner. Fixed seed: the same inputs always probe the same coordinates.
    """
    rng = np.random.default_rng(4)
    coords: list[Coordinate] = []
    for kind, grads in zip(("weights", "biases"), gradients, strict=True):
        for layer, grad in enumerate(grads):
            flat = np.abs(grad).reshape(-1)
            chosen = [int(np.argmax(flat))]
            nonzero = np.flatnonzero(flat > 0)
            if len(nonzero):
                chosen += [int(i) for i in rng.choice(nonzero, size=per_kind - 1)]
            for i in dict.fromkeys(chosen):
                index = tuple(int(j) for j in np.unravel_index(i, grad.shape))
                coords.append(Coordinate(kind=kind, layer=layer, index=index))
    return coords


def verified_gradients(
    params: ref.Params, sample: FloatArray, label: int
) -> tuple[tuple[tuple[FloatArray, ...], tuple[FloatArray, ...]], list[FdPoint]]:
    """The reference's gradients, held to finite differences; a mismatch is the grader's bug."""
    gradients = ref.gradients_one_sample(params, sample, label)
    points = []
    for at in probe_coordinates(gradients):
        grads = gradients[0] if at.kind == "weights" else gradients[1]
        backprop = float(grads[at.layer][at.index])
        fd = finite_difference(params, sample, label, at)
        points.append(FdPoint(at=at, backprop=backprop, finite_difference=fd))
        if not np.isclose(backprop, fd, rtol=FD_RTOL, atol=FD_ATOL):
            raise ReferenceSolutionError(
                f"the reference backprop gradient at {at} is {number(backprop, 7)}, finite "
                f"differences give {number(fd, 7)}: the reference Q4 gradients are wrong",
                question="q4",
            )
    return gradients, points


# -- known wrong backward passes --------------------------------------------------------------

Factor = Callable[[FloatArray], FloatArray]
"""What multiplies ``delta @ W.T`` at a hidden layer, given that layer's activation ``a``."""


def _correct(a: FloatArray) -> FloatArray:
    return a * (1 - a)  # = dsigmoid(z)


def _dsigmoid_of_activation(a: FloatArray) -> FloatArray:
    return ref.dsigmoid(a)  # sigmoid applied twice: the classic slip


def _no_derivative(a: FloatArray) -> FloatArray:
    return np.ones_like(a)


def update_with(
    params: ref.Params,
    sample: FloatArray,
    label: int,
    lr: float,
    factor: Factor = _correct,
    *,
    update_while_backpropagating: bool = False,
) -> ref.Params:
    """One SGD step with a given hidden-layer derivative; optionally updating each layer
    before the next delta is computed from it (the other classic slip)."""
    new = params.copy()
    acts = ref._activations(params, sample)
    delta = acts[-1].copy()
    delta[label] -= 1
    for k in range(len(params.weights) - 1, -1, -1):
        w_new, b_new = new.weights[k], new.biases[k]  # the tuple is frozen, the arrays are not
        w_before = w_new.copy()
        w_new -= np.outer(acts[k], delta) * lr
        b_new -= delta * lr
        if k:
            w = new.weights[k] if update_while_backpropagating else w_before
            delta = delta.dot(w.T) * factor(acts[k])
    return new


@dataclass(frozen=True, kw_only=True)
class KnownMistake:
    name: str
    message: str
    """Says what the student's update matches, for the layers it matches."""
    hint: str
    update: Callable[[ref.Params, FloatArray, int, float], ref.Params]


KNOWN_MISTAKES: tuple[KnownMistake, ...] = (
    KnownMistake(
        name="dsigmoid_on_activation",
        message=(
            "matches backprop with dsigmoid applied to the activation a = sigmoid(z) "
            "instead of the pre-activation z"
        ),
        hint=(
            "In the backward pass multiply by dsigmoid(z) at that layer's pre-activation z "
            "(keep the z values from the forward pass), or equivalently by a * (1 - a); "
            "dsigmoid(a) applies the sigmoid twice."
        ),
        update=lambda p, x, y, lr: update_with(p, x, y, lr, _dsigmoid_of_activation),
    ),
    KnownMistake(
        name="no_derivative",
        message="matches backprop without the sigmoid derivative dsigmoid(z) at the hidden layers",
        hint="Multiply delta.dot(W.T) by dsigmoid(z) at each hidden layer's pre-activation z.",
        update=lambda p, x, y, lr: update_with(p, x, y, lr, _no_derivative),
    ),
    KnownMistake(
        name="updated_before_backprop",
        message=("matches backprop that propagates delta through weights it has already updated"),
        hint=(
            "Compute every gradient first, with the weights as they were at the forward pass, "
            "and only then update the weights and biases."
        ),
        update=lambda p, x, y, lr: update_with(p, x, y, lr, update_while_backpropagating=True),
    ),
)
