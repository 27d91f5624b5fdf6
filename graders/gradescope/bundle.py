"""The Gradescope autograder zip: what it holds, how it is laid out, and the source it protects.

The zip holds the grader as a source copy (``dlgrade/``), not a wheel installed into the
virtual environment: site-packages must be readable by the unprivileged user the student's
kernel runs as, while the rubric, the hidden tests and the reference solutions must not be.
So the venv gets only the pinned dependencies and the grader runs from
``/autograder/source/dlgrade``, which only root can read (``secure_source``).

The root ``/autograder`` comes from ``$DLGRADE_AUTOGRADER_ROOT`` so the whole flow runs in a
temporary folder in tests.
"""

from __future__ import annotations

import os
import stat
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graders.config import PROJECT_ROOT, load_profiles
from graders.errors import ConfigError

ROOT_ENV = "DLGRADE_AUTOGRADER_ROOT"
PROFILE_ENV = "DLGRADE_GRADESCOPE_PROFILE"
DEFAULT_ROOT = Path("/autograder")
DEFAULT_PROFILE = "quick"
"""The only calibrated profile measured to fit Gradescope's defaults (docs/gradescope.md)."""
PROJECT_DIR = "dlgrade"
"""The project copy's folder inside the zip (and so under /autograder/source)."""
TEMPLATES = Path(__file__).resolve().parent / "templates"
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
