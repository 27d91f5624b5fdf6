"""The one Jinja environment every report template is rendered with.

``StrictUndefined`` turns a misspelt field into an error instead of a blank on a student's page;
autoescape is on for ``.html.j2`` (student text such as ``<script>`` in an answer or a
traceback must stay text) and off for Markdown and terminal templates, which escape nothing.
Templates are read through ``importlib.resources`` from the ``reports`` package, so an
installed wheel (or a zip) finds them exactly as a checkout does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources

import jinja2

from graders.render.numbers import amount, data, number, percent, points, seconds

TEMPLATE_PACKAGE = "reports"
TEMPLATE_DIR = "templates"


def _load(name: str) -> tuple[str, str, Callable[[], bool]]:
    source = resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR, name)
    if not source.is_file():
        raise jinja2.TemplateNotFound(name)
    return source.read_text(encoding="utf-8"), f"{TEMPLATE_PACKAGE}/{TEMPLATE_DIR}/{name}", _fresh


def _fresh() -> bool:
    """Templates are package data: they do not change while the grader runs."""
    return True


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word with an ellipsis: a summary, not the page."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:") + " …"


def md_text(text: str) -> str:
    """Student or grader text in Markdown prose: angle brackets as entities, so a ``<script>``
    in an answer stays text in viewers that render inline HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md_cell(text: str) -> str:
    """Text in a Markdown table cell: one line, pipes escaped."""
    return md_text(text).replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def md_fence(text: str, lang: str = "") -> str:
    """A fenced code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def md_quote(text: str) -> str:
    """A free-response answer as a block quote, every line of it (blank lines included)."""
    return "\n".join(f"> {line}".rstrip() for line in md_text(text).rstrip().splitlines())


def environment() -> jinja2.Environment:
    """A fresh environment: no state shared between renders, nothing cached across tests."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=(), default=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    # Numbers only through graders.render.numbers: a template never prints a float as it is.
    env.filters["points"] = points
    env.filters["amount"] = amount
    env.filters["seconds"] = seconds
    env.filters["number"] = number
    env.filters["percent"] = percent
    env.filters["data"] = data
    env.filters["clip"] = clip
    env.filters["md"] = md_text
    env.filters["cell"] = md_cell
    env.filters["fence"] = md_fence
    env.filters["quote"] = md_quote
    return env


def render(template: str, **context: object) -> str:
    return environment().get_template(template).render(**context)
