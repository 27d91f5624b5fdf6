"""What a question package is made of: its spec, its checks, and what a check may read.

The one module a question imports from the harness. A question's ``__init__.py`` builds a
``QuestionSpec``; its ``checks`` (a module, or a package of them) declare tests with
``@check(...)``, each taking a ``CheckContext`` (the question's run, the probe's plain-data
artifacts, the exact inputs the probe was given, the profile and its calibrated thresholds) and
returning an ``Outcome``: the fraction of its points earned and a message naming what was
expected and what was found.
Points come from the rubric, never from the check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, TypeVar

import nbformat
import numpy as np
from nbformat import NotebookNode

from graders.config import Profile
from graders.errors import ConfigError
from graders.models import ProbeInputs, ProbeStepError, QuestionRun, RunStatus
from graders.plain_data import load_json_file, load_npz

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class ProbeContext:
    """What a question needs to choose its probe inputs."""

    profile: Profile
    data_root: Path
    """Where the datasets lie for this run (full root or the fixture slices)."""
    rng: np.random.Generator
    """Seeded per submission and question, so a regrade probes with the same inputs."""


AWAY = 0.05
"""How far (relative) ``draw_away`` keeps a probe argument from each number it must avoid."""


def draw_away(
    rng: np.random.Generator,
    low: float,
    high: float,
    avoid: tuple[float, ...] = (),
    *,
    log: bool = False,
    digits: int | None = None,
) -> float:
    """A random number in [low, high] (log-uniform with ``log``), rounded to ``digits``, that is
    more than ``AWAY`` (relative) from every number in ``avoid``.

    ``avoid`` holds the numbers a notebook itself uses (its example arguments, its globals): a
    function that ignores its argument and picks one of those up instead must not happen to give
    the right answer at the grader's point.
    """
    for _ in range(1000):
        u = rng.uniform(np.log(low), np.log(high)) if log else rng.uniform(low, high)
        value = float(np.exp(u)) if log else float(u)
        if digits is not None:
            value = round(value, digits)
        if low <= value <= high and all(abs(value - a) > AWAY * abs(a) for a in avoid):
            return value
    raise ValueError(f"[{low}, {high}] holds no number {AWAY:.0%} away from all of {avoid}")


@dataclass(frozen=True, kw_only=True)
class Budget:
    """What a profile asks a notebook to do for one question; the reference gets the same."""

    epochs: int
    train_limit: int | None = None
    """First N training images only (None: all the data root has)."""
    test_limit: int | None = None
    device: str = "cpu"
    """The profile's device; ``cuda`` falls back to the CPU (and says so) where none is visible."""


@dataclass(frozen=True, kw_only=True)
class ThresholdTarget:
    """One calibrated threshold of a question, and how to train its reference for it.

    ``dlgrade calibrate`` owns the statistics and the TOML; the question owns what is trained."""

    key: str
    """The threshold's key in thresholds.toml, e.g. ``q3.min_test_accuracy``."""
    dataset: str
    """The data root's folder the reference trains and tests on (``MNIST``, ``FashionMNIST``)."""
    first_seed: int
    """Seeds are first_seed, first_seed + 1, ...: Q4's first is the assignment's 80085."""
    train: Callable[[Budget, Path, int], tuple[float, float]]
    """(budget, data root, seed) -> (untrained accuracy, final accuracy)."""
    variant: str = ""
    """What sets this threshold apart from the question's main one, in words (for progress)."""
    device_words: Callable[[Budget], str] | None = None
    """Where the reference ran, in words for the provenance; None: the profile's device."""


@dataclass(frozen=True, kw_only=True)
class BandTarget:
    """A calibrated two-sided band for a number the reference's training gives that is not an
    accuracy (Q3: the last reported training loss over the loss the grader measures on the
    trained weights). ``dlgrade calibrate`` trains the reference over seeds at the profile's
    budget, takes a two-sided prediction bound for one more correct run, widens it by
    ``margin`` and writes ``low_key`` and ``high_key``; the provenance goes under ``key``."""

    key: str
    """E.g. ``q3.train_loss_ratio``: the band's name, and its provenance table's key."""
    dataset: str
    first_seed: int
    measure: Callable[[Budget, Path, int], float]
    """(budget, data root, seed) -> the number, for one reference run."""
    margin: float
    """Relative widening: the band is [low / (1 + margin), high * (1 + margin)]. The
    question says why in its own docstring (what a correct run may do that the seeds do not)."""
    what: str
    """The number in words, for the printed table and the provenance."""
    device_words: Callable[[Budget], str] | None = None

    @property
    def low_key(self) -> str:
        return f"{self.key}_low"

    @property
    def high_key(self) -> str:
        return f"{self.key}_high"


