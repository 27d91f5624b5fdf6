"""Expectations computed ahead: on a thread of their own from ``prefetch``, read by ``get``.

The grader prefetches once the probe's inputs are drawn, so a simulation that needs only them
(Q2's unit-weight stacks) runs while the student's notebook does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from graders.config import load_profiles
from graders.models import ProbeInputs
from graders.questions.api import Argument, ExpectationContext, expectation
from graders.questions.expectations import LiveExpectations


def _context() -> ExpectationContext:
    return ExpectationContext(
        inputs=ProbeInputs(values={"n": 3}),
        data_root=Path("/nonexistent"),
        profile=load_profiles().get("quick"),
    )


def test_an_ahead_expectation_is_computed_on_another_thread_and_read_once() -> None:
    seen: list[str] = []
    release = threading.Event()

    @expectation("slow", ahead=True)
    def slow(ctx: ExpectationContext, _arguments: Mapping[str, Argument]) -> dict[str, np.ndarray]:
        seen.append(threading.current_thread().name)
        release.wait(10)
        return {"x": np.arange(int(ctx.inputs.values["n"]), dtype=float)}

    @expectation("lazy")
    def lazy(_ctx: ExpectationContext, _arguments: Mapping[str, Argument]) -> int:
        seen.append(threading.current_thread().name)
        return 7

    live = LiveExpectations((slow, lazy), _context())
    live.prefetch()
    live.prefetch()  # a second call starts nothing more
    release.set()
    value = live.get("slow", {})
    np.testing.assert_array_equal(value["x"], [0.0, 1.0, 2.0])
    assert not value["x"].flags.writeable
    assert live.get("slow", {}) is value
    assert live.get("lazy", {}) == 7
    assert seen == ["expectation slow", threading.current_thread().name]


def test_a_failure_ahead_is_raised_where_the_check_asks() -> None:
    @expectation("broken", ahead=True)
    def broken(_ctx: ExpectationContext, _arguments: Mapping[str, Argument]) -> int:
        raise ArithmeticError("no such number")

    live = LiveExpectations((broken,), _context())
    live.prefetch()
    with pytest.raises(ArithmeticError, match="no such number"):
        live.get("broken", {})
