"""The check step: run a question's checks, in the grader's own process, on the probe's data.

A question's ``checks.py`` declares its tests with ``@check(...)``; each test gets a
``CheckContext`` (the question's run, the probe's plain-data artifacts, the exact inputs the
probe was given, the profile and its calibrated thresholds) and returns an ``Outcome``: the
fraction of its points earned and a message naming what was expected and what was found.
Points come from the rubric, never from the check. A check that crashes is the grader's bug: it
is recorded as an ``error`` result for the TA, and the other checks still run.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
from nbformat import NotebookNode

from graders.config import Profile
from graders.errors import ConfigError, GraderError
from graders.models import ProbeStepError, QuestionRun, RunStatus
from graders.plain_data import load_json_file, load_npz
from graders.questions import ProbeInputs


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

    @cached_property
    def _npz_cache(self) -> dict[str, dict[str, np.ndarray]]:
        return {}

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
        return nbformat.read(str(self.result_dir / rel), as_version=4)

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


def run_check(definition: CheckDef, ctx: CheckContext) -> tuple[Outcome, bool]:
    """Run one check; returns (outcome, crashed). A crash never escapes."""
    for need in definition.needs:
        if not ctx.has(need):
            return Outcome.failed(f"Could not be checked: {ctx.why_missing(need)}"), False
    try:
        outcome = definition.fn(ctx)
    except GraderError:
        raise  # a configuration fault (a missing threshold, say) must stop grading loudly
    except Exception as exc:  # the grader's bug, not the student's: flag it, keep grading
        tb = traceback.format_exc(limit=4)
        return (
            Outcome.failed(
                f"The grader could not evaluate this test ({type(exc).__name__}: {exc}). "
                "This is not your fault; a TA has been flagged.",
                traceback=tb,
            ),
            True,
        )
    fraction = float(min(1.0, max(0.0, outcome.fraction)))
    if fraction != outcome.fraction or not np.isfinite(outcome.fraction):
        outcome = Outcome(
            fraction=fraction if np.isfinite(fraction) else 0.0,
            message=outcome.message,
            hint=outcome.hint,
            details=outcome.details,
        )
    return outcome, False