@dataclass(frozen=True, kw_only=True)
class ReferenceReport:
    """What ``dlgrade reference`` prints for one question: proof the reference does what the
    assignment says. ``ok`` False when a result the assignment pins down did not reproduce."""

    lines: tuple[str, ...]
    ok: bool = True
    problem: str = ""
    """Said when not ok."""


ReferenceRun = Callable[[Path, "int | None"], ReferenceReport]
"""(data root, epochs or None for the question's default) -> the question's reference report."""


Argument = bool | int | float | str
"""An expectation's argument: a plain scalar, so that the kit can name what it stored."""


@dataclass(frozen=True, kw_only=True)
class ExpectationContext:
    """What an expectation provider may read: the inputs the probe was given, and their data."""

    inputs: ProbeInputs
    data_root: Path
    profile: Profile


@dataclass(frozen=True, kw_only=True)
class ExpectationDef:
    """One named thing the reference gives on the probe's inputs, as plain data.

    ``compute`` returns either a ``dict`` of numpy arrays (stored as ``.npz``) or a JSON value
    (lists, numbers, strings); nothing else, so that the live value and the kit's stored copy
    are the same types.
    """

    name: str
    compute: Callable[[ExpectationContext, Mapping[str, Argument]], Any]
    kit_arguments: Callable[[ProbeInputs], tuple[Mapping[str, Argument], ...]] | None = None
    """The argument sets the student kit stores for its inputs (None: the one set without
    arguments). A check may ask for others with ``optional_expected``; the kit answers None."""
    publish: Callable[[Any, np.random.Generator], Any] | None = None
    """What the kit stores instead of the full value, where the full value would itself be an
    answer the real grader accepts (Q4's seeded initial weights): a sample the same comparison
    reads. None: the value as computed."""
    ahead: bool = False
    """Computed in the background while the kernels run (``Expectations.prefetch``), where it
    needs only the probe's inputs, takes long enough to matter and holds little memory (Q2's
    unit-weight stacks: what it holds is held beside the student's kernel, in Gradescope's
    768 MB too); only its set without arguments. False: the first time a check asks for it."""


def expectation(
    name: str,
    *,
    kit_arguments: Callable[[ProbeInputs], tuple[Mapping[str, Argument], ...]] | None = None,
    publish: Callable[[Any, np.random.Generator], Any] | None = None,
    ahead: bool = False,
) -> Callable[[Callable[[ExpectationContext, Mapping[str, Argument]], Any]], ExpectationDef]:
    """Declare an expectation provider (in a question's reference side)."""

    def wrap(fn: Callable[[ExpectationContext, Mapping[str, Argument]], Any]) -> ExpectationDef:
        return ExpectationDef(
            name=name, compute=fn, kit_arguments=kit_arguments, publish=publish, ahead=ahead
        )

    return wrap


class Expectations(Protocol):
    """Where a check's expected values come from: the reference, live (the grader), or the
    kit's stored data (``graders.kit.store``)."""

    def get(self, name: str, arguments: Mapping[str, Argument]) -> Any | None:
        """The value, or None where it is not known here (a kit without those arguments)."""
        ...

    def prefetch(self) -> None:
        """Start computing the ``ahead`` expectations in the background (the grader calls it
        once the probe's inputs are drawn, before any kernel has finished); ``get`` waits."""
        ...


class NoExpectations:
    """A context built without expectations (a test of checks that need none)."""

    def get(self, name: str, arguments: Mapping[str, Argument]) -> Any | None:
        raise ConfigError(f"this check context carries no expectations (asked for {name!r})")

    def prefetch(self) -> None:
        pass


