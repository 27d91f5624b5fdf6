"""LaTeX from a student's answer as MathML a page can show as it is: rebuilt from an allow-list.

latex2mathml converts faithfully, which is the problem: ``\\href{javascript:...}`` becomes an
``href`` attribute, ``\\style`` and ``\\class`` become ``style`` and ``class``, and
``\\text{<script>}`` comes out as a raw ``<script>`` element inside ``<mtext>``. So its output
is never passed on: it is parsed as XML and written again with only presentation MathML
elements and a few attributes whose values match a strict pattern; every text node is escaped
again. Anything else, and any formula the converter rejects, leaves an unknown command (it
would show as ``\\foo``) or builds a fraction or script with the wrong number of parts, is
``None``: the caller shows the source instead, so a student sees what they typed rather than a
formula that reads as something else.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET

from latex2mathml.converter import convert
from markupsafe import escape

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
MAX_FORMULA_CHARS = 2_000
"""Longer formulas are shown as source: the converter is recursive and not built for size."""
MAX_ELEMENTS = 2_000
"""MathML elements in one formula at most (a formula of 2,000 characters needs far fewer)."""

_CHILDREN = {
    "mfrac": 2,
    "mroot": 2,
    "msub": 2,
    "msup": 2,
    "munder": 2,
    "mover": 2,
    "msubsup": 3,
    "munderover": 3,
}
"""Elements whose meaning depends on their number of children (``\\frac{1}`` has one)."""
_ELEMENTS = frozenset(
    {
        "math",
        "mrow",
        "mi",
        "mn",
        "mo",
        "ms",
        "mtext",
        "mspace",
        "msqrt",
        "mstyle",
        "mpadded",
        "mphantom",
        "menclose",
        "mtable",
        "mtr",
        "mtd",
        "mmultiscripts",
        "mprescripts",
        "none",
        *_CHILDREN,
    }
)
"""Presentation MathML only: no ``semantics``/``annotation-xml`` (which can carry HTML), no
``maction``, nothing that links or loads."""
_TRUE_FALSE = re.compile(r"(true|false)")
_WORDS = re.compile(r"[a-z][a-z -]{0,40}")
_LENGTH = re.compile(r"-?\d{1,4}(\.\d{1,4})?(em|ex|px|pt|mu|%)?|[a-z]{1,24}mathspace|0")
_LENGTHS = re.compile(r"(-?\d{1,4}(\.\d{1,4})?(em|ex|px|pt|mu|%)? ?){1,16}")
_COLOUR = re.compile(r"#[0-9A-Fa-f]{3,8}|[A-Za-z]{1,20}")
_ATTRIBUTES: dict[str, re.Pattern[str]] = {
    "display": re.compile(r"(block|inline)"),
    "mathvariant": re.compile(r"[a-z][a-z-]{0,30}"),
    "stretchy": _TRUE_FALSE,
    "fence": _TRUE_FALSE,
    "separator": _TRUE_FALSE,
    "largeop": _TRUE_FALSE,
    "movablelimits": _TRUE_FALSE,
    "accent": _TRUE_FALSE,
    "accentunder": _TRUE_FALSE,
    "symmetric": _TRUE_FALSE,
    "displaystyle": _TRUE_FALSE,
    "form": re.compile(r"(prefix|infix|postfix)"),
    "lspace": _LENGTH,
    "rspace": _LENGTH,
    "width": _LENGTH,
    "height": _LENGTH,
    "depth": _LENGTH,
    "minsize": _LENGTH,
    "maxsize": _LENGTH,
    "linethickness": _LENGTH,
    "scriptlevel": re.compile(r"[+-]?\d"),
    "columnalign": _WORDS,
    "rowalign": _WORDS,
    "columnlines": _WORDS,
    "rowlines": _WORDS,
    "frame": _WORDS,
    "notation": _WORDS,
    "columnspacing": _LENGTHS,
    "rowspacing": _LENGTHS,
    "mathcolor": _COLOUR,
    "mathbackground": _COLOUR,
}
"""Attribute -> the whole value it may have; every other attribute (href, style, class, id,
xlink:*, on*) is dropped."""


class _Rejected(Exception):
    """The formula is not shown as MathML (the caller shows its source)."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _write(element: ET.Element, out: list[str], budget: list[int]) -> None:
    tag = _local(element.tag)
    if tag not in _ELEMENTS or element.tag != f"{{{MATHML_NS}}}{tag}":
        raise _Rejected(f"element {tag!r} is not shown")
    budget[0] -= 1
    if budget[0] < 0:
        raise _Rejected("too many elements")
    children = list(element)
    if tag in _CHILDREN and len(children) != _CHILDREN[tag]:
        raise _Rejected(f"{tag} with {len(children)} parts")
    text = element.text or ""
    if tag in ("mi", "mo") and text.startswith("\\"):
        raise _Rejected(f"unknown command {text}")
    attributes = "".join(
        f' {name}="{escape(value)}"'
        for name, value in sorted(element.attrib.items())
        if name in _ATTRIBUTES and _ATTRIBUTES[name].fullmatch(value)
    )
    out.append(f"<{tag}{attributes}>{escape(text)}")
    for child in children:
        _write(child, out, budget)
        out.append(str(escape(child.tail or "")))
    out.append(f"</{tag}>")


@functools.lru_cache(maxsize=4096)
def latex_to_mathml(latex: str, *, display: bool) -> str | None:
    """Safe MathML for ``latex``, or None when it should be shown as its source.

    Remembered per formula: a class writes the same few (``$\\sigma^2$``, ``$n_{in}$``) in
    answer after answer, and the manual-grading page typesets them all.

    Written for an HTML page: the HTML parser puts ``<math>`` in the MathML namespace itself,
    so no ``xmlns`` is written (a page of ours names no URL it does not need)."""
    if not latex.strip() or len(latex) > MAX_FORMULA_CHARS:
        return None
    try:
        converted = convert(latex, display="block" if display else "inline")
        root = ET.fromstring(converted)
        out: list[str] = []
        _write(root, out, [MAX_ELEMENTS])
    except Exception:  # the converter raises many kinds on bad input; all mean "show source"
        return None
    return "".join(out)
