"""The limits a container is held to, as cgroups: memory (peak and limit) and CPU (a quota).

Gradescope's 768 MB is a cgroup limit on the whole container (grader, kernels and the page
cache they fill), not on any one process, so per-process ``ru_maxrss`` figures can neither
show a fit nor rule one out. The cgroup's own counters can: cgroup v1's
``memory.max_usage_in_bytes`` and v2's ``memory.peak`` are the high-water mark the kernel
compares with the limit. ``memory_cgroup`` and ``cpu_cgroup`` make such limits for tests and
measurements (root only); a process enters one with ``join``.
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


def own_cgroup_folders(controller: str, proc_cgroup: Path, fs: Path) -> list[tuple[Path, int]]:
    """This process's cgroup folders that may hold ``controller``, with their version: the v1
    hierarchy that mounts it first (where both are mounted, v2 lacks it), then v2's."""
    try:
        lines = proc_cgroup.read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    found: list[tuple[Path, int]] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if controller in controllers.split(","):
            found.insert(0, (fs / controllers / relative, 1))
        elif controllers == "" and (fs / "cgroup.controllers").exists():
            found.append((fs / relative, 2))
    return found


def own_memory_cgroup(
    proc_cgroup: Path = Path("/proc/self/cgroup"), fs: Path = CGROUP_FS
) -> CgroupPaths | None:
    """This process's memory cgroup; None when none is readable."""
    found = own_cgroup_folders("memory", proc_cgroup, fs)
    groups = (CgroupPaths(folder=f, version=v) for f, v in found)
    return next((g for g in groups if g.peak.exists()), None)


def _own_cpu_cgroup() -> Path | None:
    """This process's writable cgroup with a CPU quota (v1 ``cpu.cfs_quota_us``, or v2)."""
    for folder, version in own_cgroup_folders("cpu", Path("/proc/self/cgroup"), CGROUP_FS):
        has_quota = version == 2 or (folder / "cpu.cfs_quota_us").exists()
        if has_quota and os.access(folder, os.W_OK):
            return folder
    return None


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
def _child(parent: Path, name: str) -> Iterator[Path]:
    """A new cgroup under ``parent``, removed once its processes are gone (up to 10 s)."""
    folder = parent / f"{name}-{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir()
    try:
        yield folder
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


@contextlib.contextmanager
def memory_cgroup(limit_mb: int | None, name: str = "dlgrade-limit") -> Iterator[CgroupPaths]:
    """A child memory cgroup limited to ``limit_mb`` (None: only measured)."""
    parent = own_memory_cgroup()
    if parent is None:
        raise OSError("no memory cgroup is mounted here")
    with _child(parent.folder, name) as folder:
        group = CgroupPaths(folder=folder, version=parent.version)
        if limit_mb is not None:
            _set_limit(group, limit_mb * _MB)
        yield group


@contextlib.contextmanager
def cpu_cgroup(cpus: float, name: str = "dlgrade-cpu") -> Iterator[Path]:
    """A child cgroup holding its processes to ``cpus`` CPUs (a CFS quota)."""
    parent = _own_cpu_cgroup()
    if parent is None:
        raise OSError("no writable cpu cgroup here")
    period = 100_000
    with _child(parent, name) as folder:
        if (folder / "cpu.cfs_quota_us").exists():
            (folder / "cpu.cfs_period_us").write_text(str(period), encoding="ascii")
            (folder / "cpu.cfs_quota_us").write_text(str(int(cpus * period)), encoding="ascii")
        else:
            (folder / "cpu.max").write_text(f"{int(cpus * period)} {period}", encoding="ascii")
        yield folder


def join(folder: Path, pid: int | None = None) -> None:
    """Move ``pid`` (default: this process) into the cgroup at ``folder``."""
    (folder / "cgroup.procs").write_text(str(pid or os.getpid()), encoding="ascii")
