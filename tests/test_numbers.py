"""The one number formatter of every report (``graders.render.numbers``), and that the
renderers use it: a float's 17 digits never reach a page, whatever the field."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from feedback_report import MEASURED, build_report

from graders.render.html import render_html
from graders.render.markdown import render_markdown
from graders.render.numbers import (
    amount,
    data,
    fixed,
    number,
    numbers,
    percent,
    points,
    seconds,
)
from graders.render.templating import environment
from graders.render.view import feedback_view

LONG_FLOAT = re.compile(r"\d\.\d{6,}")
"""Seven or more digits after a point: a dumped float, not a formatted one."""


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5777825927734375, "1.578"),
        (0.513, "0.513"),
        (0.5130000000000001, "0.513"),
        (2.3027102574706078, "2.303"),
        (-0.9995240480084937, "-0.9995"),
        (1e-9, "1e-9"),
        (3.0517578125e-07, "3.052e-7"),
        (235146.00000000003, "2.351e5"),
        (1000.0, "1000"),
        (2.0, "2"),
        (-0.0, "0"),
        (-1e-30, "-1e-30"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-math.inf, "-inf"),
        (123456789, "123456789"),
        (np.int64(618), "618"),
        (np.float32(0.1), "0.1"),
    ],
)
def test_a_number_has_four_significant_figures_and_no_noise(value: float, text: str) -> None:
    assert number(value) == text


def test_more_digits_when_a_quantity_needs_them() -> None:
    assert number(2.933884297520661, 6) == "2.93388"
    assert number(1 / 300, 6) == "0.00333333"
    assert number(0.14170195072900799, 3) == "0.142"
    assert numbers([0.14170195072900799, 0.07093587396143791], 3) == "0.142, 0.0709"


@pytest.mark.parametrize(
    ("value", "text"), [(0.1234, "0.12"), (1.0, "1.00"), (-0.001, "0.00"), (-0.25, "-0.25")]
)
def test_fixed_decimals_line_up_and_never_read_minus_zero(value: float, text: str) -> None:
    assert fixed(value) == text


def test_percent_points_and_seconds() -> None:
    assert percent(0.618) == "61.8 %" and percent(0.47843) == "47.84 %"
    assert points(1 / 3) == "0.333" and points(2.0) == "2" and points(-0.0001) == "0"
    assert points(float("nan")) == "nan"
    assert seconds(12.46) == "12.5 s"
    assert amount(1.0000000001, "point") == "1 point" and amount(0.9999999999, "point") == "1 point"
    assert amount(2.5, "point") == "2.5 points" and amount(0, "test") == "0 tests"


def test_data_reads_as_json_with_every_float_rounded() -> None:
    value = {"b": [1.5777825927734375, 2, True, None], "a": {"x": "0.123456789"}}
    assert data(value) == '{"a": {"x": "0.123456789"}, "b": [1.578, 2, true, null]}'
    assert data(np.array([[0.11111111, 2.0]])) == "[[0.1111, 2]]"
    assert data(Path("a/b")) == '"a/b"'
    assert data(float("nan")) == "nan"


def test_every_template_filter_for_numbers_is_the_formatters() -> None:
    filters = environment().filters
    for name, function in {"number": number, "percent": percent, "points": points,
                           "amount": amount, "seconds": seconds, "data": data}.items():  # fmt: skip
        assert filters[name] is function


def test_details_and_parameters_are_formatted_not_dumped(tmp_path: Path) -> None:
    report = build_report(tmp_path)
    view = feedback_view(report, None)
    checks = {c.result.id: c for q in view.questions for c in q.checks}
    shown = dict(checks["q3.loss_histories"].details)
    assert shown["measured_loss"] == "1.578"
    assert shown["train_loss"] == "[2.303, 1.628]"
    assert shown["moments"] == '{"relu": [1.016, 0.9886], "tiny": 3.052e-7}'
    q3 = next(q for q in view.questions if q.id == "q3")
    assert dict(q3.parameters)["LEARNING_RATE"] == "0.01"
    assert MEASURED["measured_loss"] == 1.5777825927734375, "the input is the unrounded float"


def test_no_page_shows_a_float_with_more_than_six_decimals(tmp_path: Path) -> None:
    report = build_report(tmp_path)
    for page in (render_html(report, tmp_path), render_markdown(report, tmp_path).text):
        text = re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", page)
        assert not LONG_FLOAT.findall(text)
