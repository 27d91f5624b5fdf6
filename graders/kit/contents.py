"""What the student kit ships: an allow-list, so nothing is in the kit unless it is named here.

The harness modules below run a notebook in its own kernel, probe it and score the public
checks; of each question that has been split (``graders/questions/<q>/reference_side.py``
exists) the kit takes ``QUESTION_FILES`` and nothing else: its hidden checks, expectation
providers and reference runs are other modules of the same folder, which stay with the course.
The build checks that every ``graders`` module a shipped file imports is itself shipped, and
``pyproject.toml``'s import-linter contract that none of them imports ``reference``.
"""

from __future__ import annotations

HARNESS: tuple[str, ...] = (
    "graders/__init__.py",
    "graders/check.py",
    "graders/config.py",
    "graders/data.py",
    "graders/errors.py",
    "graders/evaluate.py",
    "graders/execute.py",
    "graders/inject.py",
    "graders/load.py",
    "graders/models.py",
    "graders/plain_data.py",
    "graders/probe.py",
    "graders/record.py",
    "graders/rubric.py",
    "graders/score.py",
    "graders/selfcheck.py",
    "graders/selfcheck_report.py",
    "graders/kernel/*.py",
    "graders/sandbox/*.py",
    "graders/numerics/*.py",
    "graders/questions/__init__.py",
    "graders/questions/api.py",
    "graders/questions/common.py",
    "graders/questions/expectations.py",
    "graders/render/__init__.py",
    "graders/render/atomic.py",
    "graders/render/controls.py",
    "graders/render/json_result.py",
    "graders/render/numbers.py",
    "graders/kit/__init__.py",
    "graders/kit/store.py",
)
"""Paths (globs) relative to the project root: the grader minus reference, batch, Gradescope,
calibration, the HTML/Markdown renderers (jinja2) and the CLI."""

QUESTION_FILES: tuple[str, ...] = ("__init__.py", "probe.py", "checks.py", "checks/*.py")
"""Of each split question's folder: its public spec, its probe and its public checks."""

CONFIG_COPIED: tuple[str, ...] = ("profiles.toml",)
"""``graders/config`` files copied as they are; the rubric and thresholds are written anew."""

DEPENDENCIES: tuple[str, ...] = (
    "numpy",
    "matplotlib",
    "nbformat",
    "nbclient",
    "ipykernel",
    "jupyter_client",
)
"""The grader's requirements (with its version pins) that the kit needs: a kernel per notebook,
the checks' numpy, and matplotlib, which the templates plot with."""

TORCH_DEPENDENCIES: tuple[str, ...] = ("torch", "torchvision")
"""The ``[torch]`` extra: Q3 trains a torch model and Q4 reads MNIST with torchvision; Q1 and Q2
need neither."""
