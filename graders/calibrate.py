"""``dlgrade calibrate``: measure the reference at a profile's budget and set its pass thresholds.

A threshold on the grader's own test accuracy must do two things at once: pass every correct
submission (whatever its seed, data order or hardware) and fail a model that never learned.
So the command trains the *reference* over several seeds at exactly the profile's budget
(epochs, data, limits), treats the final accuracies as a sample of what a correct student gets,
and sets the threshold at a one-sided normal prediction bound for one more run, minus a stated
margin: under that model a correct solution fails with probability below 1/1000. It then
measures the gap between the threshold and a model that never learns (untrained weights, or
always answering the commonest class) and says loudly when the budget is too small to tell the
two apart. Everything it used goes into the TOML as provenance, so a TA can see why a number is
what it is and rerun the exact command.

A question may also declare *bands* (``BandTarget``): a number of the reference's training that
a correct submission's must lie near on both sides (Q3: the last reported training loss over the
loss the grader measures on the trained weights). The same seeds give a two-sided prediction
bound, widened by the margin the question states, written as ``<key>_low`` and ``<key>_high``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import functools
import json
import math
import os
import re
import statistics
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from graders.config import CONFIG_DIR, Profile, load_profiles
from graders.data import as_data_error, default_data_root
from graders.errors import ConfigError
from graders.numerics.datasets import find_file, raw_dir, read_idx
from graders.questions import load_questions
from graders.questions.api import BandTarget, Budget, ThresholdTarget

FAILURE_RATE: Final = 1e-3
"""The largest chance that a correct solution fails the accuracy check."""
DEFAULT_MARGIN: Final = 0.02
DEFAULT_SEEDS: Final = 8
MIN_SEPARATION: Final = 0.10
"""How far above a never-learning model a threshold must sit to mean anything."""
THRESHOLDS_FILE: Final = CONFIG_DIR / "thresholds.toml"
HEADER: Final = """\
# Pass thresholds per profile, written by `dlgrade calibrate --profile NAME --write`.
#
# Each `min_` value is the grader's own test accuracy that a student's trained weights must
# reach; each `_low` / `_high` pair is a band a number of the student's training must lie in
# (q3.train_loss_ratio: the last reported training loss over the grader's own loss of the
# trained weights). Both come from training the reference solution over several seeds at the
# profile's budget; the provenance table under each says how (seeds, values, rule, margin,
# data, device, date, command). Do not edit a value by hand: change profiles.toml, then rerun
# the command (docs/profiles.md). Reading this file ignores the provenance tables.
"""

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class SeedRun:
    seed: int
    accuracy: float
    """Test accuracy after the last epoch."""
    untrained_accuracy: float
    """Test accuracy of the same seed's initial weights: what a model that never learns gets."""
    seconds: float
    """Wall time of the run."""
    cpu_seconds: float
    """CPU time of the run: unlike wall time, it does not grow when the machine is busy."""


@dataclass(frozen=True, kw_only=True)
class RuleResult:
    """The threshold rule applied to one sample of accuracies, with every number it used."""

    n: int
    min: float
    mean: float
    std: float
    """Sample standard deviation (n - 1 in the denominator)."""
    k: float
    """t quantile (1 - failure rate, n - 1 degrees of freedom) times sqrt(1 + 1/n)."""
    margin: float
    failure_rate: float
    value: float
    """max(0, floor to 4 decimals of min(min, mean - k * std) - margin)."""

    @property
    def rule(self) -> str:
        return (
            "max(0, floor4(min(min_run, mean - k * std) - margin)); k = t(1 - "
            f"{self.failure_rate:g}, n - 1) * sqrt(1 + 1/n) = {self.k:.3f} for n = {self.n}: "
            "a one-sided normal prediction bound for one more correct run"
        )


@dataclass(frozen=True, kw_only=True)
class Target:
    """One threshold this command calibrates: a question's ``ThresholdTarget`` and its id."""

    question: str
    threshold: ThresholdTarget

    @property
    def key(self) -> str:
        return self.threshold.key

    @property
    def dataset(self) -> str:
        return self.threshold.dataset

    @property
    def label(self) -> str:
        variant = self.threshold.variant
        return f"{self.question} ({variant})" if variant else self.question

    def device_words(self, budget: Budget) -> str:
        words = self.threshold.device_words
        return words(budget) if words is not None else budget.device


