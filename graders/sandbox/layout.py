"""What a kernel's file system holds under bubblewrap: an empty root, and then only this.

Default-deny: nothing of the host is there unless listed here. Read-only: the system's
programs and libraries (``/usr`` and its merged-``/usr`` links), a handful of ``/etc`` files
the dynamic loader and Python read, the Python installation and the kernel's environment
(with the grader's own packages masked where they are installed into it), and the profile's
data (its IDX folders only). Writable, each a tmpfs of a fixed size: the working folder,
``/tmp`` and ``/dev/shm``; nothing else (the root and ``/dev`` are remounted read-only).
Shared with the grader: the probe's inputs (read-only) and its results file, a single
pre-made file, so that nothing else can be created on the host. The kernel's channels are not on its
file system at all (inherited sockets, see ``graders/kernel/boot.py``). A private ``/proc`` and
a minimal ``/dev``; the NVIDIA devices only when the profile runs on CUDA.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

Mount = dict[str, str]
"""One step for the launcher: ``kind`` and its operands (see ``launch.py``)."""

WORKSPACE = "/workspace"
"""The kernel's working folder and home, inside the sandbox."""
RUN = "/run/dlgrade"
KERNEL_IP = f"{RUN}/kernel"
"""The channel address prefix the kernel is told; only a name, no such folder exists."""
KERNEL_CONNECTION = f"{RUN}/connection.json"
KERNEL_PROBE_IN = f"{RUN}/probe-in"
KERNEL_PROBE_OUT = f"{RUN}/probe-out"
_MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "fonts")
_GRADER_PACKAGES = ("graders", "reference", "reports")
_DISTRIBUTION = "dl_assignment1_autograder"
HOSTS = "127.0.0.1 localhost\n::1 localhost\n"


@dataclass(frozen=True, kw_only=True)
class HostPaths:
    """The host side of what the kernel shares with the grader (one kernel's folders)."""

    probe_in: Path
    probe_archive: Path
    empty_dir: Path
    empty_file: Path


def _system(uid: int, gid: int) -> list[Mount]:
    mounts: list[Mount] = [{"kind": "ro-bind", "src": "/usr", "dest": "/usr"}]
    for name in _MERGED_USR:
        host = Path("/") / name
        if host.is_symlink():
            mounts.append({"kind": "symlink", "target": os.readlink(host), "dest": str(host)})
        elif host.is_dir():
            mounts.append({"kind": "ro-bind", "src": str(host), "dest": str(host)})
    for name in _ETC:
        if (Path("/etc") / name).exists():
            mounts.append({"kind": "ro-bind", "src": f"/etc/{name}", "dest": f"/etc/{name}"})
    mounts += [
        {
            "kind": "data",
            "text": f"student:x:{uid}:{gid}:student:{WORKSPACE}:/bin/sh\n",
            "dest": "/etc/passwd",
        },
        {"kind": "data", "text": f"student:x:{gid}:\n", "dest": "/etc/group"},
        {"kind": "data", "text": HOSTS, "dest": "/etc/hosts"},
    ]
    return mounts


def _inside(path: Path, trees: Iterable[Path]) -> bool:
    return any(path == tree or tree in path.parents for tree in trees)


def kernel_python() -> str:
    """The interpreter the kernel runs: the grader's own, its environment's folder resolved
    (a venv reached through a link is bound at its real place, where pyvenv.cfg lies)."""
    executable = Path(sys.executable)
    if executable.parent.parent == Path(sys.prefix):
        return str(Path(sys.prefix).resolve() / executable.parent.name / executable.name)
    return str(executable)


def python_trees() -> list[Path]:
    """The interpreter and every folder of the kernel's environment, outermost first."""
    candidates = [Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent]
    trees: list[Path] = []
    for path in sorted({p.resolve() for p in candidates}, key=lambda p: len(p.parts)):
        if not _inside(path, [Path("/usr"), *trees]):
            trees.append(path)
    return trees


def _package_folders(trees: Iterable[Path]) -> set[Path]:
    """Every ``site-packages`` / ``dist-packages`` folder the kernel may read: those on the
    grader's ``sys.path`` and those inside the bound trees (the base interpreter's, a second
    environment's, ``/usr/lib/python3/dist-packages``, ``/usr/local/lib/python3.X/...``)."""
    folders = {Path(p) for p in sys.path if p.endswith("-packages")}
    for tree in [*trees, Path("/usr"), Path("/usr/local")]:
        for pattern in (
            "lib/python3*/*-packages",
            "python3*/*-packages",  # a library folder itself (LD_LIBRARY_PATH=$PREFIX/lib)
            "lib64/python3*/*-packages",
        ):
            folders.update(tree.glob(pattern))
    return {f for f in folders if f.is_dir()}


