"""Everything that runs inside the student's kernel, and nothing else.

``boot.py`` (the kernel process's first code), ``probe_runtime.py`` (the grader's probe
toolkit) and, per question, ``graders/questions/<id>/probe.py`` are *source* handed to the
kernel: the kernel never imports ``graders`` (it is not even on its file system when the
sandbox is bubblewrap). So these modules use the standard library and what the kernel's own
environment has (numpy, torch) and import nothing of ``graders``; import-linter holds the
package to that. The grader reads them with ``source``.
"""

from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent

CUDA_NOTICE = "CUDA code ran on the CPU"
"""How compat.py's notice for hard-coded CUDA on a CPU grader begins (``tests/test_compat.py``
holds the two together); the rubric's ``cuda_deduction`` looks for it."""


def source(module: str) -> str:
    """The text of ``graders/kernel/<module>.py``, to hand to a kernel."""
    return (SOURCE_DIR / f"{module}.py").read_text(encoding="utf-8")