def targets() -> tuple[Target, ...]:
    """Every calibrated threshold the questions declare, in assignment order."""
    return tuple(
        Target(question=spec.id, threshold=t) for spec in load_questions() for t in spec.thresholds
    )


@dataclass(frozen=True, kw_only=True)
class Band:
    """One calibrated band this command measures: a question's ``BandTarget`` and its id."""

    question: str
    band: BandTarget

    @property
    def key(self) -> str:
        return self.band.key

    def device_words(self, budget: Budget) -> str:
        words = self.band.device_words
        return words(budget) if words is not None else budget.device


def bands() -> tuple[Band, ...]:
    """Every calibrated band the questions declare, in assignment order."""
    return tuple(Band(question=spec.id, band=b) for spec in load_questions() for b in spec.bands)


@dataclass(frozen=True, kw_only=True)
class BandRun:
    seed: int
    value: float
    seconds: float
    cpu_seconds: float


@dataclass(frozen=True, kw_only=True)
class BandCalibration:
    """One band measured at one profile's budget."""

    target: Band
    budget: Budget
    runs: tuple[BandRun, ...]
    rule: BandRule
    train_size: int
    device: str


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """One threshold measured at one profile's budget."""

    target: Target
    budget: Budget
    runs: tuple[SeedRun, ...]
    rule: RuleResult
    train_size: int
    test_size: int
    majority_share: float
    """Share of the commonest test label: the accuracy of always giving one answer."""
    device: str
    """Where the runs happened, in words for the provenance."""

    @property
    def never_learns(self) -> float:
        return max(self.majority_share, *(r.untrained_accuracy for r in self.runs))

    @property
    def separation(self) -> float:
        return self.rule.value - self.never_learns

    @property
    def separated(self) -> bool:
        return self.separation >= MIN_SEPARATION


# --- the rule ---------------------------------------------------------------------------------


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's continued fraction for the incomplete beta (Numerical Recipes, betacf)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for num in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _regularized_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


@functools.lru_cache(maxsize=256)
def student_t_quantile(p: float, df: int) -> float:
    """t with P(T <= t) = p for Student's t with ``df`` degrees of freedom (p in (0.5, 1)).

    Bisection on the exact tail ``P(T > t) = I_{df/(df+t^2)}(df/2, 1/2) / 2``; no scipy needed.
    """
    if not 0.5 < p < 1.0 or df < 1:
        raise ValueError(f"need 0.5 < p < 1 and df >= 1, got p={p}, df={df}")
    tail = 1.0 - p
    lo, hi = 0.0, 1.0
    while 0.5 * _regularized_beta(df / 2, 0.5, df / (df + hi * hi)) > tail:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * _regularized_beta(df / 2, 0.5, df / (df + mid * mid)) > tail:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def threshold_rule(
    accuracies: Sequence[float], *, margin: float, failure_rate: float = FAILURE_RATE
) -> RuleResult:
    """The threshold below which one more correct run falls with probability ``failure_rate``.

    With n runs from a normal distribution of unknown mean and spread, one further run falls
    below ``mean - t(1 - a, n - 1) * std * sqrt(1 + 1/n)`` with probability exactly ``a``: the
    t quantile pays for estimating the spread from few runs (with n = 8 it is 5.1 standard
    deviations, not the 3.09 of a known spread). ``margin`` then absorbs what the sample cannot
    see: heavier tails than normal, the student's DataLoader pipeline, GPU float reductions.
    """
    if len(accuracies) < 2:
        raise ValueError(f"need at least 2 runs to estimate a spread, got {len(accuracies)}")
    if margin < 0 or not 0 < failure_rate < 0.5:
        raise ValueError(
            f"need margin >= 0 and 0 < failure rate < 0.5, got {margin}, {failure_rate}"
        )
    n = len(accuracies)
    mean = statistics.fmean(accuracies)
    std = statistics.stdev(accuracies)
    k = student_t_quantile(1.0 - failure_rate, n - 1) * math.sqrt(1.0 + 1.0 / n)
    bound = min(min(accuracies), mean - k * std) - margin
    return RuleResult(
        n=n,
        min=min(accuracies),
        mean=mean,
        std=std,
        k=k,
        margin=margin,
        failure_rate=failure_rate,
        value=max(0.0, math.floor(bound * 1e4) / 1e4),
    )


