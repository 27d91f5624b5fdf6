"""Everything that runs inside the student's kernel, and nothing else.

``boot.py`` (the kernel process's first code), ``probe_runtime.py`` (the grader's probe
toolkit) and, per question, ``graders/questions/<id>/probe.py`` are *source* handed to the
kernel: the kernel never imports ``graders`` (it is not even on its file system when the
sandbox is bubblewrap). So these modules use the standard library and what the kernel's own
environment has (numpy, torch) and import nothing of ``graders``; import-linter holds the
package to that. The grader reads them with ``source``.
"""

import ast
import re
import string
from functools import cache
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent

CUDA_NOTICE = "CUDA code ran on the CPU"
"""How compat.py's notice for hard-coded CUDA on a CPU grader begins (``tests/test_compat.py``
holds the two together); the rubric's ``cuda_deduction`` looks for it."""


_NOTICE_FIELDS = {
    "module": r"[A-Za-z_][\w.]{0,99}",
    "dataset": r"[A-Za-z_]\w{0,99}",
    "command": r"[^`\n]{0,2000}",
}
"""What each field of a notice may hold (compat.py's ``NOTICE_FORMATS`` documents them)."""


@cache
def notice_patterns() -> tuple[re.Pattern[str], ...]:
    """compat.py's ``NOTICE_FORMATS``, read from its source (the grader never imports kernel
    code), as patterns a notice must match in full to be shown as the grader's: the notebook
    can write anything into ``__dlgrader_compat__``, and a note reading like the grader's
    ("verified by the TA") must not be shown as one."""
    tree = ast.parse(source("compat"))
    formats = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "NOTICE_FORMATS" for t in node.targets)
    )
    patterns = []
    for text in formats.values():
        parts = []
        for literal, field, _spec, _conversion in string.Formatter().parse(text):
            parts.append(re.escape(literal))
            if field is not None:
                parts.append(f"(?:{_NOTICE_FIELDS[field]})")
        patterns.append(re.compile("".join(parts)))
    return tuple(patterns)


def is_known_notice(message: str) -> bool:
    """Whether ``message`` is one the compatibility layer writes (of one of its forms)."""
    return len(message) <= 3000 and any(p.fullmatch(message) for p in notice_patterns())


def source(module: str) -> str:
    """The text of ``graders/kernel/<module>.py``, to hand to a kernel."""
    return (SOURCE_DIR / f"{module}.py").read_text(encoding="utf-8")