def grader_paths(trees: Iterable[Path] = ()) -> list[Path]:
    """The grader's own installed files, wherever they are, every copy of them: the packages
    the grader imports (an editable install points into the project), any folder of the same
    name in a package folder the kernel can read (a regular install in the venv shadowed by
    the checkout the grader runs from is *not* what ``find_spec`` finds), the distribution's
    ``.dist-info``/``.egg-info``/``.egg-link``/editable files and their compiled finder, and a
    checkout pip cloned into an environment's ``src/`` (``pip install -e git+...``)."""
    trees = list(trees)
    found: list[Path] = []
    for package in _GRADER_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            found += [Path(p) for p in spec.submodule_search_locations]
    for site in _package_folders(trees):
        found += [site / package for package in _GRADER_PACKAGES]
        found += sorted(site.glob(f"__editable__*{_DISTRIBUTION}*"))
        found += sorted(site.glob(f"__pycache__/__editable__*{_DISTRIBUTION}*"))
        found += sorted(site.glob(f"{_DISTRIBUTION}-*"))
        found += sorted(site.glob(f"{_DISTRIBUTION.replace('_', '-')}*.egg-link"))
    for tree in trees:
        for checkout in sorted(tree.glob("src/*")):
            if (checkout / "graders" / "__init__.py").is_file():
                found.append(checkout)
    return sorted({p.resolve() for p in found if p.exists()})


def _python() -> tuple[list[Path], list[Mount]]:
    trees = python_trees()
    return trees, [{"kind": "ro-bind", "src": str(t), "dest": str(t)} for t in trees]