@dataclass(frozen=True, kw_only=True)
class BandRule:
    """The band rule applied to one sample of a statistic, with every number it used."""

    n: int
    min: float
    max: float
    mean: float
    std: float
    k: float
    """t quantile (1 - failure rate / 2, n - 1 degrees of freedom) times sqrt(1 + 1/n)."""
    margin: float
    failure_rate: float
    low: float
    high: float

    @property
    def rule(self) -> str:
        return (
            "low = floor4(min(min_run, mean - k * std) / (1 + margin)), high = "
            "ceil4(max(max_run, mean + k * std) * (1 + margin)); k = t(1 - "
            f"{self.failure_rate:g} / 2, n - 1) * sqrt(1 + 1/n) = {self.k:.3f} for n = {self.n}: "
            "a two-sided normal prediction bound for one more correct run, widened by the margin"
        )


def band_rule(
    values: Sequence[float], *, margin: float, failure_rate: float = FAILURE_RATE
) -> BandRule:
    """The band one more correct run leaves with probability ``failure_rate`` (both sides
    together), under the normal model of ``threshold_rule``, then widened by ``margin``
    (relative, on both sides: the ratio of two losses is off by a factor, not a difference)."""
    if len(values) < 2:
        raise ValueError(f"need at least 2 runs to estimate a spread, got {len(values)}")
    if margin < 0 or not 0 < failure_rate < 0.5:
        raise ValueError(
            f"need margin >= 0 and 0 < failure rate < 0.5, got {margin}, {failure_rate}"
        )
    n = len(values)
    mean = statistics.fmean(values)
    std = statistics.stdev(values)
    k = student_t_quantile(1.0 - failure_rate / 2, n - 1) * math.sqrt(1.0 + 1.0 / n)
    low = min(min(values), mean - k * std) / (1.0 + margin)
    high = max(max(values), mean + k * std) * (1.0 + margin)
    return BandRule(
        n=n,
        min=min(values),
        max=max(values),
        mean=mean,
        std=std,
        k=k,
        margin=margin,
        failure_rate=failure_rate,
        low=math.floor(low * 1e4) / 1e4,
        high=math.ceil(high * 1e4) / 1e4,
    )


# --- running the reference --------------------------------------------------------------------


def budget_for(
    profile: Profile, question: str, overrides: Mapping[str, int] | None = None
) -> Budget:
    """The profile's notebook parameters for ``question`` as a budget (overrides win)."""
    params = {**profile.parameters_for(question), **(overrides or {})}
    for name in ("EPOCHS", "TRAIN_LIMIT", "TEST_LIMIT"):
        value = params.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ConfigError(
                f"profile {profile.name!r}, {question}: {name} must be a positive integer, "
                f"got {value!r}"
            )
    if "EPOCHS" not in params:
        raise ConfigError(f"profile {profile.name!r} sets no EPOCHS for {question}")
    return Budget(
        epochs=params["EPOCHS"],
        train_limit=params.get("TRAIN_LIMIT"),
        test_limit=params.get("TEST_LIMIT"),
        device=profile.device,
    )


def _labels(data_root: Path, dataset: str, *, train: bool, limit: int | None) -> np.ndarray:
    stem = "train-labels-idx1-ubyte" if train else "t10k-labels-idx1-ubyte"
    return read_idx(find_file(raw_dir(data_root, dataset), stem), limit=limit)


def calibrate_target(
    target: Target,
    budget: Budget,
    data_root: Path,
    *,
    seeds: int,
    margin: float,
    progress: Progress = print,
) -> Calibration:
    """Train the reference ``seeds`` times at ``budget`` and apply the rule to the accuracies."""
    with as_data_error():
        train_size = len(_labels(data_root, target.dataset, train=True, limit=budget.train_limit))
        test_labels = _labels(data_root, target.dataset, train=False, limit=budget.test_limit)
        progress(
            f"{target.label}: {seeds} seeds x {budget.epochs} epochs on {train_size:,} "
            f"{target.dataset} images, tested on {len(test_labels):,}"
        )
        runs = []
        for i in range(seeds):
            seed = target.threshold.first_seed + i
            start, cpu_start = time.perf_counter(), time.process_time()
            untrained, accuracy = target.threshold.train(budget, data_root, seed)
            runs.append(
                SeedRun(
                    seed=seed,
                    accuracy=accuracy,
                    untrained_accuracy=untrained,
                    seconds=time.perf_counter() - start,
                    cpu_seconds=time.process_time() - cpu_start,
                )
            )
            progress(
                f"  {target.label} run {i + 1}/{seeds} (seed {seed}): test accuracy "
                f"{accuracy:.4f} (untrained {untrained:.4f})  {runs[-1].seconds:.1f} s "
                f"({runs[-1].cpu_seconds:.1f} s CPU)"
            )
    return Calibration(
        target=target,
        budget=budget,
        runs=tuple(runs),
        rule=threshold_rule([r.accuracy for r in runs], margin=margin),
        train_size=train_size,
        test_size=len(test_labels),
        majority_share=float(np.bincount(test_labels).max() / len(test_labels)),
        device=target.device_words(budget),
    )