@dataclass(frozen=True, kw_only=True)
class ReferenceSide:
    """What the full grader adds to a question: everything of it that needs ``reference/``.

    A question's ``reference_side.py`` defines ``SIDE``; ``load_questions`` joins it to the
    public ``SPEC``, and the student kit ships none of it (its expectations only as values).
    """

    expectations: tuple[ExpectationDef, ...] = ()
    hidden_checks: tuple[CheckDef, ...] = ()
    """The question's hidden tests; they run only in the grader."""
    thresholds: tuple[ThresholdTarget, ...] = ()
    bands: tuple[BandTarget, ...] = ()
    reference_report: ReferenceRun | None = None


@dataclass(frozen=True, kw_only=True)
class QuestionSpec:
    """Everything the harness needs to know about one question, and nothing about its content."""

    id: str
    """Short id used in file names, parameters and the rubric: ``q1`` ... ``q4``."""
    title: str
    order: int
    notebook_stem: str
    """The template's file name without ``.ipynb``."""
    name_pattern: str
    """Regex (case-insensitive) on a file name that says "this notebook is this question"."""
    content_markers: tuple[str, ...]
    """Identifiers whose definitions in code cells identify the question when the name does not."""
    free_response_ids: tuple[str, ...] = ()
    uses_torch: bool = False
    """Import and seed torch in the preamble (and give its thread pool the kernel's share)."""
    snapshot_names: tuple[str, ...] = ()
    """Globals copied the first time a cell defines them (e.g. Q4's initial weights)."""
    make_inputs: Callable[[ProbeContext], ProbeInputs] | None = None
    artifacts: tuple[str, ...] = ()
    """The file names its probe writes (``name.npz`` / ``name.json``); the grader refuses any
    other file in the probe's results, whatever the kernel put there."""
    checks: tuple[CheckDef, ...] = ()
    """The question's tests (its ``checks`` beside it; the grader appends the hidden ones of its
    reference side); points are in the rubric."""
    thresholds: tuple[ThresholdTarget, ...] = ()
    """The calibrated thresholds its checks read, and how to train the reference for each (from
    the reference side; a question not split yet sets them here)."""
    bands: tuple[BandTarget, ...] = ()
    """The calibrated bands its checks read (two thresholds each: low and high), from the
    reference side likewise."""
    reference_report: ReferenceRun | None = None
    """Its part of ``dlgrade reference`` (None: the question has nothing to show there)."""
    expectations: tuple[ExpectationDef, ...] = ()
    """What its checks read with ``ctx.expected``: from the reference side (empty in the kit)."""
    package_dir: Path

    def with_reference(self, side: ReferenceSide) -> QuestionSpec:
        """The full grader's question: the public spec and its reference side, hidden checks
        after the public ones (the rubric's order)."""
        return replace(
            self,
            checks=(*self.checks, *side.hidden_checks),
            expectations=side.expectations,
            thresholds=side.thresholds,
            bands=side.bands,
            reference_report=side.reference_report,
        )

    @property
    def probe_source(self) -> str:
        return (self.package_dir / "probe.py").read_text(encoding="utf-8")

    def name_matches(self, file_name: str) -> bool:
        return re.search(self.name_pattern, file_name, flags=re.IGNORECASE) is not None

    def content_score(self, code: str) -> int:
        """How many of the question's marker definitions appear in the code."""
        score = 0
        for marker in self.content_markers:
            pattern = (
                rf"(^|\n)\s*(def|class)\s+{re.escape(marker)}\b|(^|\n)\s*{re.escape(marker)}\s*="
            )
            if re.search(pattern, code):
                score += 1
        return score


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What one check found. ``fraction`` is in [0, 1]; the rubric turns it into points."""

    fraction: float
    message: str
    hint: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, message: str, **details: Any) -> Outcome:
        return cls(fraction=1.0, message=message, details=details)

    @classmethod
    def failed(cls, message: str, hint: str = "", **details: Any) -> Outcome:
        return cls(fraction=0.0, message=message, hint=hint, details=details)


@dataclass(frozen=True, kw_only=True)
class CheckDef:
    id: str
    title: str
    fn: Callable[[CheckContext], Outcome]
    needs: tuple[str, ...] = ()
    """Artifacts without which the check fails with the probe's own explanation."""