def _includes_system_packages(venv: Path) -> bool:
    try:
        config = (venv / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return True  # not a venv: its own package folders are the base ones
    for line in config.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "include-system-site-packages":
            return value.strip().lower() == "true"
    return False


def unused_base_packages() -> list[Path]:
    """The base interpreter's package folders when the kernel's venv leaves them out
    (``include-system-site-packages = false``, as ``bootstrap.sh`` makes it): whatever else a
    TA installed into that Python (tools, their ``.pth`` files and settings) is not the
    kernel's to read. Default-deny: they are masked. None that the kernel's path reaches."""
    if sys.prefix == sys.base_prefix or _includes_system_packages(Path(sys.prefix)):
        return []
    used = [Path(p).resolve() for p in sys.path if p]
    base = Path(sys.base_prefix).resolve()
    folders = {
        folder.resolve()
        for pattern in ("lib/python3*/*-packages", "lib64/python3*/*-packages")
        for folder in base.glob(pattern)
    }
    return sorted(f for f in folders if f.is_dir() and not any(_inside(u, [f]) for u in used))


def _masks(bound: list[tuple[Path, Path]]) -> list[Mount]:
    """An empty folder or file over each of the grader's paths inside a bound tree, given as
    (host folder, where the kernel sees it), and over the base interpreter's unused package
    folders; none inside a folder already masked (bwrap could not make its mount point in the
    empty read-only one)."""
    bound = [*bound, (Path("/usr"), Path("/usr"))]
    masks: list[Mount] = []
    masked: list[Path] = []
    for folder in unused_base_packages():
        for src, dest in bound:
            if _inside(folder, [src]):
                masked.append(dest / folder.relative_to(src))
                masks.append({"kind": "mask-dir", "dest": str(masked[-1])})
                break
    for path in grader_paths(dest for _, dest in bound):
        for src, dest in bound:
            if not _inside(path, [src]):
                continue
            seen = dest / path.relative_to(src)
            if _inside(seen, masked):
                continue
            if path.is_dir():
                masked.append(seen)
            masks.append({"kind": "mask-dir" if path.is_dir() else "mask-file", "dest": str(seen)})
    return masks


PROC_MASKED = (
    "/proc/keys",
    "/proc/key-users",
    "/proc/timer_list",
    "/proc/sched_debug",
    "/proc/kcore",
    "/proc/latency_stats",
    "/proc/timer_stats",
)
"""Files of a private ``/proc`` that still show the host: ``/proc/keys`` lists every key of
the kernel's uid (a TA's own keyrings: names and sizes, when an ordinary user grades), the
others the host's timers, tasks and memory (Docker masks the same). Each, where the host has
it, is an empty file to the kernel."""


DEVICES = Path("/dev")


DATASET_FOLDERS = ("MNIST/raw", "FashionMNIST/raw")
"""What of a data root a kernel sees: the IDX files torchvision and the templates read, and
nothing else a TA may keep beside them."""


def _datasets(data_root: Path) -> list[Mount]:
    return [
        {"kind": "ro-bind", "src": str((data_root / sub).resolve()), "dest": str(data_root / sub)}
        for sub in DATASET_FOLDERS
        if (data_root / sub).is_dir()
    ]


def _cuda_devices() -> tuple[list[tuple[Path, Path]], list[Mount]]:
    """NVIDIA device nodes, ``/sys`` (read-only: the driver reads PCI topology) and any
    library folder on ``LD_LIBRARY_PATH`` outside ``/usr`` (some images put the driver there);
    and those folders, for the masks."""
    mounts: list[Mount] = []
    libraries: list[tuple[Path, Path]] = []
    for node in sorted(DEVICES.glob("nvidia*")):
        mounts.append({"kind": "dev-bind", "src": str(node), "dest": str(node)})
    if Path("/sys").is_dir():
        mounts.append({"kind": "ro-bind", "src": "/sys", "dest": "/sys"})
    for entry in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        folder = Path(entry)
        if entry and folder.is_dir() and not _inside(folder.resolve(), [Path("/usr")]):
            mounts.append({"kind": "ro-bind", "src": str(folder.resolve()), "dest": entry})
            libraries.append((folder.resolve(), Path(entry)))
    return libraries, mounts


def kernel_mounts(
    *,
    host: HostPaths,
    data_root: Path,
    disk_mb: int,
    tmp_mb: int,
    cuda: bool,
    uid: int,
    gid: int,
) -> list[Mount]:
    """Every mount of one kernel's sandbox, in the order bwrap must make them."""
    mounts = [*_system(uid, gid)]
    mounts += [{"kind": "proc", "dest": "/proc"}]
    mounts += [{"kind": "mask-file", "dest": f} for f in PROC_MASKED if os.path.exists(f)]
    mounts += [
        {"kind": "dev", "dest": "/dev"},
        {"kind": "tmpfs", "dest": "/tmp", "size": str(tmp_mb << 20), "perms": "1777"},
        {"kind": "tmpfs", "dest": "/dev/shm", "size": str(tmp_mb << 20), "perms": "1777"},
        {"kind": "tmpfs", "dest": WORKSPACE, "size": str(disk_mb << 20), "perms": "0755"},
    ]
    # After the tmpfs folders: a venv or a data root under /tmp (a CI clone there) stays seen,
    # while the rest of the host's /tmp is hidden.
    trees, python = _python()
    bound = [(t, t) for t in trees]
    mounts += python
    mounts += _datasets(data_root)
    if cuda:
        libraries, devices = _cuda_devices()
        mounts += devices
        bound += libraries
    # The masks after every bind they lie in (a CUDA library folder may hold a copy too).
    mounts += _masks(bound)
    mounts += [
        {"kind": "ro-bind", "src": str(host.probe_in), "dest": KERNEL_PROBE_IN},
        {"kind": "dir", "dest": KERNEL_PROBE_OUT},
        {
            "kind": "bind",
            "src": str(host.probe_archive),
            "dest": f"{KERNEL_PROBE_OUT}/{host.probe_archive.name}",
        },
        {"kind": "connection", "dest": KERNEL_CONNECTION},
        # Last, once every mount point below them exists: the root and bwrap's /dev are
        # tmpfs folders too, /dev's without a size (half the machine's memory). Read-only,
        # the kernel writes only in its budgeted folders (/dev/shm is a mount of its own).
        {"kind": "remount-ro", "dest": "/dev"},
        {"kind": "remount-ro", "dest": "/"},
    ]
    return [_resolve_masks(m, host) for m in mounts]


def _resolve_masks(mount: Mount, host: HostPaths) -> Mount:
    if mount["kind"] == "mask-dir":
        return {"kind": "ro-bind", "src": str(host.empty_dir), "dest": mount["dest"]}
    if mount["kind"] == "mask-file":
        return {"kind": "ro-bind", "src": str(host.empty_file), "dest": mount["dest"]}
    return mount


BWRAP_OPTIONS = (
    "--unshare-all",  # user, pid, net, ipc, uts and cgroup namespaces
    "--unshare-user",
    "--disable-userns",
    "--hostname",
    "dlgrade",
    "--die-with-parent",
    "--new-session",
    "--clearenv",
    "--chdir",
    WORKSPACE,
)
"""bwrap's options for every kernel: every namespace, no capabilities (bwrap keeps none unless
told), no user namespaces inside, no new privileges, a session of its own (no terminal to
inject keystrokes into), and death with the launcher."""