def calibrate_profile(
    profile: Profile,
    data_root: Path,
    *,
    seeds: int = DEFAULT_SEEDS,
    margin: float = DEFAULT_MARGIN,
    questions: Sequence[str] = (),
    overrides: Mapping[str, Mapping[str, int]] | None = None,
    progress: Progress = print,
) -> list[Calibration]:
    """Every threshold of ``profile`` (or of the chosen questions or threshold keys, e.g.
    ``q4`` or ``q4.min_test_accuracy_raw``), measured on ``data_root``."""
    _check_known(questions)
    chosen = [
        t for t in targets() if not questions or t.question in questions or t.key in questions
    ]
    budgets = {
        t.question: budget_for(profile, t.question, (overrides or {}).get(t.question))
        for t in chosen
    }
    return [
        calibrate_target(
            t, budgets[t.question], data_root, seeds=seeds, margin=margin, progress=progress
        )
        for t in chosen
    ]


def _check_known(questions: Sequence[str]) -> None:
    """A ConfigError naming what can be chosen, for a question or key nothing declares."""
    known = {t.question for t in targets()} | {t.key for t in targets()}
    known |= {b.question for b in bands()} | {b.key for b in bands()}
    unknown = set(questions) - known
    if unknown:
        raise ConfigError(
            f"nothing to calibrate for {sorted(unknown)}; known: {', '.join(sorted(known))}"
        )


def calibrate_band(
    target: Band,
    budget: Budget,
    data_root: Path,
    *,
    seeds: int,
    progress: Progress = print,
) -> BandCalibration:
    """Train the reference ``seeds`` times at ``budget`` and apply the band rule to the values."""
    with as_data_error():
        labels = _labels(data_root, target.band.dataset, train=True, limit=budget.train_limit)
        train_size = len(labels)
        progress(
            f"{target.key}: {seeds} seeds x {budget.epochs} epochs on {train_size:,} "
            f"{target.band.dataset} images ({target.band.what})"
        )
        runs = []
        for i in range(seeds):
            seed = target.band.first_seed + i
            start, cpu_start = time.perf_counter(), time.process_time()
            value = target.band.measure(budget, data_root, seed)
            runs.append(
                BandRun(
                    seed=seed,
                    value=value,
                    seconds=time.perf_counter() - start,
                    cpu_seconds=time.process_time() - cpu_start,
                )
            )
            progress(
                f"  {target.key} run {i + 1}/{seeds} (seed {seed}): {value:.4f}  "
                f"{runs[-1].seconds:.1f} s ({runs[-1].cpu_seconds:.1f} s CPU)"
            )
    return BandCalibration(
        target=target,
        budget=budget,
        runs=tuple(runs),
        rule=band_rule([r.value for r in runs], margin=target.band.margin),
        train_size=train_size,
        device=target.device_words(budget),
    )


def calibrate_bands(
    profile: Profile,
    data_root: Path,
    *,
    seeds: int = DEFAULT_SEEDS,
    questions: Sequence[str] = (),
    overrides: Mapping[str, Mapping[str, int]] | None = None,
    progress: Progress = print,
) -> list[BandCalibration]:
    """Every band of ``profile`` (or of the chosen questions or band keys), on ``data_root``."""
    _check_known(questions)
    chosen = [b for b in bands() if not questions or b.question in questions or b.key in questions]
    return [
        calibrate_band(
            b,
            budget_for(profile, b.question, (overrides or {}).get(b.question)),
            data_root,
            seeds=seeds,
            progress=progress,
        )
        for b in chosen
    ]


