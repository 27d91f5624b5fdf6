"""The reports' charts written as SVG text: a feedback page's losses per epoch and class
probabilities, a batch summary's score histograms and per-test counts.

They were matplotlib figures. Importing matplotlib and drawing Q3's two charts as SVG and PNG
took about 1.3 CPU-seconds of every Q3 grade, as much as the rest of the grader's own work, and
60 MB of its memory beside the student's kernel; the charts are a few dozen shapes. Written
here, the bytes depend on the data alone (no library version, no font file), so the same
numbers give the same file on every machine.

Text is SVG ``<text>`` in a sans-serif the viewer has; where the layout needs a text's width
(the class names' margin) it is estimated from its length. Coordinates are written to one
decimal, so the output is short and stable.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
FONT_SIZE = 11.0
CHAR_WIDTH = 0.62 * FONT_SIZE
"""An average character's width in ``FONT`` at ``FONT_SIZE`` (DejaVu Sans runs about 0.6 em)."""
INK, GRID, MUTED = "#222222", "#dddddd", "#9aa5b1"


def _n(value: float) -> str:
    """A coordinate: one decimal, no ``-0.0``, no trailing ``.0``."""
    text = f"{value:.1f}"
    text = text[:-2] if text.endswith(".0") else text
    return "0" if text == "-0" else text


def _text(x: float, y: float, words: str, *, anchor: str = "middle", extra: str = "") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}"{extra}>{html.escape(words)}</text>'
    )


def text_width(words: str) -> float:
    return len(words) * CHAR_WIDTH


@dataclass(frozen=True)
class Scale:
    """Data values ``low..high`` onto pixels ``start..end`` (``end < start`` for a y axis)."""

    low: float
    high: float
    start: float
    end: float

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)


def nice_step(span: float, most: int = 6) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten giving at most ``most`` ticks."""
    raw = span / max(most - 1, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for mantissa in (1.0, 2.0, 2.5, 5.0, 10.0):
        if mantissa * magnitude >= raw * (1 - 1e-9):
            return mantissa * magnitude
    return 10.0 * magnitude


def ticks(low: float, high: float, step: float) -> tuple[float, ...]:
    """The multiples of ``step`` within ``low..high`` (rounded, so 0.1 + 0.2 reads 0.3)."""
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return tuple(round(k * step, 12) for k in range(first, last + 1))


def tick_labels(values: Sequence[float]) -> tuple[str, ...]:
    """Labels that tell every tick apart: the fewest decimals (``0.35``, ``2``) where the
    values read well that way, else the fewest significant figures (``2e+29``, ``1.5e-07``)."""
    biggest = max((abs(v) for v in values), default=0.0)
    formats = [f".{d}f" for d in range(7)] if 1e-4 <= biggest < 1e6 else []
    formats += [f".{d}g" for d in range(1, 17)]
    step = min((abs(b - a) for a, b in itertools.pairwise(values)), default=1.0)
    close = max(1e-6 * step, 8 * math.ulp(biggest))  # a float holds no more than its ulp
    for spec in formats:
        labels = tuple(format(v, spec) for v in values)
        if all(abs(float(t) - v) <= close for t, v in zip(labels, values, strict=True)):
            break
    return tuple("0" if float(t) == 0 else t for t in labels)


LARGEST = 1e300
"""Values beyond this are drawn at it: a span of two such values would overflow a float."""


def clipped(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(min(max(v, -LARGEST), LARGEST) if math.isfinite(v) else math.nan for v in values)


def padded(values: Iterable[float]) -> tuple[float, float]:
    """A data range with 5 % of its span either side (a single value gets a span of its own)."""
    finite = [min(max(v, -LARGEST), LARGEST) for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    low, high = min(finite), max(finite)
    if high - low <= 1e-12 * max(1.0, abs(high)):
        half = max(abs(high) * 0.1, 0.5)
        return low - half, high + half
    margin = 0.05 * (high - low)
    return low - margin, high + margin


def _document(width: float, height: float, title: str, body: Sequence[str]) -> bytes:
    head = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}" height="{_n(height)}" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" role="img" font-family="{FONT}" '
        f'font-size="{_n(FONT_SIZE)}" fill="{INK}">\n'
        f"<title>{html.escape(title)}</title>\n"
        f'<rect width="{_n(width)}" height="{_n(height)}" fill="#ffffff"/>\n'
    )
    return (head + "\n".join(body) + "\n</svg>\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Lines per epoch


@dataclass(frozen=True, kw_only=True)
class Series:
    """One line of the chart: a value per epoch from 1, NaN where there is none (a gap)."""

    values: tuple[float, ...]
    colour: str
    label: str


@dataclass(frozen=True, kw_only=True)
class Band:
    """A shaded range per epoch from 1 (one epoch: a thick vertical bar, a band would not show)."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    colour: str
    label: str


