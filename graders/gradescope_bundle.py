"""The Gradescope autograder zip, and the entry point its ``run_autograder`` script calls.

The zip holds the grader as a source copy (``dlgrade/``), not a wheel installed into the
virtual environment: site-packages must be readable by the unprivileged user the student's
kernel runs as, while the rubric, the hidden tests and the reference solutions must not be.
So the venv gets only the pinned dependencies and the grader runs from
``/autograder/source/dlgrade``, which only root can read (``secure_source``).

The root ``/autograder`` comes from ``$DLGRADE_AUTOGRADER_ROOT`` so the whole flow runs in a
temporary folder in tests.
"""

from __future__ import annotations

import json
import os
import resource
import stat
import tomllib
import traceback
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders.config import PROJECT_ROOT, load_profiles
from graders.container_limits import ContainerMemory, container_memory
from graders.errors import ConfigError
from graders.pipeline import GradeOptions
from graders.render.gradescope import JsonDict, safe_grade_to_gradescope, write_results_json

ROOT_ENV = "DLGRADE_AUTOGRADER_ROOT"
PROFILE_ENV = "DLGRADE_GRADESCOPE_PROFILE"
DEFAULT_ROOT = Path("/autograder")
DEFAULT_PROFILE = "quick"
"""The only calibrated profile measured to fit Gradescope's defaults (docs/gradescope.md)."""
PROJECT_DIR = "dlgrade"
"""The project copy's folder inside the zip (and so under /autograder/source)."""
TEMPLATES = Path(__file__).resolve().parent / "bundle"
_COPIED = ("pyproject.toml", "graders", "reference", "reports", "fixtures/data")
_CONFIG_FILES = ("profiles.toml", "rubric.toml", "thresholds.toml")
_SKIPPED = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
"""One timestamp for every member, so the same tree always gives the same zip."""
_MB = 1024  # ru_maxrss is in KiB on Linux


@dataclass(frozen=True, kw_only=True)
class BundleSettings:
    """``bundle.toml`` in the zip: what a course may change without rebuilding."""

    profile: str = DEFAULT_PROFILE
    parallel: int = 1
    """Kernels at once: one, so peak memory is one kernel's plus the grader's."""


def autograder_root() -> Path:
    return Path(os.environ.get(ROOT_ENV) or DEFAULT_ROOT)


def _project_files(project_root: Path) -> Iterator[tuple[Path, str]]:
    for name in _COPIED:
        top = project_root / name
        paths = [top] if top.is_file() else sorted(top.rglob("*"))
        for path in paths:
            if not path.is_file() or path.is_symlink() or path.suffix == ".pyc":
                continue
            if _SKIPPED & set(path.relative_to(project_root).parts):
                continue
            yield path, f"{PROJECT_DIR}/{path.relative_to(project_root).as_posix()}"


def _requirements(project_root: Path) -> str:
    """The pinned runtime dependencies of pyproject.toml, for ``pip install -r``."""
    raw = tomllib.loads((project_root / "pyproject.toml").read_text(encoding="utf-8"))
    return "\n".join(raw["project"]["dependencies"]) + "\n"


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)


def build_bundle(
    out_zip: Path,
    *,
    project_root: Path = PROJECT_ROOT,
    profile: str = DEFAULT_PROFILE,
    parallel: int = 1,
) -> Path:
    """Write the autograder zip: scripts at its root (Gradescope wants no enclosing folder)."""
    config_dir = project_root / "graders" / "config"
    load_profiles(config_dir / "profiles.toml").get(profile)  # a typo fails here, not on upload
    if parallel < 1:
        raise ConfigError(f"parallel must be at least 1, got {parallel}")
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    partial = out_zip.with_name(f".{out_zip.name}.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for script in ("setup.sh", "run_autograder"):
            _add(archive, script, (TEMPLATES / script).read_bytes(), 0o755)
        settings = f'profile = "{profile}"\nparallel = {parallel}\n'
        _add(archive, "bundle.toml", settings.encode())
        _add(archive, "requirements.txt", _requirements(project_root).encode())
        for name in _CONFIG_FILES:
            _add(archive, f"config/{name}", (config_dir / name).read_bytes())
        for path, name in _project_files(project_root):
            _add(archive, name, path.read_bytes())
    partial.replace(out_zip)
    return out_zip


def read_settings(source: Path) -> BundleSettings:
    """``bundle.toml``, with ``$DLGRADE_GRADESCOPE_PROFILE`` over its profile."""
    path = source / "bundle.toml"
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    profile = os.environ.get(PROFILE_ENV) or str(raw.get("profile", DEFAULT_PROFILE))
    parallel = raw.get("parallel", 1)
    if isinstance(parallel, bool) or not isinstance(parallel, int) or parallel < 1:
        raise ConfigError(f"parallel must be a positive integer, got {parallel!r}", path=path)
    return BundleSettings(profile=profile, parallel=parallel)


def secure_source(root: Path) -> None:
    """Make ``root/source`` root-only, except the path down to the public fixture data slices.

    The ``quick`` profile's kernels read ``dlgrade/fixtures/data``; the folders above it become
    search-only (0711: no listing), and every other entry is closed to group and others.
    """
    source = root / "source"
    for path in (source, *source.rglob("*")):
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.lstat().st_mode) & ~0o077)
    fixtures = source / PROJECT_DIR / "fixtures"
    for folder in (source, source / PROJECT_DIR, fixtures):
        if folder.is_dir():
            folder.chmod(0o711)
    data = fixtures / "data"
    for path in (data, *data.rglob("*")) if data.is_dir() else ():
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def _previous_score(metadata_path: Path) -> str | None:
    """A line about the last earlier submission's score, from Gradescope's metadata."""
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        previous = metadata.get("previous_submissions") or []
        last = previous[-1]
        score = float(last.get("score"))
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError):
        return None
    when = last.get("submission_time") or ""
    return f"Your previous submission{f' ({when})' if when else ''} scored {score:g}."


