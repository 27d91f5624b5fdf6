"""Free-response answers as HTML: Markdown and formulas rendered, everything hostile left inert.

The answers are written by students, so every test here is an attack or a formula, asserted
on the HTML that the feedback and manual-grading pages place as it is. The browser's view of
the same HTML is in ``test_answers_chromium``.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

import pytest
from markdown_it import MarkdownIt

from graders.render import answers
from graders.render.answers import MAX_ANSWER_CHARS, MAX_FORMULAS, answer_html
from graders.render.mathml import latex_to_mathml

XAVIER = r"$\sigma^2 = \frac{2}{n_{in} + n_{out}}$"

_TAG = re.compile(r"<\s*([a-zA-Z][\w:-]*)([^>]*)>")
ALLOWED_TAGS = {
    # what markdown-it writes for CommonMark, tables and strikethrough
    *("div", "p", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "hr", "br"),
    *("h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "s"),
    "span",
    # the MathML allow-list
    *("math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msqrt", "mroot", "mfrac"),
    *("msub", "msup", "msubsup", "munder", "mover", "munderover", "mstyle", "mpadded"),
    *("mphantom", "menclose", "mtable", "mtr", "mtd", "mmultiscripts", "mprescripts", "none"),
}


def tags(fragment: str) -> list[tuple[str, str]]:
    """Every opening tag of the fragment with its attribute text."""
    return [(m.group(1).lower(), m.group(2)) for m in _TAG.finditer(fragment)]


def assert_inert(fragment: str) -> None:
    """Only allowed elements, no event handler, no link, no style, no URL attribute."""
    for tag, attributes in tags(fragment):
        assert tag in ALLOWED_TAGS, f"<{tag}> in {fragment[:300]!r}"
        assert not re.search(r"\bon\w+\s*=", attributes), attributes
        assert not re.search(r"\b(href|src|style|xlink:\w+|action|formaction)\s*=", attributes)
        assert "javascript:" not in attributes.lower()


def test_markdown_and_a_formula_render() -> None:
    out = str(answer_html(f"**Why:** the rule is {XAVIER}, so\n\n- forward\n- backward"))
    assert "<strong>Why:</strong>" in out
    assert "<li>forward</li>" in out
    math = re.search(r'<math display="inline">.*?</math>', out)
    assert math, out
    parsed = ET.fromstring(math.group())
    fraction = parsed.find(".//mfrac")
    assert fraction is not None and len(fraction) == 2
    assert "".join(fraction[0].itertext()) == "2"
    assert "".join(fraction[1].itertext()) == "nin+nout"
    assert_inert(out)


def test_display_math_is_a_block() -> None:
    out = str(answer_html("Var:\n\n$$\\mathrm{Var}(a_j) = n_{in} s^2 v^2$$\n"))
    assert '<div class="math block">' in out and 'display="block"' in out
    assert_inert(out)


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="javascript:alert(1)">x</a>',
        "<iframe src=//evil></iframe>",
        "<svg onload=alert(1)><circle/></svg>",
        '<math><mtext><img src=x onerror="alert(1)"></mtext></math>',
        "<style>body{display:none}</style>",
        '<div style="position:fixed;inset:0">over the page</div>',
        "<!-- <script>alert(1)</script> -->",
    ],
)
def test_raw_html_stays_text(attack: str) -> None:
    out = str(answer_html(f"before {attack} after"))
    assert_inert(out)
    assert html.unescape(re.sub(r"<[^>]+>", "", out)).count(attack) == 1, out


@pytest.mark.parametrize(
    "link",
    [
        "[click me](javascript:alert(1))",
        "[click me](https://example.invalid/phish)",
        "<https://example.invalid/auto>",
        "[click me][ref]\n\n[ref]: https://example.invalid/ref",
        "[click me](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    ],
)
def test_links_are_text(link: str) -> None:
    out = str(answer_html(link))
    assert_inert(out)
    assert "<a" not in out


def test_a_link_shows_its_text_and_address() -> None:
    out = str(answer_html("see [the notes](https://example.invalid/notes)"))
    assert 'see the notes <span class="url">(https://example.invalid/notes)</span>' in out


@pytest.mark.parametrize(
    "image",
    [
        "![a plot](https://example.invalid/track.png)",
        "![a plot](attachment:plot.png)",
        '![a plot](x" onerror="alert(1))',
        "![](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    ],
)
def test_images_are_shown_as_text(image: str) -> None:
    out = str(answer_html(image))
    assert_inert(out)
    assert "<img" not in out
    assert '<span class="image">[image' in out or "![" in out


@pytest.mark.parametrize(
    "latex",
    [
        r"\href{javascript:alert(1)}{x}",
        r"\style{background:url(https://example.invalid/t.png)}{x}",
        r"\class{evil}{x}",
        r"\color{javascript:alert(1)}{x}",
        r"\text{<script>alert(1)</script>}",
        r"\text{<img src=x onerror=alert(1)>}",
        r"\text{<mi>x</mi>}",
        r"\operatorname{<svg onload=alert(1)>}",
        r"\unicode{x}",
        r"\mathrm{</math><script>alert(1)</script>}",
    ],
)
def test_latex_cannot_inject_markup(latex: str) -> None:
    for text in (f"${latex}$", f"$$\n{latex}\n$$"):
        out = str(answer_html(f"math {text} here"))
        assert_inert(out)
        assert "<script" not in out.lower() and "<img" not in out.lower()


def test_mathml_keeps_only_safe_attributes() -> None:
    out = latex_to_mathml(r"\href{https://example.invalid}{x} + \color{red}{y}", display=False)
    assert out is not None
    assert "href" not in out and "example.invalid" not in out
    assert 'mathcolor="red"' in out


@pytest.mark.parametrize(
    "latex",
    [r"\frac{1}", r"\foo{x}", r"{{{", r"x^", r"\sqrt", r"\begin{matrix} a", "a" * 3000],
)
def test_a_formula_that_does_not_parse_is_its_source(latex: str) -> None:
    assert latex_to_mathml(latex, display=False) is None
    out = str(answer_html(f"typed ${latex}$ here"))
    source = re.search(r'<code class="tex-source">(.*?)</code>', out, re.DOTALL)
    assert source, out[:400]
    assert html.unescape(source.group(1)) == f"${latex}$"
    assert "<math" not in out


def test_dollars_for_money_are_not_math() -> None:
    out = str(answer_html("costs $5 and $10 today"))
    assert "<math" not in out and "costs $5 and $10 today" in out


def test_a_huge_answer_is_cut_with_a_note_and_its_work_is_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One answer must not stall a whole batch: the parser sees at most ``MAX_ANSWER_CHARS``
    of it and at most ``MAX_FORMULAS`` formulas are typeset (counted, not timed)."""
    parsed: list[int] = []
    typeset: list[str] = []
    render = MarkdownIt.render
    monkeypatch.setattr(
        MarkdownIt,
        "render",
        lambda md, src, env=None: parsed.append(len(src)) or render(md, src, env),
    )
    monkeypatch.setattr(
        answers,
        "latex_to_mathml",
        lambda latex, **kw: typeset.append(latex) or latex_to_mathml(latex, **kw),
    )
    text = ("$x^2$ and *a* [l](javascript:x) " * 20_000)[:400_000]
    out = str(answer_html(text))
    assert parsed and max(parsed) <= MAX_ANSWER_CHARS
    assert len(typeset) <= MAX_FORMULAS
    cut = len(text.strip()) - MAX_ANSWER_CHARS
    assert f"(cut here: {cut} more characters in the notebook)" in out
    assert out.count("<math") == MAX_FORMULAS
    assert out.count('<code class="tex-source">') > 0
    assert len(out) < 60 * MAX_ANSWER_CHARS
    assert_inert(out)