LINE_SIZE = (600.0, 340.0)
_LINE_MARGIN = {"left": 64.0, "right": 16.0, "top": 14.0, "bottom": 44.0}


def _runs(values: Sequence[float]) -> list[list[tuple[int, float]]]:
    """Consecutive finite values as (epoch, value) runs: a NaN ends one."""
    runs: list[list[tuple[int, float]]] = [[]]
    for epoch, value in enumerate(values, start=1):
        if math.isfinite(value):
            runs[-1].append((epoch, value))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _legend(entries: Sequence[tuple[str, str, str]], right: float, top: float) -> list[str]:
    """Entries (kind ``line`` or ``band``, colour, label) in the upper right corner."""
    if not entries:
        return []
    width = max(text_width(label) for _, _, label in entries) + 34
    left, out = right - width - 6, ['<g class="legend">']
    for row, (kind, colour, label) in enumerate(entries):
        y = top + 14 + 16 * row
        if kind == "line":
            out.append(
                f'<line x1="{_n(left)}" y1="{_n(y)}" x2="{_n(left + 22)}" y2="{_n(y)}" '
                f'stroke="{colour}" stroke-width="1.5"/>'
                f'<circle cx="{_n(left + 11)}" cy="{_n(y)}" r="3" fill="{colour}"/>'
            )
        else:
            out.append(
                f'<rect x="{_n(left)}" y="{_n(y - 5)}" width="22" height="10" fill="{colour}" '
                'fill-opacity="0.15"/>'
            )
        out.append(_text(left + 28, y + 4, label, anchor="start"))
    out.append("</g>")
    return out


def line_chart(
    series: Sequence[Series],
    bands: Sequence[Band] = (),
    *,
    x_label: str,
    y_label: str,
    title: str,
) -> bytes:
    """Values per epoch as lines with a marker per epoch, over shaded bands; x ticks are whole
    epochs, y ticks round numbers; NaN or infinity leaves a gap, a value beyond ``LARGEST`` is
    drawn at it; the legend sits in the upper right."""
    series = [Series(values=clipped(s.values), colour=s.colour, label=s.label) for s in series]
    bands = [
        Band(low=clipped(b.low), high=clipped(b.high), colour=b.colour, label=b.label)
        for b in bands
    ]
    width, height = LINE_SIZE
    m = _LINE_MARGIN
    left, right, top, bottom = m["left"], width - m["right"], m["top"], height - m["bottom"]
    epochs = max([len(s.values) for s in series] + [len(b.low) for b in bands] + [1])
    x_low, x_high = (0.5, 1.5) if epochs == 1 else padded((1.0, float(epochs)))
    every = [v for s in series for v in s.values] + [v for b in bands for v in (*b.low, *b.high)]
    y_low, y_high = padded(every)
    x, y = Scale(x_low, x_high, left, right), Scale(y_low, y_high, bottom, top)
    x_ticks = ticks(x_low, x_high, max(1.0, math.ceil(nice_step(x_high - x_low))))
    y_ticks = ticks(y_low, y_high, nice_step(y_high - y_low))

    body = ['<g class="grid">']
    body += [
        f'<line x1="{_n(x(t))}" y1="{_n(top)}" x2="{_n(x(t))}" y2="{_n(bottom)}" stroke="{GRID}"/>'
        for t in x_ticks
    ]
    body += [
        f'<line x1="{_n(left)}" y1="{_n(y(t))}" x2="{_n(right)}" y2="{_n(y(t))}" stroke="{GRID}"/>'
        for t in y_ticks
    ]
    body.append("</g>")
    for band in bands:
        body.append(_band(band, x, y))
    for line in series:
        body += _line(line, x, y)
    body += _axes(left, right, top, bottom)
    body += _x_ticks(x_ticks, x, bottom)
    body += _y_ticks(y_ticks, y, left)
    body.append(_text((left + right) / 2, height - 8, x_label))
    mid = (top + bottom) / 2
    body.append(_text(14, mid, y_label, extra=f' transform="rotate(-90 14 {_n(mid)})"'))
    entries = [("line", s.colour, s.label) for s in series if s.values]
    entries += [("band", b.colour, b.label) for b in bands]
    body += _legend(entries, right, top)
    return _document(width, height, title, body)


