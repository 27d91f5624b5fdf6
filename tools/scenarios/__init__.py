"""Scenario submissions: the correct solution with exactly one known mistake each.

Each question's module here (``q1.py`` ... ``q4.py``) declares ``SCENARIOS``. A scenario is the
``all_correct`` submission with text edits applied to one notebook's code cells; what the mistake
must cost is declared beside it, with the words the student must see. ``make_scenarios.py``
writes the folders under ``fixtures/submissions/`` and ``fixtures/submissions/expected.toml``;
``tests/test_scenarios.py`` grades every folder and holds the grader to those expectations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Edit:
    """Replace ``old`` by ``new`` in the notebook's code cells; ``old`` must occur exactly once,
    or with ``rename`` at least once, every occurrence replaced (a variable renamed throughout)."""

    old: str
    new: str
    rename: bool = False


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str
    """Folder name under fixtures/submissions/, e.g. ``q4_dsigmoid_on_activation``."""
    description: str
    """The mistake, in one sentence (where it comes from: the seed, a common bug...)."""
    notebook: str
    """File name of the notebook to edit, e.g. ``q4_numpy_backprop.ipynb``."""
    edits: tuple[Edit, ...] = ()
    rename_to: str | None = None
    """Write the edited notebook under this name instead (matching-by-content scenarios)."""
    expected_scores: Mapping[str, float] = field(default_factory=dict)
    """Question id -> expected automatic score; questions not listed expect full marks."""
    expected_failures: Mapping[str, str] = field(default_factory=dict)
    """Check id -> a phrase its message must contain (case-insensitive)."""
    expected_notices: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Question id -> phrases the run's notices must contain (what the grader did to run the
    notebook as written: data served, CUDA on the CPU, an install skipped)."""