@pytest.mark.parametrize(
    "nested",
    [
        "$" + "{" * 5000 + "x" + "}" * 5000 + "$",
        "$" + "\\frac{1}{" * 400 + "x" + "}" * 400 + "$",
        ">" * 5000 + " deep quote",
        "- " * 3000 + "deep list",
        "*" * 20_000,
        "[" * 20_000,
    ],
)
def test_deep_nesting_is_shown_without_crashing(nested: str) -> None:
    out = str(answer_html(nested))
    assert out.startswith('<div class="answer md">')
    assert_inert(out)


def test_the_same_answer_gives_the_same_bytes() -> None:
    text = f"a {XAVIER} b\n\n$$\\sum_i x_i$$\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    assert answer_html(text) == answer_html(text)


def test_an_answer_is_rendered_once_per_process_and_a_long_one_is_not_kept(monkeypatch) -> None:
    """A batch's worker shows each answer on its student's page and sends it to the manual
    page's driver: one rendering serves both. An answer past ``MAX_ANSWER_CHARS`` is rendered
    each time instead of being kept whole as a key."""
    from graders.render import answers

    monkeypatch.setattr(answers, "_known", {})
    rendered: list[int] = []
    render = answers._render

    def counting(text: str):  # type: ignore[no-untyped-def]
        rendered.append(len(text))
        return render(text)

    monkeypatch.setattr(answers, "_render", counting)
    short = "The variance is $\\sigma^2 = 2 / n_{in}$."
    assert answers.answer_html(short) == answers.answer_html(f"  {short}\n")
    long = "word " * (answers.MAX_ANSWER_CHARS // 5 + 10)
    first, second = answers.answer_html(long), answers.answer_html(long)
    assert first == second and "cut here" in first
    assert rendered == [len(short), len(long.strip()), len(long.strip())]
    assert list(answers._known) == [short]
