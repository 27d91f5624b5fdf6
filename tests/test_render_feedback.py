"""The feedback renderers on a hand-built report: what each reader may see, and that student text
stays text, pages stay self-contained, charts show the grader's numbers, bytes stay the same.

No kernel: ``feedback_report.build_report`` writes the few artifacts the charts read.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import jinja2
import numpy as np
import pytest
from feedback_report import HOSTILE, TEST, TRAIN, build_report

from graders.config import Thresholds
from graders.models import GRADER_PROBABILITIES, GradeReport
from graders.render import plots
from graders.render.html import render_html
from graders.render.markdown import render_markdown
from graders.render.numbers import points
from graders.render.summary import report_lines
from graders.render.templating import environment
from graders.render.terminal import render_terminal, use_color
from graders.render.write import write_reports

DATA_URI = re.compile(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture
def built(tmp_path: Path) -> tuple[GradeReport, Path]:
    return build_report(tmp_path), tmp_path


def grade_text(report: GradeReport) -> str:
    """The grade a page shows: the automatic points and the TAs' (the built report has one
    free-response part scored), over both maxima."""
    total = points(report.score + report.manual_score)
    return f"{total} / {points(report.max_score + report.manual_max_score)}"


def total_text(html: str) -> str:
    found = re.search(r'id="total-score">([^<]*)<', html)
    assert found, "the page has no total score"
    return found.group(1)


def test_a_ta_sees_every_test_and_the_hidden_ones_are_marked(built):
    report, out = built
    html = render_html(report, out)
    assert "HIDDEN-MESSAGE" in html and "HIDDEN-HINT" in html
    assert re.search(r'id="q1.approx_converges".*?pill hidden', html, flags=re.S)
    assert total_text(html) == grade_text(report)


def test_a_student_sees_no_hidden_test_only_how_many_points_they_hold(built):
    report, out = built
    html = render_html(report, out, student_view=True)
    md = render_markdown(report, out, student_view=True).text
    for page in (html, md):
        assert "HIDDEN" not in page and "Secret convergence test" not in page
        assert "approx_converges" not in page
        assert "1 hidden test worth 2.5 points" in page
    # A question without a notebook (q2) ran no test, so none of its points is withheld.
    visible = [
        c
        for q in report.questions
        for c in q.checks
        if c.visibility.value == "visible" or q.question == "q2"
    ]
    score = sum(c.score for c in visible) + report.manual_score
    top = sum(c.max_score for c in visible) + report.manual_max_score
    want = f"{points(score)} / {points(top)}"
    assert total_text(html) == want != grade_text(report)


def test_a_grader_error_is_labelled_and_its_traceback_is_for_tas_only(built):
    report, out = built
    assert "grader error" in render_html(report, out)
    assert "KeyError: &#39;x&#39;" in render_html(report, out)  # the details' traceback
    student = render_html(report, out, student_view=True)
    assert "grader error" in student and "Traceback ..." not in student


def test_student_text_stays_text_in_html(built):
    report, out = built
    html = render_html(report, out)
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "student_&lt;b&gt;" in html  # the submission's name too
    assert "&lt;mismatch&gt;" in html  # and the cell error


def test_student_text_stays_text_in_markdown(built):
    report, out = built
    md = render_markdown(report, out).text
    prose = re.sub(r"(?ms)^(`{3,}).*?^\1\s*$", "", md)  # fenced blocks show text as it is
    assert "<script" not in prose and "&lt;script&gt;" in prose
    table_row = next(line for line in md.splitlines() if "q3.loss_histories" in line)
    assert table_row.count(" | ") == 2, "a pipe in a message must not open a table column"
    assert "\\|" in table_row
    # the cell excerpt holds a ``` line: its fence must be longer than any run inside it
    assert "````python\nx = model(batch)\n```\ny = x @ w\n````" in md
    assert "````text\nMy answer:" in md and "```\nnot a fence\n```\n````" in md, (
        "a free-response answer is a code block fenced longer than any fence inside it"
    )


def test_the_html_page_fetches_nothing_and_runs_nothing(built):
    report, out = built
    html = render_html(report, out)
    refs = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', html)
    assert refs, "the page should at least link its own sections and embed its charts"
    assert all(r.startswith(("#", "data:image/")) for r in refs), refs
    assert not re.search(r"<(script|link|iframe|object|embed)\b", html, flags=re.I)
    assert "url(" not in html and "@import" not in html
    assert not re.search(r"https?://", html), "no address at all, not even in a comment"


def test_every_render_is_byte_identical(built):
    report, out = built
    assert render_html(report, out) == render_html(report, out)
    first, second = render_markdown(report, out), render_markdown(report, out)
    assert first == second and first.images
    assert render_terminal(report, color=True) == render_terminal(report, color=True)


def test_charts_are_svg_without_a_date_or_an_address(built):
    report, out = built
    svgs = [base64.b64decode(s) for s in DATA_URI.findall(render_html(report, out))]
    assert len(svgs) == 2, "loss curves and sample probabilities"
    for svg in svgs:
        assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
        assert b"dc:date" not in svg and b"matplotlib.org" not in svg


def test_the_sample_bars_plot_the_graders_probabilities_not_the_notebooks(built):
    report, out = built
    run = report.run.question("q3")
    assert run is not None
    (result,) = [q for q in report.questions if q.question == "q3"]
    assert plots.sample_bars_chart(run, out) is None, "nothing the grader computed: no chart"
    chart = plots.sample_bars_chart(run, out, result.checks)
    assert chart is not None and isinstance(chart.plot, plots.SampleBars)
    (drawn,) = [
        c.details[GRADER_PROBABILITIES]
        for c in result.checks
        if c.details.get(GRADER_PROBABILITIES)
    ]
    assert chart.plot.indices == tuple(drawn["indices"]) == (3, 7)
    np.testing.assert_allclose(chart.plot.probabilities, drawn["rows"], rtol=1e-12)
    assert chart.plot.reported is not None
    np.testing.assert_allclose(chart.plot.reported, 0.1)  # the notebook's, drawn as ticks
    assert "5000" in chart.caption, "an index outside the test set is named, not dropped silently"


def test_loss_curves_keep_the_notebooks_values_and_say_where_they_are_not_finite(built):
    report, out = built
    run = report.run.question("q3")
    assert run is not None
    chart = plots.loss_curves_chart(run, out, band=None)
    assert chart is not None and isinstance(chart.plot, plots.LossCurves)
    np.testing.assert_array_equal(chart.plot.train, TRAIN)  # NaN stays a gap
    assert chart.plot.test == tuple(TEST)
    assert "not a finite number" in chart.caption and "no reference band" in chart.caption


def test_an_unreadable_artifact_gives_a_sentence_instead_of_a_chart(built):
    report, out = built
    (out / "artifacts/q3/histories.json").write_text("{not json", encoding="utf-8")
    run = report.run.question("q3")
    assert run is not None
    chart = plots.loss_curves_chart(run, out, band=None)
    assert chart is not None and chart.plot is None and "Could not be drawn" in chart.caption
    assert "Could not be drawn" in render_html(report, out)


def _thresholds(provenance: dict[str, object]) -> Thresholds:
    return Thresholds(source=Path("t.toml"), values={}, provenance={"cpu": provenance})


def test_the_reference_band_is_the_per_epoch_range_over_calibration_seeds():
    per_seed = {
        "train_loss_per_epoch": [[2.0, 1.0, 0.5], [2.2, 0.9, 0.6]],
        "test_loss_per_epoch": [[2.1, 1.1, 0.8], [2.3, 1.0, 0.7]],
    }
    bands = plots.reference_loss_bands(_thresholds({"q3.min_test_accuracy": per_seed}), "cpu")
    assert set(bands) == {"q3"}
    band = bands["q3"]
    assert band.seeds == 2
    assert band.train_low == (2.0, 0.9, 0.5) and band.train_high == (2.2, 1.0, 0.6)
    assert band.test_low == (2.1, 1.0, 0.7) and band.test_high == (2.3, 1.1, 0.8)
    assert set(plots.reference_loss_bands(_thresholds({"q4.x": per_seed}), "cpu")) == {"q4"}
    assert plots.reference_loss_bands(_thresholds({"q3.x": {"seeds": 5}}), "cpu") == {}
    assert plots.reference_loss_bands(_thresholds({"q3.x": per_seed}), "gpu") == {}
    assert plots.reference_loss_bands(None, "cpu") == {}


def test_a_band_is_drawn_and_named_in_the_caption(built):
    report, out = built
    band = plots.LossBand(
        train_low=(1.9, 1.0), train_high=(2.1, 1.2), test_low=(2.0, 1.1), test_high=(2.2, 1.3),
        seeds=5,
    )  # fmt: skip
    run = report.run.question("q3")
    assert run is not None
    with_band = plots.loss_curves_chart(run, out, band)
    without = plots.loss_curves_chart(run, out, None)
    assert with_band is not None and with_band.plot is not None
    assert without is not None and without.plot is not None
    assert "over 5 seeds" in with_band.caption
    assert plots.svg_bytes(with_band.plot) != plots.svg_bytes(without.plot)


def test_markdown_links_each_chart_to_an_svg_it_hands_back(built):
    """The Markdown page's images are the HTML page's own drawings, as files beside it."""
    report, out = built
    page = render_markdown(report, out)
    assert sorted(page.images) == [
        "feedback-q3-loss-curves.svg",
        "feedback-q3-sample-probabilities.svg",
    ]
    inline = [base64.b64decode(s) for s in DATA_URI.findall(render_html(report, out))]
    assert sorted(page.images.values()) == sorted(inline)
    for name, data in page.images.items():
        assert f"]({name})" in page.text
        assert data.startswith(b"<?xml") and b"<svg" in data


def test_write_reports_writes_the_pages_and_charts_and_leaves_no_temporary_file(built):
    report, out = built
    written = write_reports(report, out)
    names = {p.name for p in written}
    assert {"feedback.html", "feedback.md", "feedback-q3-loss-curves.svg"} <= names
    assert all(p.parent == out and p.is_file() for p in written)
    assert not list(out.glob(".*.tmp"))
    html = (out / "feedback.html").read_text(encoding="utf-8")
    assert total_text(html) == grade_text(report)
    again = write_reports(report, out)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written]


def test_the_summary_lines_name_each_question_with_its_score(built):
    report, _ = built
    lines = report_lines(report, verbose=True)
    assert lines[0].startswith(f"student_<b>: {grade_text(report)} points")
    assert "  q1 Step-activation networks: 1.5 / 4" in lines
    assert "  ! notes.txt: notes.txt is not a notebook" in lines
    assert "    [ERR ] test_accuracy works (0/2)" in lines
    assert "    [PASS] box_interior works (1.5/1.5)" in lines
    assert not any("\x1b[" in line for line in lines)
    assert "  results: " + str(report.run.output_dir / "result.json") in lines


def test_the_short_summary_is_a_line_per_question_and_per_test_not_passed(built):
    report, _ = built
    lines = report_lines(report)
    assert lines[0] == report_lines(report, verbose=True)[0]
    questions = [line for line in lines if re.match(r"  q\d ", line)]
    assert questions == [
        "  q1 Step-activation networks: 1.5 / 4, 1 of 2 tests passed",
        "  q2 Choosing the scale of initialization: 0 / 2, no notebook for q2: expected "
        "q2_initialization.ipynb; found: q1.ipynb, mlp.ipynb",
        "  q3 FashionMNIST multilayer perceptron: 0.5 / 4, 0 of 3 tests passed; cell errors",
    ]
    tests = [line for line in lines if line.startswith("    [")]
    not_passed = [c for q in report.questions for c in q.checks if c.status.value != "passed"]
    assert len(tests) == len(not_passed) - 2, "q2's tests are its one line"
    assert "    [ERR ] test_accuracy works (0/2): The grader could not evaluate" in "\n".join(tests)
    assert not any("[PASS]" in line or "hint:" in line or "profile" in line for line in lines)
    assert len(lines) < len(report_lines(report, verbose=True))


def test_colour_only_when_asked_for_and_no_color_wins():
    class Stream(io.StringIO):
        def __init__(self, tty: bool):
            super().__init__()
            self.tty = tty

        def isatty(self) -> bool:
            return self.tty

    tty, pipe = Stream(True), Stream(False)
    assert use_color(tty, {}) and not use_color(pipe, {})
    assert use_color(pipe, {"FORCE_COLOR": "1"})
    assert not use_color(tty, {"NO_COLOR": "1"})
    assert not use_color(pipe, {"NO_COLOR": "1", "FORCE_COLOR": "1"})
    assert not use_color(tty, {"TERM": "dumb"})
    assert use_color(tty, {"NO_COLOR": ""}), "an empty NO_COLOR does not count (no-color.org)"


def test_coloured_and_plain_summaries_differ_only_by_escapes(built):
    report, _ = built
    coloured = render_terminal(report, color=True)
    assert "\x1b[31m[FAIL]\x1b[0m" in coloured or "\x1b[33m[PART]\x1b[0m" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == render_terminal(report, color=False)


def test_templates_refuse_an_undefined_name_and_escape_only_html():
    env = environment()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ nope }}").render()
    assert env.autoescape("feedback.html.j2") and not env.autoescape("feedback.md.j2")  # type: ignore[operator]
    assert not env.autoescape("summary.txt.j2")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("value", "text"), [(2.0, "2"), (1.5, "1.5"), (1 / 3, "0.333"), (0.0, "0"), (-0.0001, "0")]
)
def test_points_read_as_a_student_reads_them(value: float, text: str):
    assert points(value) == text


def test_hostile_text_is_the_one_the_builder_planted():
    assert "<script>" in HOSTILE  # guards the escaping tests above against a harmless constant


def test_each_chart_is_drawn_once_for_both_pages(
    built: tuple[GradeReport, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The HTML page's data URI and the Markdown page's file come from one drawing of each."""
    report, out = built
    plots._drawn.cache_clear()
    drawn: list[type] = []
    original = plots.draw

    def counting(plot: plots.Plot) -> bytes:
        drawn.append(type(plot))
        return original(plot)

    monkeypatch.setattr(plots, "draw", counting)
    written = write_reports(report, out)
    assert sorted(t.__name__ for t in drawn) == ["LossCurves", "SampleBars"]
    charts = [p for p in written if p.suffix == ".svg"]
    assert len(charts) == 2 and all(p.read_bytes().startswith(b"<?xml") for p in charts)
