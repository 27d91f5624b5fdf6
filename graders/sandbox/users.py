"""Who a kernel runs as: a uid of its own (a root grader), or the grader's own user.

A root grader gives every kernel a uid of its own from a range no account uses, so that two
kernels of one batch are two users to Linux (signals, ``/proc``, files, RLIMIT_NPROC) even
before bubblewrap separates them, and so that without namespaces (the fallback mode) file
permissions alone still keep kernels apart. A uid is held with an ``flock`` on a file in a
root-only folder for as long as the kernel lives; a grader killed with SIGKILL releases it
with its process. No account is needed: the uid owns nothing but the kernel's own files.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import secrets
import shutil
import signal
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

KERNEL_UID_BASE = 1_900_000_000
"""Kernel uids are drawn from [base, base + span): far above any account or systemd range."""
KERNEL_UID_SPAN = 1_000_000
_LOCK_DIR = "dlgrade-kernel-uids"


@dataclass(frozen=True, kw_only=True)
class RunAs:
    """The user a kernel becomes before student code runs (only when the grader is root)."""

    user: str
    """A name for messages (the account's name, or ``uid N`` for a kernel uid)."""
    uid: int
    gid: int


class KernelUid:
    """One kernel's private uid, held (flock) until ``release``; its gid is the same number."""

    def __init__(self, uid: int, lock_fd: int):
        self.run_as = RunAs(user=f"uid {uid}", uid=uid, gid=uid)
        self._lock_fd: int | None = lock_fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _lock_dir() -> Path:
    """A folder only root may write, for the uid locks (``/run`` if there is one)."""
    for parent in (Path("/run"), Path(tempfile.gettempdir())):
        folder = parent / _LOCK_DIR
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)
        try:
            info = folder.lstat()
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022:
            return folder
    raise OSError("no root-owned folder for the kernel uid locks")


def allocate_kernel_uid(attempts: int = 64) -> KernelUid:
    """A uid no other live kernel of any grader on this machine holds (root only)."""
    folder = _lock_dir()
    for _ in range(attempts):
        uid = KERNEL_UID_BASE + secrets.randbelow(KERNEL_UID_SPAN)
        fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return KernelUid(uid, fd)
    raise OSError("no free kernel uid after many attempts")


def can_reach(path: Path, uid: int, gid: int) -> bool:
    """Whether ``uid`` could open ``path``: every folder on the way searchable, the end readable.

    Asked up front: a kernel whose user cannot read the Python installation dies on its first
    import, and the student would see every question crash.
    """
    path = path.resolve()
    chain = [*reversed(path.parents), path]
    for position, folder in enumerate(chain):
        try:
            info = folder.stat()
        except OSError:
            return False
        last = position == len(chain) - 1
        want = stat.S_IROTH if last and not stat.S_ISDIR(info.st_mode) else stat.S_IXOTH
        if last and stat.S_ISDIR(info.st_mode):
            want |= stat.S_IROTH
        if info.st_uid == uid:
            want <<= 6
        elif info.st_gid == gid:
            want <<= 3
        if info.st_mode & want != want:
            return False
    return True


_SHARED_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue")
"""Folders every user may write: where a kernel without namespaces can leave files behind."""
_IPC_RMID = 0
_IPC_TABLES = {"shm": ("shmid", "shmctl"), "sem": ("semid", "semctl"), "msg": ("msqid", "msgctl")}


def _ipc_objects(table: str, uid: int) -> list[int]:
    """The ids of the SysV IPC objects of ``table`` that ``uid`` owns."""
    id_column = _IPC_TABLES[table][0]
    try:
        lines = Path(f"/proc/sysvipc/{table}").read_text(encoding="ascii").splitlines()
    except OSError:
        return []
    header = lines[0].split() if lines else []
    if id_column not in header or "uid" not in header:
        return []
    at, owner = header.index(id_column), header.index("uid")
    rows = [line.split() for line in lines[1:]]
    return [int(row[at]) for row in rows if len(row) > owner and int(row[owner]) == uid]


def sweep(uid: int) -> None:
    """Remove what a kernel uid left on a host without namespaces: its processes, its SysV
    shared memory, semaphores and message queues, and its files in the shared folders.
    (Under bubblewrap all of these die with the kernel's namespaces.)"""
    for process in Path("/proc").iterdir():
        if process.name.isdigit():
            with contextlib.suppress(OSError):
                if process.stat().st_uid == uid:
                    os.kill(int(process.name), signal.SIGKILL)
    libc = ctypes.CDLL(None, use_errno=True)
    for table, (_column, call) in _IPC_TABLES.items():
        for object_id in _ipc_objects(table, uid):
            if call == "semctl":
                libc.semctl(object_id, 0, _IPC_RMID)
            else:
                getattr(libc, call)(object_id, _IPC_RMID, None)
    for folder in _SHARED_FOLDERS:
        with contextlib.suppress(OSError):
            for left in os.scandir(folder):
                with contextlib.suppress(OSError):
                    if left.stat(follow_symlinks=False).st_uid != uid:
                        continue
                    if left.is_dir(follow_symlinks=False):
                        shutil.rmtree(left.path, ignore_errors=True)
                    else:
                        os.unlink(left.path)
