"""The one Jinja environment every report template is rendered with.

``StrictUndefined`` turns a misspelt field into an error instead of a blank on a student's page;
autoescape is on for ``.html.j2`` (student text such as ``<script>`` in an answer or a
traceback must stay text) and off for Markdown and terminal templates, whose filters below
make student text inert instead. Every value a template prints loses its control characters
first (``inert``): an exception class named with ANSI escapes must not redraw a TA's terminal
("6 / 6 points" over a 4.75), and a carriage return must not hide a line; only ``Ansi``
values, the terminal template's own colour codes, keep theirs. Templates are read through
``importlib.resources`` from the ``reports`` package, so an installed wheel (or a zip) finds
them exactly as a checkout does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from importlib import resources

import jinja2
import markupsafe

from graders.render.answers import answer_html
from graders.render.controls import one_line, without_controls
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


_MD_INLINE = re.compile(r"([\\`\[\]|])")
"""Backslashes, backticks (code spans), brackets (links and images), pipes (table cells)."""
_MD_LINE_START = re.compile(r"^([ \t]*)([#+=*_-])", re.MULTILINE)
"""What starts a heading, a list, a rule or a setext underline at the start of a line."""
_MD_NUMBERED = re.compile(r"^([ \t]*\d+)([.)])", re.MULTILINE)
_BARE_LINK = re.compile(r"(?i)\b(https?|ftp|mailto|www)(?=[:.])")
_WORD_JOINER = "\u2060"


class Ansi(str):
    """A terminal colour code: the one control sequence a template may print."""


def inert(value: object) -> object:
    """Every printed value without control characters (``Ansi`` codes excepted)."""
    if isinstance(value, Ansi):
        return value
    if isinstance(value, markupsafe.Markup):
        return markupsafe.Markup(without_controls(str(value)))
    if isinstance(value, str):
        return without_controls(value)
    return value


def md_text(text: str) -> str:
    """Student or grader text in Markdown prose, made inert: HTML as entities (a ``<script>``
    stays text), brackets and backticks escaped (no link, image or code span from ``[x](...)``,
    ``![x](...)``, backticks), no block syntax at a line's start (no heading, list or rule),
    and a word joiner in bare ``http:``/``www.`` so that viewers with autolinks leave them as
    text. Underscores and asterisks inside a line stay as typed: emphasis does no harm, and
    ``train_loss_history`` should read as itself in the raw file too."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_INLINE.sub(r"\\\1", text)
    text = _MD_LINE_START.sub(r"\1\\\2", text)
    text = _MD_NUMBERED.sub(r"\1\\\2", text)
    return _BARE_LINK.sub(lambda m: m.group(1) + _WORD_JOINER, text)


def md_cell(text: str) -> str:
    """Text in a Markdown table cell: inert (pipes escaped with the rest), on one line."""
    return md_text(text).replace("\r\n", "\n").replace("\n", "<br>")


def md_code(text: str) -> str:
    """A code span around any text: its backtick fence longer than any run inside it, one line."""
    text = str(text).replace("\r", " ").replace("\n", " ")
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_fence(text: str, lang: str = "") -> str:
    """A fenced code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


class _CompiledOnce(jinja2.BytecodeCache):
    """Compiled templates kept in memory for the process: a batch renders the same pages for
    every submission, and compiling them is most of a render's time. Jinja keys each entry by
    the template's name and checks its source's checksum on load, so a changed template is
    compiled again; nothing is written anywhere (bytecode on disk would be code a student's
    kernel might try to plant)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledOnce()


def environment() -> jinja2.Environment:
    """A fresh environment (no state shared between renders but the compiled templates, each
    checked against its source)."""
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        bytecode_cache=_COMPILED,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=(), default=False
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        finalize=inert,
    )
    # Numbers only through graders.render.numbers: a template never prints a float as it is.
    env.filters["points"] = points
    env.filters["amount"] = amount
    env.filters["seconds"] = seconds
    env.filters["number"] = number
    env.filters["percent"] = percent
    env.filters["data"] = data
    env.filters["clip"] = clip
    env.filters["one_line"] = one_line
    env.filters["md"] = md_text
    env.filters["cell"] = md_cell
    env.filters["fence"] = md_fence
    env.filters["code"] = md_code
    env.filters["answer"] = answer_html
    return env


def render(template: str, **context: object) -> str:
    _finish_precompiling()
    return environment().get_template(template).render(**context)


_precompiling: threading.Thread | None = None


def precompile_in_background() -> None:
    """Compile every report template on a daemon thread, into the process's cache.

    Called by ``graders.render.warm`` while the kernels boot: the grading process then mostly
    waits for the student's kernel (another process), so the compiling, a good part of a
    one-question grade's own time, is done by the time the pages are rendered. A template that
    fails to compile is left for ``render`` to report. Once per process.
    """
    global _precompiling
    if _precompiling is not None:
        return
    _precompiling = threading.Thread(target=_precompile, name="dlgrade-templates", daemon=True)
    _precompiling.start()


def _precompile() -> None:
    folder = resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_DIR)
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".j2"):  # includes too: they load when a page renders
            try:
                environment().get_template(entry.name)
            except jinja2.TemplateError:
                continue  # render() compiles it again and says what is wrong


def _finish_precompiling() -> None:
    """Wait for the background compile (done long before, in a grade), so nothing compiles
    twice at once."""
    if _precompiling is not None and _precompiling.is_alive():
        _precompiling.join()
