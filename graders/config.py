"""Configuration as frozen dataclasses loaded from TOML and passed explicitly.

No module-level mutable state: callers load a ``Profiles`` once and hand the chosen
``Profile`` down. The TOML lives in ``graders/config/`` so TAs can edit it (or point
``--profiles`` at their own copy).
"""

from __future__ import annotations

import glob
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from graders.errors import ConfigError
from graders.models import ProfileChoice

CONFIG_DIR = Path(__file__).resolve().parent / "config"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DATA_ROOT = PROJECT_ROOT / "fixtures" / "data"


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What one notebook's kernel may use; enforced by ``graders/sandbox/`` and ``execute.py``."""

    cell_timeout_s: float = 900.0
    """One cell's wall time; on timeout the kernel is interrupted and the next cell runs."""
    total_timeout_s: float = 2400.0
    """All of a notebook's own cells together; past it the remaining cells are not run."""
    probe_timeout_s: float = 300.0
    """The grader's probe, after the student's cells."""
    memory_mb: int = 6144
    """RLIMIT_DATA of the kernel process."""
    cpu_seconds: int = 7200
    """RLIMIT_CPU of the kernel process."""
    max_processes: int = 512
    """RLIMIT_NPROC (the kernel's user; root is exempt)."""
    max_file_mb: int = 1024
    """RLIMIT_FSIZE: the largest file the kernel may write (the probe's results file included)."""
    disk_mb: int = 1024
    """The kernel's working folder under bubblewrap: a tmpfs of this size (it counts as memory)."""
    tmp_mb: int = 256
    """``/tmp`` and ``/dev/shm`` under bubblewrap: a tmpfs of this size each."""
    output_cap_kb: int = 2048
    """Notebook output kept per notebook; the rest is dropped with a note."""


@dataclass(frozen=True, kw_only=True)
class Profile:
    """One hardware profile: data, device, limits and per-question notebook parameters."""

    name: str
    description: str = ""
    data: str = "full"
    """``full`` (the data root placed by ``dlgrade data``) or ``fixtures`` (committed slices)."""
    device: str = "cpu"
    """``cpu`` or ``cuda``: injected as the notebooks' ``DEVICE``."""
    limits: Limits = field(default_factory=Limits)
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Per question id, the values injected after the notebook's ``parameters`` cell."""

    def parameters_for(self, question: str) -> dict[str, Any]:
        return dict(self.parameters.get(question, {}))

    def data_root(self, full_root: Path, fixtures_root: Path | None = None) -> Path:
        """``full_root`` for a ``full`` profile; the fixture slices (the checkout's, unless
        ``fixtures_root`` names another copy, as the student kit's own) for ``fixtures``."""
        if self.data == "fixtures":
            return fixtures_root or FIXTURE_DATA_ROOT
        return full_root