# --- reporting --------------------------------------------------------------------------------


def format_report(
    profile: str,
    calibrations: Sequence[Calibration],
    band_calibrations: Sequence[BandCalibration] = (),
) -> str:
    """Per-seed results, then one line per threshold with the numbers the rule used; then
    each band's runs and the band."""
    heading = ": per-seed test accuracy of the reference" if calibrations else ""
    lines = [f"profile {profile}{heading}"]
    for cal in calibrations:
        lines.append(f"  {cal.target.label}  seed      accuracy  untrained  wall s   CPU s")
        lines += [
            f"      {r.seed:>9}  {r.accuracy:8.4f}  {r.untrained_accuracy:9.4f}  "
            f"{r.seconds:6.1f}  {r.cpu_seconds:6.1f}"
            for r in cal.runs
        ]
    if calibrations:
        lines.append(
            f"thresholds (one more correct run fails with probability < {FAILURE_RATE:g}, "
            "normal model)"
        )
        lines.append(
            "  key                         n     min    mean     std      k  margin  threshold"
            "  never-learns  gap"
        )
    for cal in calibrations:
        r = cal.rule
        verdict = "" if cal.separated else f"  TOO SMALL (< {MIN_SEPARATION:.2f})"
        lines.append(
            f"  {cal.target.key:<26}{r.n:>3}  {r.min:.4f}  {r.mean:.4f}  {r.std:.4f}  {r.k:5.2f}"
            f"  {r.margin:6.3f}  {r.value:9.4f}  {cal.never_learns:12.4f}  {cal.separation:+.3f}"
            f"{verdict}"
        )
    for cal in calibrations:
        if not cal.separated:
            lines.append(
                f"WARNING: {cal.target.key} = {cal.rule.value:.4f} does not separate a correct "
                f"model from one that never learns ({cal.never_learns:.4f}): at "
                f"{cal.budget.epochs} epoch(s) on {cal.train_size:,} images the reference "
                "itself barely learns. "
                "Raise this profile's EPOCHS (or its data) in profiles.toml and calibrate again."
            )
    for band in band_calibrations:
        b = band.rule
        lines.append(f"band {band.target.key}: {band.target.band.what}")
        lines.append("      seed     value  wall s   CPU s")
        lines += [
            f"  {run.seed:>8}  {run.value:8.4f}  {run.seconds:6.1f}  {run.cpu_seconds:6.1f}"
            for run in band.runs
        ]
        lines.append(
            f"  n {b.n}  min {b.min:.4f}  max {b.max:.4f}  mean {b.mean:.4f}  std {b.std:.4f}  "
            f"k {b.k:.2f}  margin {b.margin:g}  ->  [{b.low:.4f}, {b.high:.4f}]"
        )
    return "\n".join(lines)


def _versions() -> str:
    import platform

    import torch

    return f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}"


def band_provenance(cal: BandCalibration, *, date: str, command: str) -> dict[str, Any]:
    """Everything a TA needs to judge a band and to reproduce it."""
    r = cal.rule
    return {
        "kind": "band",
        "what": cal.target.band.what,
        "seeds": [run.seed for run in cal.runs],
        "values": [round(run.value, 6) for run in cal.runs],
        "min": round(r.min, 6),
        "max": round(r.max, 6),
        "mean": round(r.mean, 6),
        "std": round(r.std, 6),
        "k": round(r.k, 4),
        "margin": r.margin,
        "failure_rate": r.failure_rate,
        "rule": r.rule,
        "low": r.low,
        "high": r.high,
        "epochs": cal.budget.epochs,
        "train_size": cal.train_size,
        "device": cal.device,
        "cpu_seconds_per_run": round(statistics.fmean(run.cpu_seconds for run in cal.runs), 1),
        "versions": _versions(),
        "date": date,
        "command": command,
    }


