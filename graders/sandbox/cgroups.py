"""Memory, process and CPU limits for a kernel and every process it starts: cgroups per kernel.

RLIMIT_DATA and RLIMIT_NPROC bind one process (or one uid): five children of a kernel each
held their own gigabyte under a 1 GiB RLIMIT_DATA. A cgroup counts the whole tree, tmpfs
pages included, so the kernel's working folder cannot outgrow its memory either. The grader
makes the groups (root, or where a cgroup v2 subtree is delegated to its user), the launcher
joins them before anything forks, and the grader removes them after killing what is left.
Where no group can be made the per-process limits are all there is, and the report says so.
The CPU group holds a kernel to its share of the cores (its threads), so a kernel that starts
a hundred busy processes slows itself, not a classmate's kernel beside it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graders.config import Limits
from graders.sandbox.container_limits import CGROUP_FS, CgroupPaths, oom_kills, own_cgroup_folders

_PREFIX = "dlgrade-k-"
STALE_CGROUP_S = 3600.0
_MB = 1 << 20


@dataclass(frozen=True, kw_only=True)
class CgroupSupport:
    """Where per-kernel groups can be made: the parent folders, per controller."""

    memory: CgroupPaths | None
    """The parent memory group (v1 or v2); None: no per-kernel memory group."""
    pids: Path | None
    """The parent pids group (v1 ``pids`` hierarchy, or the same v2 folder)."""
    cpu: Path | None = None
    """The parent CPU group (v1 ``cpu`` hierarchy with a CFS quota, or v2 with ``cpu``)."""


@dataclass(frozen=True, kw_only=True)
class KernelCgroups:
    """One kernel's groups; ``procs`` are the files the launcher writes its pid into."""

    folders: tuple[Path, ...]
    memory: CgroupPaths | None
    procs: tuple[Path, ...]

    def oom_kills(self) -> int:
        return oom_kills(self.memory) if self.memory is not None else 0


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK) and os.access(folder / "cgroup.procs", os.W_OK)


def _v2_can_nest(folder: Path, controller: str) -> bool:
    """A v2 child gets ``controller`` only when the parent's subtree_control lists it."""
    try:
        enabled = (folder / "cgroup.subtree_control").read_text(encoding="ascii").split()
    except OSError:
        return False
    return controller in enabled


def support(proc_cgroup: Path = Path("/proc/self/cgroup"), fs: Path = CGROUP_FS) -> CgroupSupport:
    """Which controllers this grader can give each kernel a group of (asked once per kernel)."""
    memory: CgroupPaths | None = None
    pids: Path | None = None
    for folder, version in own_cgroup_folders("memory", proc_cgroup, fs):
        if _writable(folder) and (version == 1 or _v2_can_nest(folder, "memory")):
            memory = CgroupPaths(folder=folder, version=version)
            break
    for folder, version in own_cgroup_folders("pids", proc_cgroup, fs):
        if _writable(folder) and (version == 1 or _v2_can_nest(folder, "pids")):
            pids = folder
            break
    cpu: Path | None = None
    for folder, version in own_cgroup_folders("cpu", proc_cgroup, fs):
        quota = (folder / "cpu.cfs_quota_us").exists() if version == 1 else True
        if quota and _writable(folder) and (version == 1 or _v2_can_nest(folder, "cpu")):
            cpu = folder
            break
    return CgroupSupport(memory=memory, pids=pids, cpu=cpu)


def _sweep_stale(parent: Path) -> None:
    """Remove empty groups a killed grader left (SIGKILL skips the clean-up): an hour old and
    empty only; a live grader's group is younger or holds its kernel and cannot be removed."""
    now = time.time()
    with contextlib.suppress(OSError):
        for old in parent.glob(f"{_PREFIX}*"):
            with contextlib.suppress(OSError):
                if now - old.stat().st_mtime > STALE_CGROUP_S:
                    old.rmdir()


def _write(path: Path, value: str) -> None:
    path.write_text(value, encoding="ascii")


def _cpu_quota(folder: Path, cpus: int) -> None:
    period = 100_000
    if (folder / "cpu.cfs_quota_us").exists():
        _write(folder / "cpu.cfs_period_us", str(period))
        _write(folder / "cpu.cfs_quota_us", str(cpus * period))
    else:
        _write(folder / "cpu.max", f"{cpus * period} {period}")


def _memory_limit(folder: Path, version: int, megabytes: int) -> None:
    group = CgroupPaths(folder=folder, version=version)
    limit = str(megabytes * _MB)
    _write(group.limit, limit)
    with contextlib.suppress(OSError):  # no swapping past the limit either
        if version == 1:
            _write(folder / "memory.memsw.limit_in_bytes", limit)
        else:
            _write(folder / "memory.swap.max", "0")


def make(limits: Limits, where: CgroupSupport, *, cpus: int = 1) -> KernelCgroups:
    """The kernel's groups with their limits set, right before it starts (removed by ``remove``).

    One group per controller's hierarchy (cgroup v1), or one group for all of them (v2: the
    parents are the same folder). A group that cannot be made is left out (the per-process
    limits still hold); the caller has already told the report what ``where`` supports.
    """
    name = f"{_PREFIX}{secrets.token_hex(6)}"
    folders: list[Path] = []
    procs: list[Path] = []
    memory: CgroupPaths | None = None
    wanted: list[tuple[Path, Callable[[Path], None]]] = []
    if where.memory is not None:
        version = where.memory.version
        wanted.append((where.memory.folder, lambda f: _memory_limit(f, version, limits.memory_mb)))
    if where.pids is not None:
        wanted.append((where.pids, lambda f: _write(f / "pids.max", str(limits.max_processes))))
    if where.cpu is not None:
        wanted.append((where.cpu, lambda f: _cpu_quota(f, max(1, cpus))))
    for parent, set_limit in wanted:
        _sweep_stale(parent)
        folder = parent / name
        try:
            if not folder.exists():
                folder.mkdir()
                folders.append(folder)
            set_limit(folder)
        except OSError:
            continue
        if where.memory is not None and parent == where.memory.folder:
            memory = CgroupPaths(folder=folder, version=where.memory.version)
        if folder / "cgroup.procs" not in procs:
            procs.append(folder / "cgroup.procs")
    return KernelCgroups(folders=tuple(folders), memory=memory, procs=tuple(procs))


def remove(groups: KernelCgroups, wait_s: float = 5.0) -> None:
    """Kill whatever is still in the groups, then remove them (a group with tasks cannot go)."""
    deadline = time.monotonic() + wait_s
    for folder in groups.folders:
        while True:
            with contextlib.suppress(OSError):
                folder.rmdir()
                break
            if time.monotonic() > deadline:
                break
            with contextlib.suppress(OSError):
                for pid in (folder / "cgroup.procs").read_text(encoding="ascii").split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.05)