def peak_memory_mb() -> tuple[float, float]:
    """Peak RSS of this process and of the largest finished child (a kernel), in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _MB
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / _MB
    return own, child


@dataclass(frozen=True, kw_only=True)
class _Measured:
    """Peak memory, read once after grading: the output's lines and extra_data agree."""

    own_mb: float
    child_mb: float
    container: ContainerMemory | None

    @classmethod
    def now(cls) -> _Measured:
        own, child = peak_memory_mb()
        return cls(own_mb=own, child_mb=child, container=container_memory())


def _notes(root: Path, settings: BundleSettings, measured: _Measured) -> list[str]:
    own, child = measured.own_mb, measured.child_mb
    lines = [
        f"Grading settings: profile {settings.profile}, {settings.parallel} kernel(s) at once.",
        f"Peak memory: grader {own:.0f} MB, largest kernel {child:.0f} MB "
        f"(at most {own + child:.0f} MB together).",
    ]
    if measured.container is not None:
        lines.append(measured.container.line())
    previous = _previous_score(root / "submission_metadata.json")
    if previous:
        lines.append(previous)
    return lines


def _options(root: Path, settings: BundleSettings) -> GradeOptions:
    config = root / "source" / "config"

    def pick(name: str) -> Path | None:
        return config / name if (config / name).exists() else None

    return GradeOptions(
        profile=settings.profile,
        parallel=settings.parallel,
        data_root=root / "data",
        profiles_file=pick("profiles.toml"),
        rubric_file=pick("rubric.toml"),
        thresholds_file=pick("thresholds.toml"),
    )


def run_autograder(root: Path | None = None) -> JsonDict:
    """Grade ``root/submission`` into ``root/results/results.json``; always leaves a valid file."""
    root = root or autograder_root()
    results_path = root / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    settings = BundleSettings()
    try:
        settings = read_settings(root / "source")
        options: GradeOptions | None = _options(root, settings)
        if os.geteuid() == 0:
            secure_source(root)
    except Exception as exc:  # a broken bundle.toml still gets graded, with defaults
        print(f"dlgrade gradescope: {exc}; grading with the defaults", flush=True)
        options = None
    results = safe_grade_to_gradescope(root / "submission", results_path, options)
    try:
        measured = _Measured.now()
        notes = _notes(root, settings, measured)
        return _annotate(results, results_path, notes, measured)
    except Exception:  # the graded file is already valid; the notes are not worth losing it
        traceback.print_exc()
        return results


def _annotate(
    results: JsonDict,
    path: Path,
    notes: list[str],
    measured: _Measured,
) -> JsonDict:
    """Add the run notes to the output students and staff see, and the numbers to extra_data."""
    print("\n".join(notes), flush=True)
    annotated = dict(results)
    annotated["output"] = "\n".join([str(results.get("output", "")), "", *notes]).strip()
    annotated["extra_data"] = {
        **results.get("extra_data", {}),
        "peak_rss_mb": {"grader": round(measured.own_mb), "kernel": round(measured.child_mb)},
    }
    container = measured.container
    if container is not None:
        annotated["extra_data"]["container_memory_mb"] = {
            "peak": round(container.peak_mb),
            "limit": round(container.limit_mb) if container.limit_mb else None,
        }
    write_results_json(annotated, path)
    return annotated
