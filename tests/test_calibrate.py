"""`dlgrade calibrate`: the threshold rule, the TOML it writes, and the shipped calibration."""

from __future__ import annotations

import math
import random
import statistics
import tomllib
from pathlib import Path

import pytest

from graders import calibrate
from graders.calibrate import (
    MIN_SEPARATION,
    BandCalibration,
    BandRun,
    Calibration,
    SeedRun,
    band_rule,
    budget_for,
    render_profile_table,
    replace_profile,
    student_t_quantile,
    threshold_rule,
    write_thresholds,
)
from graders.cli import main
from graders.config import load_profiles, load_thresholds
from graders.errors import ConfigError
from graders.questions.api import Budget

KEYS = ("q3.min_test_accuracy", "q4.min_test_accuracy", "q4.min_test_accuracy_raw")
BANDS = ("q3.train_loss_ratio",)
"""Calibrated bands: each writes ``<key>_low`` and ``<key>_high``, its provenance under ``key``."""
BAND_KEYS = tuple(f"{b}_{side}" for b in BANDS for side in ("low", "high"))


# --- the rule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [  # printed t tables (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2)
        (0.975, 1, 12.706),
        (0.975, 4, 2.776),
        (0.999, 4, 7.173),
        (0.999, 7, 4.785),
        (0.999, 10, 4.144),
        (0.999, 30, 3.385),
    ],
)
def test_t_quantile_matches_printed_tables(p: float, df: int, expected: float) -> None:
    assert student_t_quantile(p, df) == pytest.approx(expected, abs=1e-3)


def test_t_quantile_tends_to_the_normal_one() -> None:
    assert student_t_quantile(0.999, 100_000) == pytest.approx(3.0902, abs=1e-3)


def test_rule_sits_below_every_run_by_at_least_the_margin() -> None:
    accuracies = [0.86, 0.85, 0.87, 0.865, 0.855]
    result = threshold_rule(accuracies, margin=0.02)
    assert result.value <= min(accuracies) - 0.02
    assert result.value <= result.mean - result.k * result.std - 0.02 + 1e-12
    assert result.n == 5
    assert result.std == pytest.approx(statistics.stdev(accuracies))
    assert result.k == pytest.approx(student_t_quantile(0.999, 4) * math.sqrt(1.2))


def test_rule_is_the_min_minus_margin_when_runs_agree() -> None:
    assert threshold_rule([0.9, 0.9, 0.9], margin=0.05).value == pytest.approx(0.85)


def test_more_spread_or_more_margin_lowers_the_threshold() -> None:
    tight = threshold_rule([0.80, 0.81, 0.79, 0.80], margin=0.01).value
    loose = threshold_rule([0.70, 0.90, 0.75, 0.85], margin=0.01).value
    wider_margin = threshold_rule([0.80, 0.81, 0.79, 0.80], margin=0.05).value
    assert loose < tight
    assert wider_margin < tight


def test_rule_never_goes_below_zero_and_rounds_down() -> None:
    assert threshold_rule([0.1, 0.5], margin=0.0).value == 0.0
    value = threshold_rule([0.81234, 0.81234, 0.81234], margin=0.0).value
    assert value == 0.8123


def test_rule_fails_a_correct_run_rarely_under_its_model() -> None:
    """Simulate: calibrate on 8 normal runs, then test one more correct run, many times."""
    rng = random.Random(1)
    failures, trials = 0, 4000
    for _ in range(trials):
        runs = [rng.gauss(0.6, 0.03) for _ in range(8)]
        threshold = threshold_rule(runs, margin=0.0).value
        failures += rng.gauss(0.6, 0.03) < threshold
    assert failures / trials < 0.004  # 1/1000 expected; 4 sigma of binomial noise above it


def test_rule_rejects_too_few_runs_and_bad_margins() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        threshold_rule([0.9], margin=0.02)
    with pytest.raises(ValueError, match="margin"):
        threshold_rule([0.9, 0.8], margin=-0.1)


def test_band_holds_every_run_and_the_two_sided_bound_widened_by_the_margin() -> None:
    values = [1.02, 1.03, 1.025, 1.04, 1.031]
    band = band_rule(values, margin=0.1)
    k = student_t_quantile(1 - 0.001 / 2, 4) * math.sqrt(1.2)
    assert band.k == pytest.approx(k)
    assert band.low <= min(values) / 1.1 and band.high >= max(values) * 1.1
    assert band.low == pytest.approx((band.mean - k * band.std) / 1.1, abs=1e-4)
    assert band.high == pytest.approx((band.mean + k * band.std) * 1.1, abs=1e-4)
    assert band.low == math.floor(band.low * 1e4) / 1e4  # rounded outwards, 4 decimals
    assert "two-sided" in band.rule