def provenance(cal: Calibration, *, date: str, command: str) -> dict[str, Any]:
    """Everything a TA needs to judge a threshold and to reproduce it."""
    r = cal.rule
    return {
        "seeds": [run.seed for run in cal.runs],
        "accuracies": [round(run.accuracy, 6) for run in cal.runs],
        "untrained_accuracies": [round(run.untrained_accuracy, 6) for run in cal.runs],
        "min": round(r.min, 6),
        "mean": round(r.mean, 6),
        "std": round(r.std, 6),
        "k": round(r.k, 4),
        "margin": r.margin,
        "failure_rate": r.failure_rate,
        "rule": r.rule,
        "never_learns": round(cal.never_learns, 6),
        "separation": round(cal.separation, 6),
        "separated": cal.separated,
        "epochs": cal.budget.epochs,
        "train_size": cal.train_size,
        "test_size": cal.test_size,
        "device": cal.device,
        "cpu_seconds_per_run": round(statistics.fmean(run.cpu_seconds for run in cal.runs), 1),
        "versions": _versions(),
        "date": date,
        "command": command,
    }


# --- the TOML file ----------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TABLE_HEADER = re.compile(r"""\s*\[+\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))""")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    """The few types provenance holds; JSON's string escapes are valid TOML basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"refusing to write a non-finite number ({value}) to the thresholds")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to the thresholds file")


def render_profile_table(
    name: str,
    values: Mapping[str, float],
    provenance_by_key: Mapping[str, Mapping[str, Any]],
    *,
    comment: str = "",
) -> str:
    """``[name]`` with the thresholds, then one ``[name.provenance."key"]`` table per key."""
    lines = [f"[{_toml_key(name)}]"]
    lines += [f"# {line}" for line in comment.splitlines()]
    lines += [f"{_toml_key(k)} = {_toml_value(float(values[k]))}" for k in sorted(values)]
    for key in sorted(provenance_by_key):
        lines += ["", f"[{_toml_key(name)}.provenance.{_toml_key(key)}]"]
        lines += [f"{_toml_key(f)} = {_toml_value(v)}" for f, v in provenance_by_key[key].items()]
    return "\n".join(lines) + "\n"


def _table_owner(line: str) -> str | None:
    """The profile a table header line belongs to (its first dotted key); None if not a header."""
    match = _TABLE_HEADER.match(line)
    if match is None:
        return None
    quoted, literal, bare = match.groups()
    if quoted is not None:
        return str(json.loads(f'"{quoted}"'))
    return literal if literal is not None else bare


def _split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """The header (everything before the first table) and (profile, text) runs of tables."""
    header: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines(keepends=True):
        owner = _table_owner(line)
        if owner is not None and (not sections or sections[-1][0] != owner):
            sections.append((owner, []))
        (sections[-1][1] if sections else header).append(line)
    return "".join(header), [(owner, "".join(body)) for owner, body in sections]


def replace_profile(text: str, name: str, table: str) -> str:
    """``text`` with profile ``name``'s tables replaced by ``table`` (appended if absent).

    Other profiles keep their bytes, comments included; a file without a header gets ours.
    """
    header, sections = _split_sections(text)
    if not header.strip():
        header = HEADER + "\n"
    body = [t for owner, t in sections if owner != name]
    where = next((i for i, (owner, _) in enumerate(sections) if owner == name), len(sections))
    kept_before = sum(1 for owner, _ in sections[:where] if owner != name)
    body.insert(kept_before, table)
    return header + "\n".join(part.rstrip("\n") + "\n" for part in body)


