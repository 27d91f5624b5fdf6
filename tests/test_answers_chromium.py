"""Free-response answers in a real browser: formulas typeset as MathML, attacks inert.

The feedback page and the manual-grading page are loaded from file:// in headless Chromium
(``chromium_cdp``). A typeset fraction has its numerator above its denominator and is taller
than a line of text; the page logs nothing, requests nothing but itself, and no attack in the
answers runs a script (each would set ``window.pwned``), not even after its elements are
clicked. A screenshot is saved under the test's folder and its path printed, to look at.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from chromium_cdp import CHROMIUM, Page, browser
from feedback_report import build_report

from graders.models import GradeReport, ManualItem
from graders.render.html import render_html
from graders.render.manual import render_manual_html

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (`apt-get install -y chromium`)"
)

ANSWER = r"""**Derivation.** Each $a_j = \sum_i w_{ij} x_i$ sums $n_{in}$ terms, so

$$\mathrm{Var}(a_j) = n_{in}\,\sigma^2 v^2 \Rightarrow \sigma^2 = \frac{2}{n_{in} + n_{out}}$$

A formula that does not parse: $\frac{1}$.

Attacks: <img src=x onerror="window.pwned='img'"> <script>window.pwned='script'</script>
[click](javascript:window.pwned='link') [notes](https://example.invalid/notes) ![pixel](https://example.invalid/pixel.png)
$\href{javascript:window.pwned='href'}{x}$ $\text{<img src=x onerror="window.pwned='mtext'">}$
"""


def _with_answer(report: GradeReport, text: str) -> GradeReport:
    questions = tuple(
        dataclasses.replace(
            q,
            manual=tuple(
                dataclasses.replace(m, answered=True, text=text) if isinstance(m, ManualItem) else m
                for m in q.manual
            ),
        )
        for q in report.questions
    )
    return dataclasses.replace(report, questions=questions)


def _own_requests(page: Page, url: str) -> list[str]:
    """What the page fetched besides itself and its data: images (chrome:// is chromium's)."""
    return [r for r in page.requests if r != url and not r.startswith(("chrome://", "data:"))]


def _assert_typeset(page: Page) -> None:
    fraction = page.box("div.math.block mfrac")
    numerator = page.box("div.math.block mfrac > :first-child")
    denominator = page.box("div.math.block mfrac > :last-child")
    line = page.box("div.answer.md p strong")
    assert line["height"] > 0
    assert fraction["height"] > 1.3 * line["height"], (fraction, line)
    assert numerator["y"] + numerator["height"] <= denominator["y"] + 1, "not stacked"
    assert page.evaluate("document.querySelectorAll('div.answer.md math').length") >= 3
    source = page.evaluate("document.querySelector('code.tex-source').textContent")
    assert source == r"$\frac{1}$"


def _assert_nothing_ran(page: Page) -> None:
    clicked = page.evaluate(
        "(() => { const all = document.querySelectorAll('div.answer.md *');"
        " for (const e of all) e.dispatchEvent(new MouseEvent('click', {bubbles: true}));"
        " return all.length; })()"
    )
    assert clicked > 20
    page.click("div.answer.md span.url")
    assert page.evaluate("typeof window.pwned") == "undefined", page.evaluate("window.pwned")
    links_or_images = "document.querySelectorAll('div.answer.md a, div.answer.md img').length"
    assert page.evaluate(links_or_images) == 0
    assert page.evaluate("document.querySelectorAll('script').length") == 0


@pytest.mark.parametrize("which", ["feedback", "manual"])
def test_answers_render_as_math_and_stay_inert(which: str, tmp_path: Path) -> None:
    report = _with_answer(build_report(tmp_path / "result"), ANSWER)
    page_file = tmp_path / f"{which}.html"
    if which == "feedback":
        page_file.write_text(render_html(report, tmp_path / "result"), encoding="utf-8")
    else:
        page_file.write_text(render_manual_html([report]), encoding="utf-8")
    with browser(tmp_path) as page:
        page.open(page_file.as_uri())
        _assert_typeset(page)
        shot = page.screenshot(tmp_path / f"{which}-answers.png")
        print(f"\nscreenshot of the {which} page: {shot}")
        if which == "feedback":  # the manual page has its own script, tested with its form
            _assert_nothing_ran(page)
        assert page.console == [], page.console
        assert page.errors == [], page.errors
        assert _own_requests(page, page_file.as_uri()) == []
    assert shot.stat().st_size > 10_000


TRIP_PAGE = (
    "<!DOCTYPE html><html><body><p>trap</p>"
    '<img src="https://example.invalid/pixel.png">'
    "<script>console.error('trap-error'); window.pwned = 'trap'; undefined.x;</script>"
    "</body></html>"
)


def test_the_detectors_see_a_script_a_request_and_an_error(tmp_path: Path) -> None:
    """A page built to trip every assertion above trips them: none passes vacuously."""
    trip = tmp_path / "trip.html"
    trip.write_text(TRIP_PAGE, encoding="utf-8")
    with browser(tmp_path) as page:
        page.open(trip.as_uri())
        assert any("trap-error" in line for line in page.console), page.console
        assert page.errors, "an uncaught TypeError must be seen"
        assert _own_requests(page, trip.as_uri()) == ["https://example.invalid/pixel.png"]
        assert page.evaluate("window.pwned") == "trap"