def test_band_leaves_a_correct_run_outside_rarely_under_its_model() -> None:
    rng = random.Random(2)
    outside, trials = 0, 4000
    for _ in range(trials):
        runs = [rng.gauss(1.03, 0.01) for _ in range(8)]
        band = band_rule(runs, margin=0.0)
        outside += not band.low <= rng.gauss(1.03, 0.01) <= band.high
    assert outside / trials < 0.004  # 1/1000 expected


def test_band_rejects_too_few_runs_and_bad_margins() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        band_rule([1.0], margin=0.1)
    with pytest.raises(ValueError, match="margin"):
        band_rule([1.0, 1.1], margin=-0.1)


# --- budgets ----------------------------------------------------------------------------------


def test_budget_comes_from_the_profile_and_overrides_win() -> None:
    quick = load_profiles().get("quick")
    params = quick.parameters_for("q4")
    budget = budget_for(quick, "q4")
    assert budget.epochs == params["EPOCHS"]
    assert budget.train_limit == params.get("TRAIN_LIMIT")
    assert budget_for(quick, "q4", {"EPOCHS": 7}).epochs == 7


def test_budget_without_epochs_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        '[profiles.x]\ndata = "fixtures"\n[profiles.x.parameters.q3]\nTRAIN_LIMIT = 5\n'
    )
    with pytest.raises(ConfigError, match="EPOCHS"):
        budget_for(load_profiles(path).get("x"), "q3")


# --- the file ---------------------------------------------------------------------------------


def _calibration(key: str, accuracies: list[float]) -> Calibration:
    target = next(t for t in calibrate.targets() if t.key == key)
    runs = tuple(
        SeedRun(seed=i, accuracy=a, untrained_accuracy=0.1, seconds=1.0, cpu_seconds=1.0)
        for i, a in enumerate(accuracies)
    )
    return Calibration(
        target=target,
        budget=Budget(epochs=2, train_limit=100),
        runs=runs,
        rule=threshold_rule(accuracies, margin=0.02),
        train_size=100,
        test_size=50,
        majority_share=0.12,
        device="cpu",
    )


def _band(key: str, values: list[float]) -> BandCalibration:
    target = next(b for b in calibrate.bands() if b.key == key)
    return BandCalibration(
        target=target,
        budget=Budget(epochs=2, train_limit=100),
        runs=tuple(
            BandRun(seed=i, value=v, seconds=1.0, cpu_seconds=1.0) for i, v in enumerate(values)
        ),
        rule=band_rule(values, margin=target.band.margin),
        train_size=100,
        device="cpu",
    )


OTHERS = """\
# my own header, kept
# second line

[cpu]
"q3.min_test_accuracy" = 0.75
"q4.min_test_accuracy" = 0.8

[cpu.provenance."q3.min_test_accuracy"]
seeds = [0, 1]  # a hand comment
min = 0.8

[gpu]
"q3.min_test_accuracy" = 0.8
"""