def _atomic_write(path: Path, text: str) -> None:
    """Write beside the target and rename: a crash leaves the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` so two calibrations never interleave their
    read-modify-write of one file (the lock is on the folder because the file is replaced)."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _updated_text(old_text: str, path: Path, profile: str, tables: Mapping[str, Any]) -> str:
    """``old_text`` with ``profile``'s keys from ``tables`` merged in, checked by parsing back."""
    try:
        old = tomllib.loads(old_text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML, refusing to rewrite it: {exc}", path=path) from None
    mine = old.get(profile, {})
    values = {k: v for k, v in mine.items() if not isinstance(v, dict)}
    prov = dict(mine.get("provenance", {}))
    values.update(tables["values"])
    prov.update(tables["provenance"])
    table = render_profile_table(profile, values, prov, comment=tables["comment"])
    new_text = replace_profile(old_text, profile, table)
    others_after = {k: v for k, v in tomllib.loads(new_text).items() if k != profile}
    if others_after != {k: v for k, v in old.items() if k != profile}:
        raise ConfigError(
            f"rewriting profile {profile!r} would change another profile; file left as it was",
            path=path,
        )
    return new_text


def write_thresholds(
    path: Path,
    profile: str,
    calibrations: Sequence[Calibration],
    *,
    command: str,
    band_calibrations: Sequence[BandCalibration] = (),
) -> None:
    """Update ``profile``'s thresholds in ``path``; other profiles and other keys stay as they were.

    The result is parsed back before it replaces the file: if any other profile would read
    differently, nothing is written.
    """
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    values = {cal.target.key: cal.rule.value for cal in calibrations}
    prov = {cal.target.key: provenance(cal, date=date, command=command) for cal in calibrations}
    for band in band_calibrations:
        values[band.target.band.low_key] = band.rule.low
        values[band.target.band.high_key] = band.rule.high
        prov[band.target.key] = band_provenance(band, date=date, command=command)
    tables = {"values": values, "provenance": prov, "comment": f"calibrated {date}: {command}"}
    with _locked(path.parent):
        old_text = path.read_text(encoding="utf-8") if path.exists() else ""
        _atomic_write(path, _updated_text(old_text, path, profile, tables))


# --- the command ------------------------------------------------------------------------------


def _override(text: str) -> tuple[str, str, int]:
    match = re.fullmatch(r"(q\d)\.([A-Z_]+)=(\d+)", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected Q.NAME=INT (e.g. q3.EPOCHS=3), got {text!r}")
    return match.group(1), match.group(2), int(match.group(3))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `dlgrade calibrate`."""
    parser.add_argument("--profile", required=True, help="the profile to calibrate (cpu, gpu, ...)")
    parser.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        help=f"runs per question (default {DEFAULT_SEEDS})",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=DEFAULT_MARGIN,
        help=f"accuracy subtracted below the statistical bound (default {DEFAULT_MARGIN})",
    )
    parser.add_argument(
        "--data-root", type=Path, default=None, help="full data (profiles with data = 'full')"
    )
    parser.add_argument(
        "--profiles", type=Path, default=None, help="a profiles TOML to use instead"
    )
    parser.add_argument(
        "--thresholds", type=Path, default=THRESHOLDS_FILE, help="the thresholds TOML to update"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="QID",
        help="calibrate only this question (e.g. q3), threshold (e.g. q4.min_test_accuracy_raw) "
        "or band (e.g. q3.train_loss_ratio)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_override,
        default=[],
        metavar="Q.NAME=INT",
        help="what-if: override a notebook parameter (e.g. q3.EPOCHS=3); not with --write",
    )
    parser.add_argument(
        "--write", action="store_true", help="update this profile's table in the thresholds file"
    )


def _command_line(args: argparse.Namespace) -> str:
    parts = [f"dlgrade calibrate --profile {args.profile} --seeds {args.seeds}"]
    parts.append(f"--margin {args.margin:g}")
    parts += [f"--only {q}" for q in args.only or ()]
    return " ".join(parts) + " --write"


def run(args: argparse.Namespace) -> int:
    """`dlgrade calibrate`: print the table; with --write, update the thresholds file."""
    if args.seeds < 2:
        raise ConfigError("--seeds must be at least 2 (the rule needs a spread); use 8 or more")
    if args.write and args.overrides:
        raise ConfigError(
            "--set is for what-if runs: a written threshold must match profiles.toml's budget; "
            "edit the profile instead, then calibrate with --write"
        )
    profile = load_profiles(args.profiles).get(args.profile)
    data_root = profile.data_root(args.data_root or default_data_root())
    overrides: dict[str, dict[str, int]] = {}
    for question, name, value in args.overrides:
        overrides.setdefault(question, {})[name] = value
    calibrations = calibrate_profile(
        profile,
        data_root,
        seeds=args.seeds,
        margin=args.margin,
        questions=tuple(args.only or ()),
        overrides=overrides,
        progress=lambda line: print(line, flush=True),
    )
    band_calibrations = calibrate_bands(
        profile,
        data_root,
        seeds=args.seeds,
        questions=tuple(args.only or ()),
        overrides=overrides,
        progress=lambda line: print(line, flush=True),
    )
    print(format_report(profile.name, calibrations, band_calibrations))
    if args.write:
        write_thresholds(
            args.thresholds,
            profile.name,
            calibrations,
            command=_command_line(args),
            band_calibrations=band_calibrations,
        )
        print(f"wrote profile {profile.name!r} to {args.thresholds}")
    return 0
