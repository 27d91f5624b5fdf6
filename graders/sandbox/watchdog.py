"""Memory for the whole kernel tree where no cgroup can hold it: a watchdog in the grader.

An ordinary user usually cannot make cgroups, and RLIMIT_DATA binds each process alone (five
children of a kernel each kept their own gigabyte under a 1 GiB limit). So, where the kernel
has no memory cgroup, a thread of the grader sums, four times a second, what the kernel's
tree holds: the proportional set size (PSS: shared library pages split between the processes
that map them) and the page tables of the kernel process and all its descendants, the
anonymous files they hold open (``memfd_create``: four of 1 GiB each were invisible to PSS)
and what the sandbox's tmpfs folders hold; it kills the whole sandbox once the sum passes the
limit. What it cannot see (kernel memory in socket buffers, System V segments, files in flight
over a socket) the sandbox bounds or refuses where the watchdog is the limit
(``graders/sandbox/seccomp.py``, ``workspace.WATCHED_OPEN_FILES``).
It is a fallback: between two looks a fast allocation can overshoot, which a cgroup never
lets happen; every report says which of the two held.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections import defaultdict
from pathlib import Path

INTERVAL_S = 0.25
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _children() -> dict[int, list[int]]:
    """Every process's children, from ``/proc/<pid>/stat`` (its parent is field 4)."""
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if len(fields) > 1:
            tree[int(fields[1])].append(int(entry.name))
    return tree


def tree_of(root: int) -> list[int]:
    """``root`` and all its descendants that exist now."""
    tree = _children()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += tree.get(pid, [])
    return found


def _page_tables(pid: int) -> int:
    """The kernel memory a process's page tables take (``VmPTE``): a read-only mapping touched
    once every 2 MiB maps only the shared zero page, so it costs no PSS, but 400,000 touches
    held 1.6 GB of page tables."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmPTE:"):
                return int(line.split()[1]) * 1024
    return 0


def _memory(pid: int) -> int:
    """A process's PSS in bytes (its resident size where smaps_rollup cannot be read), and its
    page tables."""
    tables = _page_tables(pid)
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="ascii").splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024 + tables
    with contextlib.suppress(OSError, ValueError, IndexError):
        statm = Path(f"/proc/{pid}/statm").read_text(encoding="ascii").split()
        return int(statm[1]) * _PAGE + tables
    return tables


_SANDBOX_TMPFS = ("/workspace", "/tmp", "/dev/shm")


def _anonymous_files(pids: list[int]) -> int:
    """Bytes in the memfd files the processes hold open, each file counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                path = f"/proc/{pid}/fd/{fd}"
                with contextlib.suppress(OSError):
                    if os.readlink(path).startswith("/memfd:"):
                        info = os.stat(path)
                        if (info.st_dev, info.st_ino) not in seen:
                            seen.add((info.st_dev, info.st_ino))
                            total += info.st_blocks * 512
    return total


def _tmpfs_used(pids: list[int]) -> int:
    """What the sandbox's in-memory folders hold, seen through one of its processes' root."""
    for pid in reversed(pids):
        total, found = 0, False
        for folder in _SANDBOX_TMPFS:
            with contextlib.suppress(OSError):
                usage = os.statvfs(f"/proc/{pid}/root{folder}")
                if folder == "/workspace":
                    found = True
                total += (usage.f_blocks - usage.f_bfree) * usage.f_frsize
        if found:
            return total
    return 0


def peak_resident(root: int) -> int:
    """The largest peak resident set (``VmHWM``) among ``root``'s tree's processes, in bytes
    (0 when none can be read). ``getrusage(RUSAGE_CHILDREN)`` cannot tell it: a kernel in a
    pid namespace of its own is reaped by that namespace's init, so its usage never reaches
    the grader (it reported the launcher's 80 MB for a 500 MB torch kernel)."""
    peak = 0
    for pid in tree_of(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
    return peak


def tree_memory(root: int) -> int:
    pids = tree_of(root)
    return sum(_memory(pid) for pid in pids) + _anonymous_files(pids) + _tmpfs_used(pids)


class MemoryWatchdog:
    """Kills the process tree at ``root`` (the sandbox's launcher) once it uses ``limit`` bytes."""

    def __init__(self, root: int, limit: int):
        self.root = root
        self.limit = limit
        self.killed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="dlgrade-memory")

    def __enter__(self) -> MemoryWatchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(INTERVAL_S):
            if tree_memory(self.root) > self.limit:
                self.killed = True
                for pid in reversed(tree_of(self.root)):
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                return