def test_writing_one_profile_keeps_the_others_and_the_header(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(OTHERS, encoding="utf-8")
    cals = [_calibration(k, [0.6, 0.62, 0.61]) for k in KEYS]
    write_thresholds(path, "quick", cals, command="dlgrade calibrate --profile quick --write")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# my own header, kept\n# second line\n")
    assert "seeds = [0, 1]  # a hand comment\n" in text  # other profiles keep their bytes
    loaded = load_thresholds(path)
    assert dict(loaded.for_profile("cpu")) == {KEYS[0]: 0.75, KEYS[1]: 0.8}
    assert dict(loaded.for_profile("gpu")) == {KEYS[0]: 0.8}
    quick = loaded.for_profile("quick")
    assert quick[KEYS[0]] == cals[0].rule.value
    prov = loaded.provenance["quick"][KEYS[0]]
    assert prov["accuracies"] == [0.6, 0.62, 0.61]
    assert prov["command"].endswith("--write")


def test_a_band_is_written_as_two_thresholds_and_its_provenance(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(OTHERS, encoding="utf-8")
    band = _band(BANDS[0], [1.02, 1.03, 1.04])
    write_thresholds(
        path, "cpu", [_calibration(KEYS[1], [0.9, 0.91])], command="c", band_calibrations=[band]
    )
    loaded = load_thresholds(path)
    cpu = loaded.for_profile("cpu")
    assert (cpu[BAND_KEYS[0]], cpu[BAND_KEYS[1]]) == (band.rule.low, band.rule.high)
    assert cpu[KEYS[0]] == 0.75  # the keys not recalibrated are kept
    prov = loaded.provenance["cpu"][BANDS[0]]
    assert prov["kind"] == "band" and prov["values"] == [1.02, 1.03, 1.04]
    assert (prov["low"], prov["high"]) == (band.rule.low, band.rule.high)


def test_rewriting_a_profile_in_the_middle_keeps_its_place(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text(OTHERS, encoding="utf-8")
    write_thresholds(path, "cpu", [_calibration(KEYS[1], [0.9, 0.91])], command="c")
    text = path.read_text(encoding="utf-8")
    assert text.index("[cpu]") < text.index("[gpu]")
    cpu = load_thresholds(path).for_profile("cpu")
    assert cpu[KEYS[0]] == 0.75  # a key not recalibrated keeps its value
    assert cpu[KEYS[1]] == threshold_rule([0.9, 0.91], margin=0.02).value
    assert "a hand comment" not in text  # the rewritten profile's old tables are gone


def test_a_new_file_gets_the_generated_header(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "thresholds.toml"
    write_thresholds(path, "quick", [_calibration(KEYS[0], [0.5, 0.55])], command="c")
    text = path.read_text(encoding="utf-8")
    assert text.startswith(calibrate.HEADER)
    assert list(tomllib.loads(text)) == ["quick"]
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was renamed, not left


def test_an_unreadable_file_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.toml"
    path.write_text("[cpu\nbroken", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        write_thresholds(path, "quick", [_calibration(KEYS[0], [0.5, 0.55])], command="c")
    assert path.read_text(encoding="utf-8") == "[cpu\nbroken"


def test_quoted_profile_names_are_spliced_too() -> None:
    table = render_profile_table("my profile", {KEYS[0]: 0.5}, {KEYS[0]: {"min": 0.6}})
    text = replace_profile(OTHERS, "my profile", table)
    again = replace_profile(text, "my profile", table.replace("0.5", "0.4"))
    parsed = tomllib.loads(again)
    assert parsed["my profile"][KEYS[0]] == 0.4
    assert parsed["cpu"][KEYS[0]] == 0.75


# --- the shipped calibration ------------------------------------------------------------------


def test_every_profile_is_calibrated_with_provenance() -> None:
    """A profile added (or a budget changed) without `dlgrade calibrate --write` fails here."""
    profiles = load_profiles()
    shipped = load_thresholds()
    for name, profile in profiles.profiles.items():
        redo = f"run `dlgrade calibrate --profile {name} --write`"
        for key in BAND_KEYS:
            assert key in shipped.for_profile(name), f"{name}: no {key}; {redo}"
        for key in (*KEYS, *BANDS):
            prov = shipped.provenance[name][key]
            values = "values" if prov.get("kind") == "band" else "accuracies"
            assert key in BANDS or key in shipped.for_profile(name), f"{name}: no {key}; {redo}"
            for field in ("seeds", values, "min", "mean", "margin", "rule", "date"):
                assert field in prov, f"{name} {key}: provenance lacks {field}; {redo}"
            budget = budget_for(profile, key.split(".")[0])
            assert prov["epochs"] == budget.epochs, f"{name} {key}: EPOCHS changed; {redo}"
            if budget.train_limit is not None:
                assert prov["train_size"] <= budget.train_limit, f"{name} {key}: {redo}"


def test_shipped_thresholds_follow_the_rule_from_their_own_runs() -> None:
    """Nobody edited a value by hand: the recorded runs give back the recorded threshold."""
    shipped = load_thresholds()
    for name, by_key in shipped.provenance.items():
        for key, prov in by_key.items():
            if prov.get("kind") == "band":
                band = band_rule(prov["values"], margin=prov["margin"])
                values = shipped.for_profile(name)
                assert (values[f"{key}_low"], values[f"{key}_high"]) == (band.low, band.high)
                assert band.low <= min(prov["values"]) and max(prov["values"]) <= band.high
                continue
            result = threshold_rule(prov["accuracies"], margin=prov["margin"])
            assert shipped.for_profile(name)[key] == pytest.approx(result.value, abs=1.5e-4)
            assert shipped.for_profile(name)[key] <= min(prov["accuracies"]) - prov["margin"]


def test_shipped_thresholds_separate_learning_from_not_learning() -> None:
    """A threshold at chance level passes a model that never trained: the budget is too small."""
    shipped = load_thresholds()
    for name, by_key in shipped.provenance.items():
        for key, prov in by_key.items():
            if prov.get("kind") == "band":
                continue  # a band is no pass threshold: nothing that never learns to sit above
            gap = shipped.for_profile(name)[key] - prov["never_learns"]
            assert gap >= MIN_SEPARATION, (
                f"{name} {key}: threshold only {gap:+.3f} above a model that never learns "
                f"({prov['never_learns']}); raise EPOCHS for this profile and recalibrate"
            )


# --- end to end -------------------------------------------------------------------------------

TINY = """\
[profiles.tiny]
data = "fixtures"
device = "cpu"
[profiles.tiny.parameters.q3]
EPOCHS = 1
TRAIN_LIMIT = 128
[profiles.tiny.parameters.q4]
EPOCHS = 1
TRAIN_LIMIT = 64
TEST_LIMIT = 100
"""


@pytest.mark.slow
def test_calibrate_command_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(TINY, encoding="utf-8")
    out = tmp_path / "thresholds.toml"
    out.write_text(OTHERS, encoding="utf-8")
    argv = ["calibrate", "--profile", "tiny", "--seeds", "2", "--profiles", str(profiles)]
    assert main([*argv, "--thresholds", str(out), "--write"]) == 0
    printed = capsys.readouterr().out
    assert "q3 run 2/2 (seed 1)" in printed and "q4 run 1/2 (seed 80085)" in printed
    assert "q4 (raw 0-255 pixels) run 2/2 (seed 80086)" in printed
    assert "TOO SMALL" in printed  # one epoch on 128 images cannot separate
    assert "q3.train_loss_ratio run 2/2 (seed 1)" in printed
    loaded = load_thresholds(out)
    assert set(loaded.for_profile("tiny")) == {*KEYS, *BAND_KEYS}
    assert loaded.provenance["tiny"][BANDS[0]]["train_size"] == 128
    prov = loaded.provenance["tiny"][KEYS[1]]
    assert prov["seeds"] == [80085, 80086]
    assert (prov["train_size"], prov["test_size"], prov["epochs"]) == (64, 100, 1)
    assert prov["separated"] is False
    assert dict(loaded.for_profile("cpu")) == {KEYS[0]: 0.75, KEYS[1]: 0.8}


def test_one_threshold_can_be_calibrated_alone_and_raw_pixels_train_differently(
    tmp_path: Path,
) -> None:
    """``--only q4.min_test_accuracy_raw`` runs that target only, on 0-255 pixels: the same
    seeds then end elsewhere than on /255 pixels (the map reached the reference)."""
    profiles = tmp_path / "profiles.toml"
    profiles.write_text(TINY, encoding="utf-8")
    tiny = load_profiles(profiles).get("tiny")
    root = tiny.data_root(tmp_path)
    quiet = lambda _line: None  # noqa: E731
    (raw,) = calibrate.calibrate_profile(
        tiny, root, seeds=2, questions=("q4.min_test_accuracy_raw",), progress=quiet
    )
    (unit,) = calibrate.calibrate_profile(tiny, root, seeds=2, questions=(KEYS[1],), progress=quiet)
    assert raw.target.key == "q4.min_test_accuracy_raw" and unit.target.key == KEYS[1]
    assert [r.seed for r in raw.runs] == [r.seed for r in unit.runs] == [80085, 80086]
    assert [r.accuracy for r in raw.runs] != [r.accuracy for r in unit.runs]
    with pytest.raises(ConfigError, match=r"q4\.min_test_accuracy_raw"):
        calibrate.calibrate_profile(tiny, root, seeds=2, questions=("q5",), progress=quiet)
    assert calibrate.calibrate_bands(tiny, root, seeds=2, questions=(KEYS[2],)) == []
    (band,) = calibrate.calibrate_bands(tiny, root, seeds=2, questions=BANDS, progress=quiet)
    assert band.target.key == BANDS[0] and [r.seed for r in band.runs] == [0, 1]
    assert band.rule.low <= min(r.value for r in band.runs)


def test_what_if_overrides_are_never_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "thresholds.toml"
    argv = ["calibrate", "--profile", "quick", "--set", "q3.EPOCHS=2", "--write"]
    assert main([*argv, "--thresholds", str(out)]) == 4
    assert "--set is for what-if runs" in capsys.readouterr().err
    assert not out.exists()
