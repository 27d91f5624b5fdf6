"""The feedback charts' SVG writer (graders/render/svg.py): read back as XML, every shape is
where its number puts it."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from graders.render import plots, svg

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(data: bytes) -> ET.Element:
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<svg ')
    return ET.fromstring(data)


def points(element: ET.Element) -> list[tuple[float, float]]:
    pairs = (p.split(",") for p in element.attrib["points"].split())
    return [(float(x), float(y)) for x, y in pairs]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{{{NS['s']}}}text")]


def line(values: tuple[float, ...], colour: str = "#123456") -> svg.Series:
    return svg.Series(values=values, colour=colour, label="train")


@pytest.mark.parametrize("seed", range(40))
def test_ticks_are_round_evenly_spaced_inside_the_range_and_labelled_apart(seed: int) -> None:
    rng = np.random.default_rng(seed)
    low = float(rng.normal() * 10.0 ** rng.integers(-8, 9))
    high = low + float(rng.uniform(0.01, 10.0) * 10.0 ** rng.integers(-8, 9))
    step = svg.nice_step(high - low)
    values = svg.ticks(low, high, step)
    assert 2 <= len(values) <= 6, (low, high, values)
    assert all(low - 1e-9 * abs(step) <= v <= high + 1e-9 * abs(step) for v in values)
    assert np.allclose(np.diff(values), step, rtol=1e-6)
    mantissa = step / 10.0 ** math.floor(math.log10(step))
    assert any(math.isclose(mantissa, m) for m in (1.0, 2.0, 2.5, 5.0))
    labels = svg.tick_labels(values)
    assert len(set(labels)) == len(labels), labels
    close = max(1e-6 * step, 8 * math.ulp(max(abs(v) for v in values)))
    assert all(abs(float(t) - v) <= close for t, v in zip(labels, values, strict=True))


def test_tick_labels_read_as_people_write_them() -> None:
    assert svg.tick_labels((0.35, 0.4, 0.45)) == ("0.35", "0.40", "0.45")
    assert svg.tick_labels((-0.5, 0.0, 0.5)) == ("-0.5", "0", "0.5")
    assert svg.tick_labels((1.0, 2.0, 3.0)) == ("1", "2", "3")
    assert svg.tick_labels((2e29, 4e29)) == ("2e+29", "4e+29")


def test_a_loss_chart_puts_each_epoch_where_its_value_says() -> None:
    train = (2.3, 1.1, 0.7, 0.5)
    root = parse(svg.line_chart([line(train)], x_label="epoch", y_label="loss", title="t"))
    (polyline,) = root.iterfind(".//s:polyline", NS)
    placed = points(polyline)
    circles = [
        (float(c.attrib["cx"]), float(c.attrib["cy"]))
        for c in root.iterfind(".//s:g[@class='series']/s:circle", NS)
    ]
    assert placed == circles, "one marker on each point of the line"
    xs, ys = zip(*placed, strict=True)
    assert np.allclose(np.diff(xs), xs[1] - xs[0], atol=0.11), "epochs evenly spaced"
    assert list(ys) == sorted(ys), "a lower loss is drawn lower (a larger y)"
    # the y axis is linear: equal steps of loss are equal steps of pixels
    per_unit = [(ys[k + 1] - ys[k]) / (train[k] - train[k + 1]) for k in range(3)]
    assert np.allclose(per_unit, per_unit[0], rtol=0.01)
    frame = root.find(".//s:rect[@fill='none']", NS)
    assert frame is not None
    left, top = float(frame.attrib["x"]), float(frame.attrib["y"])
    right, bottom = left + float(frame.attrib["width"]), top + float(frame.attrib["height"])
    assert all(left < x < right and top < y < bottom for x, y in placed)
    assert {"1", "2", "3", "4", "epoch", "loss", "train"} <= set(texts(root))


def test_a_value_that_is_not_finite_leaves_a_gap_and_huge_values_do_not_break_the_axis() -> None:
    values = (1.0, math.nan, 0.8, 0.7, math.inf, 0.5, 1e308, -1e308)
    root = parse(svg.line_chart([line(values)], x_label="e", y_label="l", title="t"))
    runs = [len(points(p)) for p in root.iterfind(".//s:polyline", NS)]
    assert runs == [1, 2, 3]
    assert len(root.findall(".//s:g[@class='series']/s:circle", NS)) == 6
    numbers = [
        float(v) for e in root.iter() for k, v in e.attrib.items() if k in ("x1", "y1", "cx", "cy")
    ]
    assert all(math.isfinite(v) for v in numbers)


def test_bands_are_shaded_between_their_low_and_high_and_one_epoch_is_a_bar() -> None:
    band = svg.Band(low=(1.0, 0.6, 0.4), high=(1.2, 0.8, 0.5), colour="#abcdef", label="range")
    root = parse(
        svg.line_chart([line((1.1, 0.7, 0.45))], [band], x_label="e", y_label="l", title="t")
    )
    (polygon,) = root.iterfind(".//s:polygon[@class='band']", NS)
    corners = points(polygon)
    assert len(corners) == 6
    upper, lower = corners[:3], corners[3:][::-1]
    assert [x for x, _ in upper] == [x for x, _ in lower]
    assert all(hy < ly for (_, hy), (_, ly) in zip(upper, lower, strict=True)), "high above low"
    (mid,) = root.iterfind(".//s:polyline", NS)
    assert all(
        hy <= y <= ly for (_, hy), (_, y), (_, ly) in zip(upper, points(mid), lower, strict=True)
    )
    assert "range" in texts(root)

    one = svg.Band(low=(2.1,), high=(2.3,), colour="#abcdef", label="range")
    root = parse(svg.line_chart([line((2.2,))], [one], x_label="e", y_label="l", title="t"))
    assert root.find(".//s:polygon", NS) is None
    (bar,) = root.iterfind(".//s:line[@class='band']", NS)
    assert bar.attrib["stroke-width"] == "6" and bar.attrib["x1"] == bar.attrib["x2"]
    assert float(bar.attrib["y1"]) > float(bar.attrib["y2"]), "low below high"


def test_bars_are_as_long_as_their_probability_the_highest_coloured_marks_where_reported() -> None:
    values = (0.05, 0.7, 0.25)
    panel = svg.Panel(title=("image 4", "predicted b"), values=values, marks=(0.0, 0.5, 1.0))
    zero = svg.Panel(title=("image 5",), values=(0.0, 1.0, 0.0))
    root = parse(svg.bar_panels([panel, zero], ("a", "b & <c>"), colour="#ff0000", title="t"))
    bars = root.findall(".//s:g[@class='bars']/s:rect", NS)
    assert len(bars) == 2 + 2, "one bar per class shown (two classes named, three values)"
    first = bars[:2]
    frames = root.findall(".//s:rect[@fill='none']", NS)
    axis = float(frames[0].attrib["width"])
    widths = [float(b.attrib["width"]) for b in first]
    assert np.allclose(widths, [v * axis for v in values[:2]], atol=0.11)
    assert [b.attrib["fill"] for b in first] == [svg.MUTED, "#ff0000"]
    marks = root.findall(".//s:g[@class='marks']/s:line", NS)
    assert [float(m.attrib["x1"]) for m in marks] == pytest.approx(
        [float(frames[0].attrib["x"]) + v * axis for v in (0.0, 0.5)], abs=0.11
    )
    assert "b & <c>" in texts(root), "class names are escaped, not markup"
    assert {"image 4", "predicted b", "image 5"} <= set(texts(root))


def test_the_same_data_gives_the_same_bytes_and_other_data_other_bytes() -> None:
    curves = plots.LossCurves(train=(0.9, 0.5), test=(0.8, 0.6))
    assert plots.draw(curves) == plots.draw(plots.LossCurves(train=(0.9, 0.5), test=(0.8, 0.6)))
    assert plots.draw(curves) != plots.draw(plots.LossCurves(train=(0.9, 0.4), test=(0.8, 0.6)))
    data = plots.draw(curves)
    assert b"Date" not in data and b"matplotlib" not in data


def test_a_long_history_keeps_few_whole_epoch_ticks() -> None:
    values = tuple(1.0 / (k + 1) for k in range(plots.MAX_EPOCHS_DRAWN))
    root = parse(svg.line_chart([line(values)], x_label="epoch", y_label="l", title="t"))
    ticks = [t for t in texts(root) if t.isdigit()]
    assert 2 <= len(ticks) <= 7 and all(int(t) % 100 == 0 for t in ticks), ticks


def test_a_histogram_bar_is_as_tall_as_its_count_and_a_full_score_falls_in_the_last_bin() -> None:
    from graders.batch.summary import _histogram

    panel = _histogram([0.0, 0.5, 0.5, 2.0, 2.0, 2.0], 2.0, "q1")
    assert panel.counts == (1, 2, 0, 3), "half-point bins; the full score is in the last one"
    root = parse(svg.histograms([panel, panel], colour="#3b6ea5", x_label="points", title="t"))
    bins = root.findall(".//s:g[@class='bins']/s:rect", NS)
    assert len(bins) == 8
    first = bins[:4]
    heights = [float(b.attrib["height"]) for b in first]
    assert np.allclose(np.array(heights) / heights[-1], np.array(panel.counts) / 3, atol=0.01)
    widths = [float(b.attrib["width"]) for b in first]
    assert np.allclose(widths, widths[0], atol=0.11)
    lefts = [float(b.attrib["x"]) for b in first]
    assert np.allclose(np.diff(lefts), widths[0], atol=0.11), "bins touch, in order"
    assert {"q1", "points", "0", "2"} <= set(texts(root))


def test_stacked_bars_put_each_rows_parts_end_to_end_in_order() -> None:
    stacks = [
        svg.Stack(label="passed", colour="#00aa00", counts=(3, 0)),
        svg.Stack(label="failed", colour="#aa0000", counts=(1, 4)),
    ]
    root = parse(svg.stacked_bars(["q1.a", "q1.<b>"], stacks, x_label="submissions", title="t"))
    passed, failed = root.findall(".//s:g[@class='stack']", NS)
    assert passed.attrib["fill"] == "#00aa00" and failed.attrib["fill"] == "#aa0000"
    (p0,) = passed.findall("s:rect", NS)  # a part of 0 draws nothing
    f0, f1 = failed.findall("s:rect", NS)
    assert math.isclose(
        float(p0.attrib["x"]) + float(p0.attrib["width"]), float(f0.attrib["x"]), abs_tol=0.11
    )
    assert float(f1.attrib["x"]) == float(p0.attrib["x"]), "a row with no pass starts at 0"
    unit = float(p0.attrib["width"]) / 3
    assert math.isclose(float(f1.attrib["width"]), 4 * unit, abs_tol=0.2)
    assert float(f0.attrib["y"]) < float(f1.attrib["y"]), "the first row on top"
    assert {"q1.a", "q1.<b>", "passed", "failed", "submissions"} <= set(texts(root))
