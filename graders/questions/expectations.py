"""Expected values as plain data: computed live from a question's reference side (the grader).

An expectation is either a ``dict`` of numpy arrays or a JSON value, and reaches a check
read-only. The grader computes each one the first time a check of the question asks for it
(with those arguments) and keeps it for the other checks; the student kit reads the same values
back from the files ``dlgrade kit build`` wrote (``graders.kit.store``). Both go through
``plain``, so a check sees the same types either way: a tuple becomes a list, a float32 array
stays float32, and a value that could not be stored fails here, in the grader's own tests, not
in a student's kit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import numpy as np

from graders.errors import ConfigError
from graders.questions.api import Argument, ExpectationContext, ExpectationDef


def is_arrays(value: Any) -> bool:
    """A ``dict`` of numpy arrays (stored as ``.npz``), as opposed to a JSON value."""
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, np.ndarray) for k, v in value.items())
    )


def plain(name: str, value: Any) -> Any:
    """``value`` as the kit would read it back: arrays copied, JSON values round-tripped."""
    if is_arrays(value):
        return {k: np.array(v) for k, v in value.items()}
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"expectation {name!r} is neither a dict of arrays nor a JSON value: {exc}"
        ) from None


def frozen(value: Any) -> Any:
    """Arrays made read-only, so that one check cannot change what the next one reads."""
    if is_arrays(value):
        for array in value.values():
            array.flags.writeable = False
    return value


def argument_key(arguments: Mapping[str, Argument]) -> str:
    """One string per argument set (``{}`` for none), the same in the grader and the kit."""
    return json.dumps(dict(sorted(arguments.items())), sort_keys=True)


class LiveExpectations:
    """A question's expectations computed from its reference side for one run's inputs.

    ``prefetch`` computes the ``ahead`` ones on threads of their own, so that a simulation that
    needs only the inputs runs while the student's notebook does; a failure there is raised by
    ``get``, in the check that asked, as if it had been computed then.
    """

    def __init__(
        self, definitions: tuple[ExpectationDef, ...], context: ExpectationContext
    ) -> None:
        self._definitions = {d.name: d for d in definitions}
        self._context = context
        self._cache: dict[tuple[str, str], Any] = {}
        self._pending: dict[tuple[str, str], Future[Any]] = {}

    def prefetch(self) -> None:
        for definition in self._definitions.values():
            key = (definition.name, argument_key({}))
            if definition.ahead and key not in self._cache and key not in self._pending:
                future: Future[Any] = Future()
                self._pending[key] = future
                threading.Thread(
                    target=self._compute_into,
                    args=(definition, future),
                    name=f"expectation {definition.name}",
                    daemon=True,  # a grade that fails elsewhere does not wait for it
                ).start()

    def _compute_into(self, definition: ExpectationDef, future: Future[Any]) -> None:
        try:
            value = frozen(plain(definition.name, definition.compute(self._context, {})))
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(value)

    def get(self, name: str, arguments: Mapping[str, Argument]) -> Any | None:
        definition = self._definitions.get(name)
        if definition is None:
            known = ", ".join(sorted(self._definitions)) or "none"
            raise ConfigError(f"no expectation named {name!r} (known: {known})")
        key = (name, argument_key(arguments))
        if key in self._pending:
            self._cache[key] = self._pending.pop(key).result()
        if key not in self._cache:
            value = definition.compute(self._context, dict(arguments))
            self._cache[key] = frozen(plain(name, value))
        return self._cache[key]