def _axes(left: float, right: float, top: float, bottom: float) -> list[str]:
    return [
        f'<rect x="{_n(left)}" y="{_n(top)}" width="{_n(right - left)}" '
        f'height="{_n(bottom - top)}" fill="none" stroke="{INK}"/>'
    ]


def _x_ticks(values: Sequence[float], x: Scale, bottom: float) -> list[str]:
    return [
        f'<line x1="{_n(x(t))}" y1="{_n(bottom)}" x2="{_n(x(t))}" y2="{_n(bottom + 4)}" '
        f'stroke="{INK}"/>' + _text(x(t), bottom + 16, label)
        for t, label in zip(values, tick_labels(values), strict=True)
    ]


def _y_ticks(values: Sequence[float], y: Scale, left: float) -> list[str]:
    return [
        f'<line x1="{_n(left - 4)}" y1="{_n(y(t))}" x2="{_n(left)}" y2="{_n(y(t))}" '
        f'stroke="{INK}"/>' + _text(left - 7, y(t) + 4, label, anchor="end")
        for t, label in zip(values, tick_labels(values), strict=True)
    ]


def _band(band: Band, x: Scale, y: Scale) -> str:
    label = html.escape(band.label)
    if len(band.low) == 1:
        return (
            f'<line class="band" x1="{_n(x(1))}" y1="{_n(y(band.low[0]))}" x2="{_n(x(1))}" '
            f'y2="{_n(y(band.high[0]))}" stroke="{band.colour}" stroke-opacity="0.35" '
            f'stroke-width="6"><title>{label}</title></line>'
        )
    upper = [(x(e), y(v)) for e, v in enumerate(band.high, start=1)]
    lower = [(x(e), y(v)) for e, v in enumerate(band.low, start=1)]
    points = " ".join(f"{_n(px)},{_n(py)}" for px, py in upper + lower[::-1])
    return (
        f'<polygon class="band" points="{points}" fill="{band.colour}" fill-opacity="0.15">'
        f"<title>{label}</title></polygon>"
    )


def _line(line: Series, x: Scale, y: Scale) -> list[str]:
    out = [f'<g class="series" stroke="{line.colour}" fill="{line.colour}">']
    for run in _runs(line.values):
        points = " ".join(f"{_n(x(e))},{_n(y(v))}" for e, v in run)
        out.append(f'<polyline points="{points}" fill="none" stroke-width="1.5"/>')
        out += [f'<circle cx="{_n(x(e))}" cy="{_n(y(v))}" r="3"/>' for e, v in run]
    out.append("</g>")
    return out


# ---------------------------------------------------------------------------------------------
# Class probabilities, one panel per image


