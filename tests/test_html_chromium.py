"""The HTML feedback page in a real browser: Debian's chromium, headless, loading it from file://.

It must load without a single console message (the page runs no script, so any message is an
error), make no network request of its own, show the right total in the DOM, keep student text
as text there too, and render to a screenshot that is not blank. The console and network
detectors are first run on a page built to trip them, so a chromium whose log format changed
fails this test instead of passing it vacuously.

scripts/test.sh installs chromium (``apt-get install -y chromium``); without it this is skipped.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from chromium_cdp import CHROMIUM
from chromium_cdp import HEADLESS as FLAGS
from feedback_report import build_report

from graders.render.html import render_html
from graders.render.numbers import points

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (`apt-get install -y chromium`)"
)

TRIP_PAGE = (
    "<!DOCTYPE html><html><body><p>trap</p>"
    '<img src="http://example.invalid/pixel.png">'
    '<script>console.error("trap-error")</script></body></html>'
)


def chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    command = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"chromium failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return done


def load(page: Path, tmp: Path) -> tuple[str, list[str], list[str]]:
    """The page's DOM after load, its console messages, and the URLs it requested itself."""
    netlog = tmp / f"{page.stem}-netlog.json"
    done = chromium(
        page, tmp, "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", "--dump-dom"
    )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console, page_requests(netlog)


def page_requests(netlog: Path) -> list[str]:
    """URLs whose requests the page (a file:// document) started; chromium's own are not."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return sorted(
        {
            e["params"]["url"]
            for e in log["events"]
            if e["type"] == start
            and str(e.get("params", {}).get("network_isolation_key", "")).startswith("file://")
        }
    )


@pytest.fixture(scope="module")
def detectors_work(tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("trip")
    page = tmp / "trip.html"
    page.write_text(TRIP_PAGE, encoding="utf-8")
    _dom, console, requests = load(page, tmp)
    assert any("trap-error" in line for line in console), "console detector saw nothing"
    assert "http://example.invalid/pixel.png" in requests, "network detector saw nothing"


@pytest.mark.parametrize("student_view", [False, True], ids=["ta", "student"])
def test_the_page_loads_cleanly_and_shows_the_right_total(
    detectors_work: None, tmp_path: Path, student_view: bool
) -> None:
    report = build_report(tmp_path / "result")
    html = render_html(report, tmp_path / "result", student_view=student_view)
    page = tmp_path / "result" / "feedback.html"
    page.write_text(html, encoding="utf-8")
    dom, console, requests = load(page, tmp_path)
    assert console == [], console
    assert requests == [], requests
    total = re.search(r'id="total-score">([^<]*)<', dom)
    assert total, "no total score in the DOM"
    hidden = [  # a question without a notebook withholds nothing: no test of it ran
        c
        for q in report.questions
        for c in q.checks
        if c.visibility.value != "visible" and not report.run.question(q.question).missing
    ]
    score = report.score - (sum(c.score for c in hidden) if student_view else 0)
    max_score = report.max_score - (sum(c.max_score for c in hidden) if student_view else 0)
    score, max_score = score + report.manual_score, max_score + report.manual_max_score
    assert report.manual_score > 0, "the built report has a free-response part scored by a TA"
    assert total.group(1) == f"{points(score)} / {points(max_score)}"
    assert "<script" not in dom and "&lt;script&gt;" in dom, "student text became markup"
    assert len(re.findall(r'<img src="data:image/svg\+xml;base64,', dom)) == 2


@pytest.mark.slow
def test_the_page_renders_to_a_readable_screenshot(detectors_work: None, tmp_path: Path) -> None:
    from PIL import Image

    report = build_report(tmp_path / "result")
    page = tmp_path / "result" / "feedback.html"
    page.write_text(render_html(report, tmp_path / "result"), encoding="utf-8")
    shot = tmp_path / "feedback.png"
    chromium(page, tmp_path, "--window-size=1100,2600", f"--screenshot={shot}")
    with Image.open(shot) as image:
        assert image.size == (1100, 2600)
        pixels = np.asarray(image.convert("RGB"), dtype=np.int64)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 200, "the screenshot is (nearly) blank"
    ink = int((pixels.sum(axis=2) < 200).sum())
    assert ink > 5000, "hardly any dark text was drawn"


def test_the_batch_summary_loads_cleanly_with_a_class_that_shares_its_solution(
    detectors_work: None, tmp_path: Path
) -> None:
    """The TA's summary page of a batch in which forty students share one answer (780 pairs):
    no console message, no request, the two score plots, and only the most similar pairs side
    by side, with the count of all of them."""
    import itertools

    from graders.batch.similarity import PAIRS_SHOWN, SimilarPair
    from graders.batch.summary import summary_view, write_summary_html

    report = build_report(tmp_path / "result")
    names = [f"student{i:02d}" for i in range(40)]
    pairs = [
        SimilarPair(
            question="q3",
            first=a,
            second=b,
            similarity=0.95,
            first_code="model = nn.Sequential(nn.Linear(784, 128), nn.ReLU())",
            second_code="net = nn.Sequential(nn.Linear(784, 128), nn.ReLU())",
            shared_lines=("v0 = nn.Sequential(nn.Linear(784, 128), nn.ReLU())",),
        )
        for a, b in itertools.combinations(names, 2)
    ]
    page = tmp_path / "summary.html"
    write_summary_html(summary_view([], [report], [], pairs, 0.8), page)
    dom, console, requests = load(page, tmp_path)
    assert console == [], console
    assert requests == [], requests
    assert len(re.findall(r'<img [^>]*src="data:image/svg\+xml;base64,', dom)) == 2
    assert dom.count("<h3>q3: ") == PAIRS_SHOWN
    assert re.search(r'<td>q3</td><td class="num">780</td><td class="num">25</td>', dom)
