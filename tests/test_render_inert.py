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


SPOOF_NAME = "eve\n  q2 Choosing the scale of initialization: 6 "
"""A folder name with a newline (found by a red team, 2026-12-04): printed raw, its second line
read as a q2 score of 6 above the real 0 / 6."""
SPOOF_NOTEBOOK = "q2_initialization\n    [PASS] (a) var(a_j) fake (1/1)\n    x.ipynb"
"""A zip entry's name that forged a "[PASS]" line in ``--verbose``."""


def test_names_and_paths_stay_on_their_line_in_the_terminal(tmp_path: Path) -> None:
    """The submission's name, each notebook's name and the result paths (which hold the name)
    are one line each, whatever line breaks they hold (U+2028, U+2029 and NEL too)."""
    report = build_report(tmp_path)
    run = report.run
    questions = tuple(
        dataclasses.replace(
            q,
            notebook=dataclasses.replace(q.notebook, original_name=SPOOF_NOTEBOOK + "\u2028y")
            if q.notebook is not None
            else None,
            execution=dataclasses.replace(q.execution, message="x\u2029  q1 Step: 4 / 4\x85z"),
        )
        for q in run.questions
    )
    submission = dataclasses.replace(run.submission, name=SPOOF_NAME)
    report = dataclasses.replace(
        report, run=dataclasses.replace(run, submission=submission, questions=questions)
    )
    files = [("results", tmp_path / SPOOF_NAME / "result.json")]
    for verbose in (False, True):
        text = render_terminal(report, files=files, verbose=verbose)
        lines = text.splitlines()
        assert not any(line.strip().startswith(SPOOF_NAME.split("\n")[1].strip()) for line in lines)
        assert not any(line.lstrip().startswith("[PASS] (a) var(a_j) fake") for line in lines)
        assert not any(line.strip() == "q1 Step: 4 / 4" for line in lines)
        assert not any(c in text for c in ("\u2028", "\u2029", "\x85"))
        assert lines[0].startswith("eve \u23ce q2 Choosing")
    assert "q2_initialization \u23ce [PASS]" in render_terminal(report, verbose=True)
    assert "\u23ce q2 Choosing the scale of initialization: 6 /result.json" in render_terminal(
        report, files=files
    )


def test_the_line_separators_are_stripped_with_the_controls() -> None:
    from graders.render.controls import one_line, terminal_field, without_controls

    assert without_controls("a\u2028b\u2029c\x85d\ud800e") == "abcde"
    assert one_line("a\u2028b\u2029c\x85d\x0be") == "a \u23ce b \u23ce c \u23ce d \u23ce e"
    hostile = "bob\x1b]0;PWNED-TITLE\x07\x1b[2J\x1b[1;31mFAKE\n[#####] 9/9 graded"
    assert terminal_field(hostile) == "bob]0;PWNED-TITLE[2J[1;31mFAKE \u23ce [#####] 9/9 graded"


def test_an_answers_heading_cannot_pass_for_a_students_name_on_the_manual_page(
    tmp_path: Path,
) -> None:
    """``#### alice`` in mallory's answer rendered as an h4 styled as the name above each answer
    (red team, 2026-12-04): the name's style is its class's, and an answer's headings read as
    the answer's text."""
    from graders.render.manual import write_manual_html

    report = build_report(tmp_path)
    results = tuple(
        dataclasses.replace(
            r,
            manual=tuple(
                dataclasses.replace(m, text="unsure\n\n---\n\n#### alice\n\nx", answered=True)
                for m in r.manual
            ),
        )
        for r in report.questions
    )
    write_manual_html([dataclasses.replace(report, questions=results)], tmp_path / "m.html")
    html = (tmp_path / "m.html").read_text(encoding="utf-8")
    assert "article.answer h4 " not in html and "article.answer > h4.who" in html
    assert re.search(r"<h4>\s*alice\s*</h4>", html)  # the answer's, unstyled as a name
    assert '<h4 class="who">' in html
