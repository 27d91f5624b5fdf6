"""How every number on a report reads: one formatter, never a float's ``repr``.

A float from training (a loss, an accuracy, a Monte Carlo moment) carries 17 digits whose last
ones depend on the CPU's BLAS and oneDNN kernels. Dumped whole, a page differs from one kind of
processor to the next and its golden cannot hold; and no reader learns anything from the
twelfth digit of a loss. So reports, details tables and check messages show ``number``: 4
significant figures unless a quantity needs more (a value compared at a tight tolerance) or
another rule: points (3 decimals at most), seconds (one decimal), probabilities (fixed
decimals, so rows line up), percentages. Integers are shown whole, whatever their size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real

SIGNIFICANT = 4
"""Significant figures of a measured value: enough to compare, too few to show rounding noise."""


def _finite_or_word(value: float) -> str | None:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return None


def number(value: float, digits: int = SIGNIFICANT) -> str:
    """``value`` to ``digits`` significant figures, as short as it reads.

    ``0.513``, ``2.303``, ``1e-9``, ``1.235e4``: trailing zeros and the exponent's padding
    dropped, like ``%g``; an integer (Python's or numpy's) whole; ``nan`` and ``inf`` spelt out;
    never ``-0``, which would read as a negative value that rounded away.
    """
    if isinstance(value, Integral):
        return str(int(value))
    value = float(value)
    word = _finite_or_word(value)
    if word is not None:
        return word
    mantissa, _, exponent = f"{value:.{digits}g}".partition("e")
    text = f"{mantissa}e{int(exponent)}" if exponent else mantissa
    return "0" if text == "-0" else text


def numbers(values: Iterable[float], digits: int = SIGNIFICANT) -> str:
    """``0.142, 0.07094, 0.03549``: a sequence of measurements in prose."""
    return ", ".join(number(v, digits) for v in values)


def fixed(value: float, decimals: int = 2) -> str:
    """A value on a fixed scale (a probability, a row sum) to ``decimals`` places, so rows of
    them line up; ``-0.00`` reads ``0.00``."""
    value = float(value)
    word = _finite_or_word(value)
    if word is not None:
        return word
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def percent(fraction: float, digits: int = SIGNIFICANT) -> str:
    """A fraction as a percentage: ``0.618`` -> ``61.8 %``."""
    return f"{number(100 * float(fraction), digits)} %"


def points(value: float) -> str:
    """Points as a student reads them: ``2``, ``1.5``, ``0.333`` (never ``2.0`` or ``1e-05``).

    Scores are rounded to 3 decimals by the grader itself, so 3 decimals lose nothing.
    """
    word = _finite_or_word(float(value))
    if word is not None:
        return word
    text = f"{round(value, 3):.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def amount(value: float, word: str) -> str:
    """``1 point``, ``2.5 points``: the word agrees with the number as shown, not as stored,
    so 1.0000000001 points read "1 point" on every machine."""
    text = points(value)
    return f"{text} {word}" if text == "1" else f"{text} {word}s"


def seconds(value: float) -> str:
    """A duration: ``12.5 s``. Tenths are all a reader needs of a wall-clock time."""
    return f"{float(value):.1f} s"


def data(value: object) -> str:
    """A plain value (a check's details, an injected parameter) as JSON reads, floats through
    ``number``: ``{"loss": 1.578, "shape": [784, 32]}``. Keys sorted, so the same value gives
    the same text; anything else (a path, an array) is shown as its text or its list."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return number(float(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        items = sorted(value.items(), key=lambda kv: str(kv[0]))
        return "{" + ", ".join(f"{json.dumps(str(k))}: {data(v)}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(data(v) for v in value) + "]"
    tolist = getattr(value, "tolist", None)  # a numpy array or scalar, if one got this far
    if callable(tolist):
        return data(tolist())
    return json.dumps(str(value))
