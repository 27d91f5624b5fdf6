"""The rubric: points and visibility per test, free-response items, loaded from TOML.

Points live here and only here; a check says how much of its points a submission earned.
``validate`` ties the rubric to the checks the questions declare, so a renamed check or a
forgotten rubric line is caught by the test suite, not by a student.

The student kit's rubric (written by ``dlgrade kit build``) lists the public tests only, and
each question's hidden tests as a ``[<q>.hidden]`` table of their count and points: a student
learns how much is still to come, never what it tests.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from graders.config import CONFIG_DIR
from graders.errors import ConfigError
from graders.models import Visibility


@dataclass(frozen=True, kw_only=True)
class TestEntry:
    id: str
    points: float
    visibility: Visibility


@dataclass(frozen=True, kw_only=True)
class ManualEntry:
    question: str
    id: str
    title: str
    points: float


@dataclass(frozen=True, kw_only=True)
class HiddenTests:
    """A question's hidden tests as a student may know them: how many, and their points."""

    count: int = 0
    points: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Rubric:
    source: Path
    tests: Mapping[str, TestEntry]
    manual: Mapping[str, tuple[ManualEntry, ...]]
    hidden_visibility: Visibility
    cuda_deduction: float = 0.0
    """Points taken from a question whose notebook hard-codes CUDA and ran on the CPU because
    the grader has no GPU (``[settings] cuda_deduction``; 0: none, the default)."""
    hidden_summary: Mapping[str, HiddenTests] = field(default_factory=dict)
    """Per question, hidden tests known only by count and points (the kit's ``[<q>.hidden]``)."""

    def hidden_tests(self, question: str) -> HiddenTests:
        """A question's hidden tests: its hidden entries, or the kit's summary of them."""
        entries = [
            t
            for t in self.tests.values()
            if t.id.startswith(question + ".") and t.visibility is not Visibility.VISIBLE
        ]
        summary = self.hidden_summary.get(question, HiddenTests())
        return HiddenTests(
            count=len(entries) + summary.count,
            points=sum(t.points for t in entries) + summary.points,
        )

    def entry(self, test_id: str) -> TestEntry:
        try:
            return self.tests[test_id]
        except KeyError:
            raise ConfigError(f"test {test_id!r} has no rubric entry", path=self.source) from None

    def question_points(self, question: str) -> float:
        listed = sum(t.points for t in self.tests.values() if t.id.startswith(question + "."))
        return listed + self.hidden_summary.get(question, HiddenTests()).points


def load_rubric(path: Path | None = None) -> Rubric:
    source = path or CONFIG_DIR / "rubric.toml"
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("rubric file not found", path=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=source) from None
    settings = raw.pop("settings", {})
    tests: dict[str, TestEntry] = {}
    manual: dict[str, tuple[ManualEntry, ...]] = {}
    summary: dict[str, HiddenTests] = {}
    try:
        for qid, body in raw.items():
            if "hidden" in body:
                hidden_table = body["hidden"]
                summary[qid] = HiddenTests(
                    count=int(hidden_table["count"]), points=float(hidden_table["points"])
                )
            for key, entry in body.get("tests", {}).items():
                vis = Visibility(entry.get("visibility", "visible"))
                tests[f"{qid}.{key}"] = TestEntry(
                    id=f"{qid}.{key}", points=float(entry["points"]), visibility=vis
                )
            manual[qid] = tuple(
                ManualEntry(
                    question=qid, id=mid, title=str(m.get("title", mid)), points=float(m["points"])
                )
                for mid, m in body.get("manual", {}).items()
            )
        hidden = Visibility(settings.get("hidden_visibility", "after_published"))
        cuda_deduction = float(settings.get("cuda_deduction", 0.0))
        if not 0 <= cuda_deduction < float("inf"):
            raise ValueError(f"cuda_deduction must be 0 or more, got {cuda_deduction}")
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"malformed rubric entry: {exc!r}", path=source) from None
    return Rubric(
        source=source,
        tests=MappingProxyType(tests),
        manual=MappingProxyType(manual),
        hidden_visibility=hidden,
        cuda_deduction=cuda_deduction,
        hidden_summary=MappingProxyType(summary),
    )


def validate(rubric: Rubric, declared: Mapping[str, tuple[str, ...]]) -> None:
    """Every declared check has an entry and every entry a check (per question id)."""
    declared_ids = {cid for ids in declared.values() for cid in ids}
    missing = sorted(declared_ids - set(rubric.tests))
    extra = sorted(set(rubric.tests) - declared_ids)
    if missing or extra:
        raise ConfigError(
            f"rubric and checks disagree: checks without points {missing}, "
            f"points without checks {extra}",
            path=rubric.source,
        )
