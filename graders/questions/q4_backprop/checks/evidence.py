"""What ``q4.backprop_step`` says about a wrong update besides "wrong": its words and evidence.

Finite-difference points (the loss gradient at a few coordinates, which no backprop produced)
and the known wrong backward passes, by name, with what the feedback says when a student's
update matches one. The numbers behind both come from the reference side
(``diagnose.py``) as expected values: ``fd_points`` and ``mistake_steps``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


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

    def plain(self) -> dict[str, Any]:
        """As JSON, the way the expected value ``fd_points`` holds it."""
        return {
            "kind": self.at.kind,
            "layer": self.at.layer,
            "index": list(self.at.index),
            "backprop": self.backprop,
            "finite_difference": self.finite_difference,
        }

    @classmethod
    def from_plain(cls, value: Any) -> FdPoint:
        return cls(
            at=Coordinate(
                kind=str(value["kind"]),
                layer=int(value["layer"]),
                index=tuple(int(i) for i in value["index"]),
            ),
            backprop=float(value["backprop"]),
            finite_difference=float(value["finite_difference"]),
        )


def fd_points(value: Sequence[Any]) -> list[FdPoint]:
    return [FdPoint.from_plain(v) for v in value]


@dataclass(frozen=True, kw_only=True)
class KnownMistake:
    name: str
    """Its key in the expected value ``mistake_steps`` (``<name>.s<i>.w<k>``)."""
    message: str
    """Says what the student's update matches, for the layers it matches."""
    hint: str


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
    ),
    KnownMistake(
        name="no_derivative",
        message="matches backprop without the sigmoid derivative dsigmoid(z) at the hidden layers",
        hint="Multiply delta.dot(W.T) by dsigmoid(z) at each hidden layer's pre-activation z.",
    ),
    KnownMistake(
        name="updated_before_backprop",
        message=("matches backprop that propagates delta through weights it has already updated"),
        hint=(
            "Compute every gradient first, with the weights as they were at the forward pass, "
            "and only then update the weights and biases."
        ),
    ),
)