@dataclass(frozen=True, kw_only=True)
class Profiles:
    """All profiles of one TOML file."""

    source: Path
    profiles: Mapping[str, Profile]

    def get(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise ConfigError(
                f"no profile named {name!r}; known: {known}", path=self.source
            ) from None


def _limits(raw: Mapping[str, Any], base: Limits, source: Path) -> Limits:
    known = {f.name for f in fields(Limits)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(
            f"unknown limit(s) {sorted(unknown)}; known: {sorted(known)}", path=source
        )
    for key, value in raw.items():
        # A string or a float where an int belongs would only fail later, inside a kernel run.
        kind = type(getattr(base, key))
        wanted = (int, float) if kind is float else (int,)
        if isinstance(value, bool) or not isinstance(value, wanted) or not 0 < value < math.inf:
            raise ConfigError(
                f"limit {key} must be a positive {kind.__name__}, got {value!r}", path=source
            )
    return replace(base, **{k: type(getattr(base, k))(v) for k, v in raw.items()})


def load_profiles(path: Path | None = None) -> Profiles:
    """Read a profiles TOML; a malformed file is a ConfigError naming the file and the key."""
    source = path or CONFIG_DIR / "profiles.toml"
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("profiles file not found", path=source) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=source) from None
    try:
        base = _limits(raw.get("defaults", {}).get("limits", {}), Limits(), source)
        profiles: dict[str, Profile] = {}
        for name, body in raw.get("profiles", {}).items():
            if body.get("data", "full") not in ("full", "fixtures"):
                raise ConfigError(
                    f"profile {name!r}: data must be 'full' or 'fixtures'", path=source
                )
            profiles[name] = Profile(
                name=name,
                description=str(body.get("description", "")),
                data=str(body.get("data", "full")),
                device=str(body.get("device", "cpu")),
                limits=_limits(body.get("limits", {}), base, source),
                parameters=MappingProxyType(
                    {q: MappingProxyType(dict(v)) for q, v in body.get("parameters", {}).items()}
                ),
            )
    except (TypeError, AttributeError) as exc:
        raise ConfigError(f"malformed profile table: {exc}", path=source) from None
    if not profiles:
        raise ConfigError("no [profiles.*] tables", path=source)
    return Profiles(source=source, profiles=MappingProxyType(profiles))


GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvidia[0-9]*", "/dev/dxg", "/dev/kfd")
"""Device files a GPU driver creates (NVIDIA; WSL's GPU bridge; ROCm, which torch also reports
as CUDA). Without any of them no kernel here can see CUDA, whatever torch would say."""


def gpu_device_present(patterns: Sequence[str] = GPU_DEVICE_NODES) -> bool:
    return any(glob.glob(pattern) for pattern in patterns)


def cuda_visible() -> bool:
    """Whether a kernel started here would see CUDA (same machine, same environment).

    torch is asked only where a GPU's device file exists: importing it costs about 2 s, which a
    one-question grade on a CPU machine would otherwise pay before starting its kernel.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if not gpu_device_present():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def choose_profile(profiles: Profiles, requested: str | None) -> tuple[Profile, ProfileChoice]:
    """Pick the profile, and say why in words a report can show."""
    if requested and requested != "auto":
        profile = profiles.get(requested)
        return profile, ProfileChoice(
            name=profile.name, reason=f"requested explicitly ({requested!r})"
        )
    if cuda_visible():
        profile = profiles.get("gpu")
        return profile, ProfileChoice(name="gpu", reason="CUDA is visible to the grading kernel")
    profile = profiles.get("cpu")
    return profile, ProfileChoice(
        name="cpu", reason="no CUDA device is visible to the grading kernel"
    )


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """Calibrated pass thresholds per profile, written by ``dlgrade calibrate`` with provenance."""

    source: Path
    values: Mapping[str, Mapping[str, float]]
    """profile -> threshold key (e.g. ``q3.min_test_accuracy``) -> value."""
    provenance: Mapping[str, Mapping[str, Any]]
    """profile -> threshold key -> how it was calibrated (seeds, min, mean, margin, ...)."""

    def for_profile(self, name: str) -> Mapping[str, float]:
        return self.values.get(name, MappingProxyType({}))


def load_thresholds(path: Path | None = None) -> Thresholds:
    source = path or CONFIG_DIR / "thresholds.toml"
    if not source.exists():
        return Thresholds(
            source=source, values=MappingProxyType({}), provenance=MappingProxyType({})
        )
    try:
        raw = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=source) from None
    values: dict[str, Mapping[str, float]] = {}
    provenance: dict[str, Mapping[str, Any]] = {}
    try:
        for profile, body in raw.items():
            values[profile] = MappingProxyType(
                {k: float(v) for k, v in body.items() if not isinstance(v, dict)}
            )
            provenance[profile] = MappingProxyType(dict(body.get("provenance", {})))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"malformed thresholds: {exc}", path=source) from None
    return Thresholds(
        source=source, values=MappingProxyType(values), provenance=MappingProxyType(provenance)
    )


@dataclass(frozen=True, kw_only=True)
class GradeOptions:
    """How to grade; every field has the default a student or TA would expect."""

    profile: str | None = None
    """Profile name, or None/``auto`` to pick ``gpu`` or ``cpu`` by what the kernel sees."""
    profiles_file: Path | None = None
    data_root: Path | None = None
    """Root holding MNIST/ and FashionMNIST/ (``dlgrade data`` places it); default ./data."""
    fixtures_root: Path | None = None
    """The data slices a ``fixtures`` profile (quick) reads; default the checkout's
    ``fixtures/data`` (the student kit passes the copy it ships)."""
    only: tuple[str, ...] = ()
    """Grade only these question ids (empty: all)."""
    parallel: int | None = None
    """Kernels at once; default: one per question."""
    cores: int | None = None
    """Cores this grading may use (a batch worker's share); default: the whole machine."""
    seed: int = 0
    rubric_file: Path | None = None
    public_only: bool = False
    """Run only the visible tests (students' self-check); hidden ones are neither run nor shown."""
    thresholds_file: Path | None = None
    sandbox: str | None = None
    """``auto`` (default: bubblewrap, else the sandbox user), or one mode asked for by name."""
    allow_unconfined: bool = False
    """Run student code even where nothing can confine it (trusted notebooks only)."""
