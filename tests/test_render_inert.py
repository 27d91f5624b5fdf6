"""Reports are inert: whatever a student puts in a name, an exception or an answer, the terminal,
Markdown and HTML show it as text.

The hand-built report (``feedback_report.py``) gets hostile strings in every student-controlled
field: the submission's and the notebook's names, a load problem's path, an exception's class
name (ANSI escapes that would redraw a terminal line as "6 / 6 points") and message, a probe
step's name, and a free-response answer full of links, images, headings and HTML.
"""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

from feedback_report import build_report

from graders.models import CellError, GradeReport, LoadProblem, ProbeStepError
from graders.render.html import render_html
from graders.render.markdown import render_markdown
from graders.render.templating import md_code, md_text
from graders.render.terminal import render_terminal

REDRAW = "\x1b[2K\r\x1b[1A\x1b[32m6 / 6 points\x1b[0m"
LINK = "[click me](http://evil.example/steal)"
IMAGE = "![tracker](http://evil.example/pixel.png)"
ANSWER = f"# Big heading\n\n{LINK} and {IMAGE}\n<script>alert(1)</script>\nsee https://evil.example"


def _hostile(report: GradeReport) -> GradeReport:
    """``report`` with hostile text in every field a student controls."""
    run = report.run
    submission = dataclasses.replace(
        run.submission,
        name=f"student{REDRAW}",
        problems=(LoadProblem(message=f"{LINK} is not a notebook", path=f"a`b{REDRAW}.ipynb"),),
    )
    questions = []
    for q in run.questions:
        execution = dataclasses.replace(
            q.execution,
            cell_errors=(
                CellError(
                    cell_index=1,
                    ename=REDRAW,
                    evalue=f"{IMAGE} {REDRAW}",
                    source_excerpt="raise Boom",
                    traceback=f"Traceback\n{REDRAW}",
                ),
            ),
            message=f"Cell 1 raised {REDRAW}",
        )
        probe = dataclasses.replace(
            q.probe,
            errors=(ProbeStepError(step=f"junk`{REDRAW}", kind="bad_value", message=LINK),),
        )
        questions.append(dataclasses.replace(q, execution=execution, probe=probe))
    new_run = dataclasses.replace(run, submission=submission, questions=tuple(questions))
    results = tuple(
        dataclasses.replace(
            r, manual=tuple(dataclasses.replace(m, text=ANSWER, answered=True) for m in r.manual)
        )
        for r in report.questions
    )
    return dataclasses.replace(report, run=new_run, questions=results)


def test_the_terminal_summary_prints_no_control_character_of_the_students(
    tmp_path: Path,
) -> None:
    report = _hostile(build_report(tmp_path))
    plain = render_terminal(report, color=False) + render_terminal(report, verbose=True)
    assert "\x1b" not in plain and "\r" not in plain
    coloured = render_terminal(report, color=True) + render_terminal(
        report, color=True, verbose=True
    )
    codes = set(re.findall(r"\x1b\[[0-9;]*[A-Za-z]", coloured))
    ours = {"\x1b[1m", "\x1b[2m", "\x1b[0m", "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[35m"}
    assert codes <= ours
    assert "\x1b[2K" not in coloured and "\x1b[1A" not in coloured and "\r" not in coloured


def _outside_fences(markdown: str) -> str:
    """The Markdown with fenced blocks (inert by construction) removed."""
    return re.sub(r"(?ms)^(`{3,}).*?^\1\s*$", "", markdown)


def test_markdown_has_no_live_link_image_heading_or_html_from_the_student(tmp_path: Path) -> None:
    report = _hostile(build_report(tmp_path))
    text = render_markdown(report, tmp_path).text
    prose = _outside_fences(text)
    assert "\x1b" not in text
    assert not re.search(r"(?<!\\)\[click me", prose), "a live link"
    # the grader's own charts are the only images: local files it wrote beside the page
    assert not re.search(r"(?<!\\)!\[[^\]]*\]\((?!feedback-)", prose), "a live image"
    assert "# Big heading" not in prose, "the answer's heading left its code block"
    assert "https://evil" not in prose and "http://evil" not in prose, "a bare link"
    assert "<script>" not in prose


def _html_elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    found: list[tuple[str, dict[str, str | None]]] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.append((tag, dict(attrs)))

    Collect().feed(html)
    return found


def test_html_has_no_element_or_remote_reference_from_the_student(tmp_path: Path) -> None:
    report = _hostile(build_report(tmp_path))
    for student_view in (False, True):
        html = render_html(report, tmp_path, student_view=student_view)
        elements = _html_elements(html)
        assert "script" not in {tag for tag, _ in elements}
        remote = [
            (tag, attrs)
            for tag, attrs in elements
            for key in ("href", "src")
            if (attrs.get(key) or "").startswith(("http:", "https:", "//", "javascript:"))
        ]
        assert remote == []
        assert "\x1b" not in html


def test_markdown_escaping_keeps_the_text_and_kills_the_syntax() -> None:
    assert md_text("a_b *c* [d](e) ![f](g) `h` <i> |") == (
        "a_b *c* \\[d\\](e) !\\[f\\](g) \\`h\\` &lt;i&gt; \\|"
    )
    assert md_text("x\n# heading\n- item\n1. first\n***") == (
        "x\n\\# heading\n\\- item\n1\\. first\n\\***"
    )
    assert md_text("see www.evil.example") == "see www\u2060.evil.example"
    assert md_code("a`b") == "``a`b``" and md_code("`x`") == "`` `x` ``"


def test_a_message_cannot_print_lines_that_look_like_the_graders(tmp_path: Path) -> None:
    """An exception text holding line breaks and "[PASS]" lines, and direction controls: the
    summary keeps each field on its one line, and shows no direction control at all."""
    spoof = "boom\n    [PASS] Secret convergence test (2.5/2.5)\n  q1 Step: 4 / 4\u202e"
    report = _hostile(build_report(tmp_path))
    run = report.run
    questions = tuple(
        dataclasses.replace(q, execution=dataclasses.replace(q.execution, message=spoof))
        for q in run.questions
    )
    report = dataclasses.replace(report, run=dataclasses.replace(run, questions=questions))
    for verbose in (False, True):
        lines = render_terminal(report, color=False, verbose=verbose).splitlines()
        assert not any(line.lstrip().startswith("[PASS] Secret") for line in lines)
        assert not any(line.strip() == "q1 Step: 4 / 4" for line in lines)
        assert "\u202e" not in "\n".join(lines)
    assert "boom \u23ce" in render_terminal(report, verbose=True), "the message was printed"
    for fmt in (render_markdown(report, tmp_path).text, render_html(report, tmp_path)):
        assert "\u202e" not in fmt