@dataclass(frozen=True, kw_only=True)
class Panel:
    """One image's probabilities per class, the highest one coloured; ``marks`` (the same
    length, or None) are drawn as black ticks across the bars."""

    title: tuple[str, ...]
    values: tuple[float, ...]
    marks: tuple[float, ...] | None = None


PANEL_WIDTH, PANEL_HEIGHT = 300.0, 340.0


def bar_panels(
    panels: Sequence[Panel], classes: Sequence[str], *, colour: str, title: str
) -> bytes:
    """Horizontal bars on a 0..1 axis, the first class on top; the class names once, left of
    the first panel (the panels share them)."""
    names = max((text_width(c) for c in classes), default=0.0) + 16
    width = names + PANEL_WIDTH * len(panels)
    top, bottom = 14 + 15 * max((len(p.title) for p in panels), default=1), PANEL_HEIGHT - 30
    row = (bottom - top) / max(len(classes), 1)
    body: list[str] = []
    for k, panel in enumerate(panels):
        left = names + PANEL_WIDTH * k + (0 if k == 0 else 12)
        right = names + PANEL_WIDTH * (k + 1) - 14
        body += _panel(panel, len(classes), Scale(0.0, 1.0, left, right), top, bottom, colour)
        for line, words in enumerate(panel.title):
            body.append(_text((left + right) / 2, 16 + 15 * line, words))
    body += [
        _text(names - 7, top + row * (c + 0.5) + 4, name, anchor="end")
        for c, name in enumerate(classes)
    ]
    return _document(width, PANEL_HEIGHT, title, body)


def _panel(panel: Panel, count: int, x: Scale, top: float, bottom: float, colour: str) -> list[str]:
    row = (bottom - top) / max(count, 1)
    best = max(range(len(panel.values)), key=lambda c: panel.values[c], default=-1)
    x_ticks = ticks(0.0, 1.0, 0.2)
    out = ['<g class="grid">']
    out += [
        f'<line x1="{_n(x(t))}" y1="{_n(top)}" x2="{_n(x(t))}" y2="{_n(bottom)}" stroke="{GRID}"/>'
        for t in x_ticks
    ]
    out.append('</g><g class="bars">')
    for c, value in enumerate(panel.values[:count]):
        share = min(max(value, 0.0), 1.0) if math.isfinite(value) else 0.0
        out.append(
            f'<rect x="{_n(x(0))}" y="{_n(top + row * (c + 0.1))}" '
            f'width="{_n(x(share) - x(0))}" height="{_n(row * 0.8)}" '
            f'fill="{colour if c == best else MUTED}"/>'
        )
    out.append("</g>")
    if panel.marks is not None:
        out.append('<g class="marks" stroke="#000000" stroke-width="1.5">')
        out += [
            f'<line x1="{_n(x(v))}" y1="{_n(top + row * (c + 0.05))}" x2="{_n(x(v))}" '
            f'y2="{_n(top + row * (c + 0.95))}"/>'
            for c, v in enumerate(panel.marks[:count])
            if math.isfinite(v) and 0.0 <= v <= 1.0
        ]
        out.append("</g>")
    out += _axes(x.start, x.end, top, bottom)
    out += _x_ticks(x_ticks, x, bottom)
    return out


# ---------------------------------------------------------------------------------------------
# A batch's scores: histograms side by side, stacked counts per test


@dataclass(frozen=True, kw_only=True)
class Histogram:
    """Counts of equal bins over ``low..high`` (``counts[0]`` starts at ``low``)."""

    title: str
    counts: tuple[int, ...]
    low: float
    high: float


HISTOGRAM_SIZE = (300.0, 260.0)


