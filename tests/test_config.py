"""Profiles: the shipped TOML loads, a malformed one says which file and key, auto says why."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from graders import config
from graders.config import (
    CONFIG_DIR,
    FIXTURE_DATA_ROOT,
    Limits,
    choose_profile,
    load_profiles,
)
from graders.errors import ConfigError

SHIPPED = CONFIG_DIR / "profiles.toml"

MINIMAL = """
[profiles.cpu]
device = "cpu"
[profiles.gpu]
device = "cuda"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_profiles_load_with_defaults_merged_under_each():
    raw = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    profiles = load_profiles()
    assert {"cpu", "gpu", "quick"} <= set(profiles.profiles)
    assert profiles.source == SHIPPED
    for name, body in raw["profiles"].items():
        profile = profiles.get(name)
        expected = {**raw["defaults"]["limits"], **body.get("limits", {})}
        assert dataclasses.asdict(profile.limits) == expected
        assert profile.device == body["device"]
        for qid, params in body.get("parameters", {}).items():
            assert profile.parameters_for(qid) == params


def test_the_shipped_profiles_fit_their_hardware():
    profiles = load_profiles()
    assert profiles.get("gpu").device == "cuda"
    assert profiles.get("cpu").device == "cpu"
    quick = profiles.get("quick")
    assert quick.device == "cpu"
    assert quick.data_root(Path("/nonexistent")) == FIXTURE_DATA_ROOT
    assert (FIXTURE_DATA_ROOT / "MNIST" / "raw").is_dir()
    assert profiles.get("cpu").data_root(Path("/full")) == Path("/full")


def test_profiles_are_read_only():
    quick = load_profiles().get("quick")
    with pytest.raises(dataclasses.FrozenInstanceError):
        quick.device = "cuda"  # type: ignore[misc]
    with pytest.raises(TypeError):
        quick.parameters["q4"]["EPOCHS"] = 100  # type: ignore[index]
    params = quick.parameters_for("q4")
    params["EPOCHS"] = 100  # a caller's copy, not the profile's
    assert quick.parameters_for("q4")["EPOCHS"] != 100


def test_a_profile_without_limits_gets_the_defaults(tmp_path):
    path = write(tmp_path, "[defaults.limits]\nmemory_mb = 1000\n" + MINIMAL)
    cpu = load_profiles(path).get("cpu")
    assert cpu.limits == dataclasses.replace(Limits(), memory_mb=1000)


@pytest.mark.parametrize(
    "text",
    [
        "[defaults.limits]\nmemroy_mb = 1000\n" + MINIMAL,
        MINIMAL + "[profiles.cpu.limits]\nmemroy_mb = 1000\n",
    ],
)
def test_an_unknown_limit_is_a_config_error_naming_the_file_and_key(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="memroy_mb") as info:
        load_profiles(path)
    assert info.value.path == path
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "value", ['"120"', "true", "[1, 2]", "-5", "0", "inf", "nan", "{ a = 1 }"], ids=lambda v: v
)
def test_a_limit_that_is_not_a_positive_number_is_a_config_error(tmp_path, value):
    path = write(tmp_path, MINIMAL + f"[profiles.cpu.limits]\ncell_timeout_s = {value}\n")
    with pytest.raises(ConfigError, match="cell_timeout_s") as info:
        load_profiles(path)
    assert info.value.path == path


def test_an_integer_limit_may_be_written_as_a_whole_float(tmp_path):
    path = write(
        tmp_path, MINIMAL + "[profiles.cpu.limits]\ncell_timeout_s = 30\nmemory_mb = 512\n"
    )
    limits = load_profiles(path).get("cpu").limits
    assert limits.cell_timeout_s == 30 and limits.memory_mb == 512


@pytest.mark.parametrize(
    "text",
    [
        "[profiles.cpu\n",  # not TOML
        "profiles = 3\n",
        "[profiles]\ncpu = 3\n",
        MINIMAL + "[profiles.cpu.parameters]\nq3 = 5\n",
        MINIMAL + "[profiles.quick]\ndata = 'somewhere'\n",
        "[defaults.limits]\nmemory_mb = 10\n",  # no profiles at all
    ],
    ids=[
        "bad-toml",
        "profiles-not-table",
        "profile-not-table",
        "params-not-table",
        "bad-data",
        "empty",
    ],
)
def test_a_malformed_file_is_a_config_error_naming_it(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_profiles(path)
    assert info.value.path == path


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_profiles(tmp_path / "nope.toml")


def test_an_unknown_profile_lists_the_known_ones():
    with pytest.raises(ConfigError, match="quick"):
        load_profiles().get("turbo")


def test_choose_an_explicit_profile_and_say_so(monkeypatch):
    monkeypatch.setattr(config, "cuda_visible", lambda: True)
    profile, choice = choose_profile(load_profiles(), "quick")
    assert profile.name == choice.name == "quick"
    assert "explicit" in choice.reason and "quick" in choice.reason


@pytest.mark.parametrize("requested", [None, "auto"])
@pytest.mark.parametrize(("cuda", "expected"), [(True, "gpu"), (False, "cpu")])
def test_auto_picks_by_what_the_kernel_would_see(monkeypatch, requested, cuda, expected):
    monkeypatch.setattr(config, "cuda_visible", lambda: cuda)
    profile, choice = choose_profile(load_profiles(), requested)
    assert profile.name == choice.name == expected
    assert "CUDA" in choice.reason
    assert ("no CUDA" in choice.reason) is not cuda


@pytest.mark.parametrize("hidden", ["", "-1"])
def test_cuda_hidden_by_the_environment_is_not_visible(monkeypatch, hidden):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
    assert config.cuda_visible() is False


def test_without_a_gpu_device_file_cuda_is_not_visible_and_torch_is_not_imported(tmp_path):
    """A CPU machine answers without torch (2 s of imports a q1 grade would pay for nothing)."""
    assert config.gpu_device_present([str(tmp_path / "nvidia[0-9]*")]) is False
    (tmp_path / "nvidia0").touch()
    assert config.gpu_device_present([str(tmp_path / "nvidia[0-9]*")]) is True
    if config.gpu_device_present():
        pytest.skip("this machine has a GPU device file: torch must be asked here")
    code = (
        "import sys; from graders import config; "
        "print(config.cuda_visible(), 'torch' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout.split()
    assert out == ["False", "False"]


def test_with_a_gpu_device_file_torch_decides(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(config, "gpu_device_present", lambda: True)
    torch = pytest.importorskip("torch")
    assert config.cuda_visible() is torch.cuda.is_available()


def test_an_integer_limit_written_with_a_fraction_is_a_config_error(tmp_path):
    path = write(tmp_path, MINIMAL + "[profiles.cpu.limits]\nmemory_mb = 512.5\n")
    with pytest.raises(ConfigError, match="memory_mb"):
        load_profiles(path)
