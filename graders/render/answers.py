"""A free-response answer (Markdown with LaTeX, as a student types it in Jupyter) as static HTML.

Shown on the feedback page and on the TA's manual-grading page. Everything in it was written by
a student, so the page must stay the grader's page whatever the answer holds:

- raw HTML is off (``<script>``, ``<img onerror=...>`` and ``<iframe>`` stay text);
- a link is shown as its text and its address, as text: no ``<a href>``, so no
  ``javascript:`` link and no link that looks like the grader's own;
- an image is shown as ``[image: alt] (address)``, as text: nothing is fetched, nothing
  tracks who opened the page;
- ``$...$`` and ``$$...$$`` become MathML through ``mathml.latex_to_mathml``, which rebuilds
  the converter's output from an allow-list; a formula it will not show appears as its source
  in a code span, so the student sees what they typed;
- past ``MAX_ANSWER_CHARS`` the answer is cut with a note, and past ``MAX_FORMULAS`` formulas
  are shown as source: a 10 MB answer cannot make a page that no browser opens.

The same text always gives the same bytes (the templates' golden files rely on it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import markupsafe
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.dollarmath import dollarmath_plugin

from graders.render.mathml import latex_to_mathml
from graders.render.numbers import amount

MAX_ANSWER_CHARS = 20_000
"""Characters of one answer rendered; the rest is cut with a note (the notebook has it all)."""
MAX_FORMULAS = 300
"""Formulas typeset per answer; later ones are shown as their source."""
MAX_URL_CHARS = 200
"""A link's or image's address is shown up to this many characters."""


def _clip_url(url: str) -> str:
    return url if len(url) <= MAX_URL_CHARS else url[: MAX_URL_CHARS - 1] + "…"


def _link_open(
    _self: Any, _tokens: Sequence[Token], _idx: int, _options: OptionsDict, _env: EnvType
) -> str:
    return ""


def _link_close(
    _self: Any, tokens: Sequence[Token], idx: int, _options: OptionsDict, _env: EnvType
) -> str:
    """After the link's text, its address in brackets; an autolink's text is its address."""
    if tokens[idx].markup == "autolink":
        return ""
    opening = next((t for t in reversed(tokens[:idx]) if t.type == "link_open"), None)
    href = str(opening.attrGet("href") or "") if opening is not None else ""
    if not href:
        return ""
    return f' <span class="url">({markupsafe.escape(_clip_url(href))})</span>'


def _image(
    _self: Any, tokens: Sequence[Token], idx: int, _options: OptionsDict, _env: EnvType
) -> str:
    token = tokens[idx]
    alt = "".join(c.content for c in token.children or ())
    src = _clip_url(str(token.attrGet("src") or ""))
    words = f"[image: {alt}]" if alt else "[image]"
    return f'<span class="image">{markupsafe.escape(words)} ({markupsafe.escape(src)})</span>'


def _parser() -> MarkdownIt:
    """CommonMark with tables and strikethrough, raw HTML off, formulas counted per answer."""
    typeset = [0]

    def formula(latex: str, options: dict[str, Any]) -> str:
        display = bool(options.get("display_mode"))
        typeset[0] += 1
        mathml = latex_to_mathml(latex, display=display) if typeset[0] <= MAX_FORMULAS else None
        if mathml is not None:
            return mathml
        fence = "$$" if display else "$"
        return f'<code class="tex-source">{markupsafe.escape(fence + latex + fence)}</code>'

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.use(
        dollarmath_plugin,
        allow_labels=False,
        allow_digits=False,
        double_inline=True,
        renderer=formula,
    )
    md.add_render_rule("link_open", _link_open)
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("image", _image)
    return md


_known: dict[str, markupsafe.Markup] = {}
"""``answer_html``'s fragments by (stripped) text, made here or taken from another process of
the same grader (``remember``): it is a function of the text alone. A batch's worker renders
each answer for its student's page and again for the manual-grading page's driver; the driver
takes those instead of rendering every answer of the class itself."""
_KNOWN_MAX = 4096
"""Fragments kept at most, each of an answer no longer than ``MAX_ANSWER_CHARS`` (a long one
would be kept whole as its key); any other answer is rendered each time it is shown."""


def _keep(text: str, html: markupsafe.Markup) -> None:
    if len(_known) < _KNOWN_MAX and len(text) <= MAX_ANSWER_CHARS:
        _known[text] = html


def remember(rendered: Iterable[tuple[str, str]]) -> None:
    """Take fragments ``answer_html`` made in another process of the same grader."""
    for text, html in rendered:
        _keep(text.strip(), markupsafe.Markup(html))


def answer_html(text: str) -> markupsafe.Markup:
    """The answer as an HTML fragment (a ``div``), safe to place in a page as it is."""
    text = str(text).strip()
    if text in _known:
        return _known[text]
    html = _render(text)
    _keep(text, html)
    return html


def _render(text: str) -> markupsafe.Markup:
    cut = len(text) - MAX_ANSWER_CHARS
    body = _parser().render(text[:MAX_ANSWER_CHARS] if cut > 0 else text)
    note = (
        f'<p class="note">(cut here: {amount(cut, "more character")} in the notebook)</p>\n'
        if cut > 0
        else ""
    )
    return markupsafe.Markup(f'<div class="answer md">\n{body}{note}</div>')
