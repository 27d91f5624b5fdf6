"""The memory a container is held to: its memory cgroup's peak and limit.

Gradescope's 768 MB is a cgroup limit on the whole container (grader, kernels and the page
cache they fill), not on any one process, so per-process ``ru_maxrss`` figures can neither
show a fit nor rule one out. The cgroup's own counters can: cgroup v1's
``memory.max_usage_in_bytes`` and v2's ``memory.peak`` are the high-water mark the kernel
compares with the limit. ``memory_cgroup`` makes such a limit for tests and measurements.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
_MB = 1024 * 1024
_NO_LIMIT = 1 << 60
"""cgroup v1 writes "no limit" as a number near 2**63."""


@dataclass(frozen=True, kw_only=True)
class CgroupPaths:
    """The counter files of one memory cgroup (v1 or v2 names)."""

    folder: Path
    version: int

    @property
    def peak(self) -> Path:
        return self.folder / ("memory.max_usage_in_bytes" if self.version == 1 else "memory.peak")

    @property
    def limit(self) -> Path:
        return self.folder / ("memory.limit_in_bytes" if self.version == 1 else "memory.max")

    @property
    def events(self) -> Path:
        return self.folder / ("memory.oom_control" if self.version == 1 else "memory.events")


@dataclass(frozen=True, kw_only=True)
class ContainerMemory:
    peak_mb: float
    limit_mb: float | None
    """None: no limit is set on this cgroup."""
    oom_kills: int

    def line(self) -> str:
        limit = f" of the {self.limit_mb:.0f} MB limit" if self.limit_mb else " (no limit set)"
        return f"Container memory: peak {self.peak_mb:.0f} MB{limit}, page cache included."


def own_memory_cgroup(
    proc_cgroup: Path = Path("/proc/self/cgroup"), fs: Path = CGROUP_FS
) -> CgroupPaths | None:
    """This process's memory cgroup folder, v1 preferred (where both are mounted, v2 has no
    memory controller); None when neither is readable."""
    try:
        lines = proc_cgroup.read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    found: list[CgroupPaths] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if "memory" in controllers.split(","):
            found.insert(0, CgroupPaths(folder=fs / "memory" / relative, version=1))
        elif controllers == "" and (fs / "cgroup.controllers").exists():
            found.append(CgroupPaths(folder=fs / relative, version=2))
    return next((c for c in found if c.peak.exists()), None)


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def oom_kills(group: CgroupPaths) -> int:
    try:
        text = group.events.read_text(encoding="ascii")
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return 0


def container_memory(group: CgroupPaths | None = None) -> ContainerMemory | None:
    """Peak and limit of ``group`` (default: this process's); None when not readable."""
    group = group or own_memory_cgroup()
    if group is None:
        return None
    peak = _read_int(group.peak)
    if peak is None:
        return None
    limit = _read_int(group.limit)
    return ContainerMemory(
        peak_mb=peak / _MB,
        limit_mb=limit / _MB if limit is not None and limit < _NO_LIMIT else None,
        oom_kills=oom_kills(group),
    )


def can_make_memory_cgroup() -> bool:
    group = own_memory_cgroup()
    return os.geteuid() == 0 and group is not None and os.access(group.folder, os.W_OK)


def _set_limit(group: CgroupPaths, limit: int) -> None:
    group.limit.write_text(str(limit), encoding="ascii")
    with contextlib.suppress(OSError):  # no swapping past the limit either
        if group.version == 1:
            (group.folder / "memory.memsw.limit_in_bytes").write_text(str(limit), "ascii")
        else:
            (group.folder / "memory.swap.max").write_text("0", encoding="ascii")


@contextlib.contextmanager
def memory_cgroup(limit_mb: int | None, name: str = "dlgrade-limit") -> Iterator[CgroupPaths]:
    """A child memory cgroup limited to ``limit_mb`` (None: only measured; root only): a
    process joins it by writing its pid to ``cgroup.procs`` (``join``); removed when its
    processes are gone."""
    parent = own_memory_cgroup()
    if parent is None:
        raise OSError("no memory cgroup is mounted here")
    folder = parent.folder / f"{name}-{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir()
    group = CgroupPaths(folder=folder, version=parent.version)
    try:
        if limit_mb is not None:
            _set_limit(group, limit_mb * _MB)
        yield group
    finally:
        deadline = time.monotonic() + 10
        while True:
            try:
                folder.rmdir()
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)


def join(group: CgroupPaths, pid: int | None = None) -> None:
    (group.folder / "cgroup.procs").write_text(str(pid or os.getpid()), encoding="ascii")