def histograms(panels: Sequence[Histogram], *, colour: str, x_label: str, title: str) -> bytes:
    """One histogram per panel, side by side, each on its own axes (counts up the side)."""
    width, height = HISTOGRAM_SIZE
    top, bottom = 30.0, height - 40
    body: list[str] = []
    for k, panel in enumerate(panels):
        left, right = width * k + 44, width * (k + 1) - 14
        tallest = max(panel.counts, default=0)
        y_high = float(max(tallest, 1)) * 1.05
        x = Scale(panel.low, panel.high, left, right)
        y = Scale(0.0, y_high, bottom, top)
        y_ticks = ticks(0.0, y_high, max(1.0, math.ceil(nice_step(y_high, most=5))))
        body += _y_ticks(y_ticks, y, left)
        bins = max(len(panel.counts), 1)
        edge = (panel.high - panel.low) / bins
        body.append('<g class="bins">')
        for b, count in enumerate(panel.counts):
            x0, x1 = x(panel.low + edge * b), x(panel.low + edge * (b + 1))
            body.append(
                f'<rect x="{_n(x0)}" y="{_n(y(count))}" width="{_n(x1 - x0)}" '
                f'height="{_n(y(0) - y(count))}" fill="{colour}"/>'
            )
        body.append("</g>")
        body.append(
            f'<path d="M{_n(left)} {_n(top)}V{_n(bottom)}H{_n(right)}" fill="none" stroke="{INK}"/>'
        )
        x_step = nice_step(panel.high - panel.low, most=5)
        body += _x_ticks(ticks(panel.low, panel.high, x_step), x, bottom)
        body.append(_text((left + right) / 2, 18, panel.title))
        body.append(_text((left + right) / 2, height - 8, x_label))
    return _document(width * max(len(panels), 1), height, title, body)


@dataclass(frozen=True, kw_only=True)
class Stack:
    """One part of every row's bar: a count per row, drawn after the parts before it."""

    label: str
    colour: str
    counts: tuple[int, ...]


def stacked_bars(
    rows: Sequence[str], stacks: Sequence[Stack], *, x_label: str, title: str
) -> bytes:
    """A horizontal bar per row (the first on top), its parts side by side in ``stacks``'
    order; the row names at the left, a legend of the parts under the axis."""
    names = max((text_width(r) for r in rows), default=0.0) + 16
    width, row = max(800.0, names + 400), 20.0
    left, right, top = names, width - 16, 10.0
    bottom = top + row * max(len(rows), 1)
    totals = [sum(s.counts[r] for s in stacks) for r in range(len(rows))]
    x_high = float(max(totals, default=0) or 1)
    x = Scale(0.0, x_high, left, right)
    x_ticks = ticks(0.0, x_high, max(1.0, math.ceil(nice_step(x_high))))
    body = ['<g class="grid">']
    body += [
        f'<line x1="{_n(x(t))}" y1="{_n(top)}" x2="{_n(x(t))}" y2="{_n(bottom)}" stroke="{GRID}"/>'
        for t in x_ticks
    ]
    body.append("</g>")
    for k, stack in enumerate(stacks):
        label = html.escape(stack.label)
        body.append(f'<g class="stack" fill="{stack.colour}"><title>{label}</title>')
        for r in range(len(rows)):
            start = sum(s.counts[r] for s in stacks[:k])
            if stack.counts[r]:
                body.append(
                    f'<rect x="{_n(x(start))}" y="{_n(top + row * (r + 0.1))}" '
                    f'width="{_n(x(start + stack.counts[r]) - x(start))}" '
                    f'height="{_n(row * 0.8)}"/>'
                )
        body.append("</g>")
    body += [
        _text(left - 7, top + row * (r + 0.5) + 4, name, anchor="end")
        for r, name in enumerate(rows)
    ]
    body += _axes(left, right, top, bottom)
    body += _x_ticks(x_ticks, x, bottom)
    body.append(_text((left + right) / 2, bottom + 32, x_label))
    legend_y, at = bottom + 52, left
    for stack in stacks:
        body.append(
            f'<rect x="{_n(at)}" y="{_n(legend_y - 9)}" width="12" height="10" '
            f'fill="{stack.colour}"/>' + _text(at + 17, legend_y, stack.label, anchor="start")
        )
        at += text_width(stack.label) + 40
    return _document(width, legend_y + 12, title, body)