def check(
    id: str, title: str, *, needs: tuple[str, ...] = ()
) -> Callable[[Callable[[CheckContext], Outcome]], CheckDef]:
    """Declare a check; visibility and points live in the rubric."""

    def wrap(fn: Callable[[CheckContext], Outcome]) -> CheckDef:
        return CheckDef(id=id, title=title, fn=fn, needs=needs)

    return wrap


@dataclass(frozen=True, kw_only=True)
class CheckContext:
    """Everything a check may read. All of it is plain data the grader owns or validated."""

    run: QuestionRun
    result_dir: Path
    inputs: ProbeInputs
    profile: Profile
    thresholds: Mapping[str, float]
    data_root: Path
    expectations: Expectations = field(default_factory=NoExpectations)

    def expected(self, name: str, **arguments: Argument) -> Any:
        """What the reference gives for this run's inputs (plain arrays or JSON, read-only):
        computed live in the grader, read from the kit's stored data in the student kit. A value
        the kit should hold and does not is a configuration fault, never the student's."""
        value = self.expectations.get(name, arguments)
        if value is None:
            said = f" for {dict(arguments)}" if arguments else ""
            raise ConfigError(
                f"{self.run.question}: no expected value {name!r}{said}; rebuild the kit "
                "(`dlgrade kit build`)"
            )
        return value

    def optional_expected(self, name: str, **arguments: Argument) -> Any | None:
        """Like ``expected``, but None where the kit did not store these arguments (the grader
        always has them). For the words of a message only, never for its fraction: the kit's
        points must be the grader's."""
        return self.expectations.get(name, arguments)

    @cached_property
    def _npz_cache(self) -> dict[str, dict[str, np.ndarray]]:
        return {}

    @cached_property
    def _shared(self) -> dict[str, Any]:
        return {}

    def once(self, key: str, compute: Callable[[], _T]) -> _T:
        """``compute()``, computed by the first check that asks and shared with the question's
        other checks under ``key`` (Q3's measure of the trained model, which three checks read).
        What is shared must not be changed by a check: make its arrays read-only."""
        if key not in self._shared:
            self._shared[key] = compute()
        value: _T = self._shared[key]
        return value

    @cached_property
    def _artifact_paths(self) -> dict[str, Path]:
        return {a.name: self.result_dir / a.path for a in self.run.probe.artifacts}

    def has(self, name: str) -> bool:
        return name in self._artifact_paths

    def npz(self, name: str) -> dict[str, np.ndarray] | None:
        """The arrays of an ``.npz`` artifact, read once per question (checks share them;
        returned arrays are read-only so one check cannot change what the next one sees)."""
        if name not in self._npz_cache:
            path = self._artifact_paths.get(name)
            if path is None or path.suffix != ".npz":
                return None
            arrays = load_npz(path)  # checked again: a check never trusts a file's name
            for array in arrays.values():
                array.flags.writeable = False
            self._npz_cache[name] = arrays
        return dict(self._npz_cache[name])

    def json(self, name: str) -> Any:
        path = self._artifact_paths.get(name)
        if path is None or path.suffix != ".json":
            return None
        return load_json_file(path)

    def probe_errors(self, prefix: str) -> list[ProbeStepError]:
        return [
            e for e in self.run.probe.errors if e.step == prefix or e.step.startswith(prefix + "[")
        ]

    def executed_notebook(self) -> NotebookNode | None:
        rel = self.run.execution.executed_notebook
        if rel is None:
            return None
        notebook: NotebookNode = nbformat.read(str(self.result_dir / rel), as_version=4)
        return notebook

    def threshold(self, key: str) -> float:
        """A calibrated threshold of this profile; a missing one is a configuration fault."""
        try:
            return float(self.thresholds[key])
        except KeyError:
            raise ConfigError(
                f"profile {self.profile.name!r} has no calibrated threshold {key!r}; "
                f"run `dlgrade calibrate --profile {self.profile.name}`"
            ) from None

    def why_missing(self, step: str) -> str:
        """The best explanation of why a probe step produced nothing, for the student."""
        errors = self.probe_errors(step)
        if errors:
            return errors[0].message
        ex = self.run.execution
        if ex.status is RunStatus.NOT_RUN:
            return ex.message or "the notebook was not run"
        if ex.status is RunStatus.KERNEL_DIED or self.run.probe.message:
            return ex.message or self.run.probe.message
        return f"the grader's probe found nothing for {step!r}"
