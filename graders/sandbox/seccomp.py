"""A seccomp filter for every kernel: the few system calls student code has no use for.

Namespaces decide what a kernel can reach; a handful of calls are dangerous even inside them:

* ``setsid``: every new session is its own scheduling group for the kernel's autogroup
  scheduler, so 150 children each in a session of their own took 150/151 of the CPU and a
  classmate's correct notebook timed out (the kernel itself is already in a session of its own);
* ``keyctl``, ``add_key``, ``request_key``: the kernel keyring is not namespaced, so they would
  read a TA's session keys and leave keys behind after the grading;
* ``perf_event_open``, ``bpf``, ``userfaultfd``, ``io_uring_*``: kernel attack surface that no
  notebook needs.

Each of these fails with ``EPERM``. A confined kernel (bubblewrap, or the sandbox user) may
also open sockets of the unix and netlink families only (``EAFNOSUPPORT`` otherwise): it has
no network, and the TCP and UDP buffers of its own loopback are memory no cgroup of it is
charged for (1.8 GB held under a 1 GB memory cgroup, in the buffers of 520 loopback
connections), bounded only by the host's ``tcp_mem``, which every TCP connection of the host
shares. Where no memory cgroup holds the kernel (``Policy.uncounted_memory``: the grader's
watchdog measures its memory, ``graders/sandbox/watchdog.py``), the filter also refuses what
holds memory the watchdog cannot see: anonymous files (``memfd_create``, ``memfd_secret``; a
file handed over a unix socket and closed is in no process's descriptor table), System V
shared memory and message queues (``shmget``, ``msgget``: a segment once detached is in no
process's memory), both with ``ENOSYS`` so that a library falls back as on a kernel without
them, and growing a socket's buffers (``setsockopt`` of ``SO_SNDBUF``/``SO_RCVBUF`` and their
``FORCE`` forms: 229 unix socket pairs held 1.8 GB with 8 MiB buffers). Everything else is
allowed. The program is classic BPF, as bwrap's ``--seccomp`` and ``prctl(PR_SET_SECCOMP)``
take it; a machine of another architecture gets none, and the report says so.
"""

from __future__ import annotations

import errno
import platform
import socket
import struct
from dataclasses import dataclass

_LD_W_ABS, _JEQ, _JGE, _RET = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_X32_BIT = 0x40000000
_NR, _ARCH = 0, 4
"""Offsets in ``struct seccomp_data`` of the call's number and its architecture."""


def _arg(index: int) -> int:
    """Offset of a call's argument (its low 32 bits: both architectures are little-endian, and
    the arguments checked here are ``int``s the kernel truncates to them)."""
    return 16 + 8 * index


BLOCKED = (
    "setsid",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "bpf",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
)
UNCOUNTED_MEMORY = ("memfd_create", "memfd_secret", "shmget", "msgget")
"""Refused (``ENOSYS``) where the watchdog, not a cgroup, measures the kernel's memory."""
SOCKET_FAMILIES = (socket.AF_UNIX, socket.AF_NETLINK)
"""The only socket families a confined kernel may open (ZeroMQ, multiprocessing, getaddrinfo)."""
_SOL_SOCKET = 1
BUFFER_OPTIONS = (7, 8, 32, 33)
"""``SO_SNDBUF``, ``SO_RCVBUF``, ``SO_SNDBUFFORCE``, ``SO_RCVBUFFORCE`` (both architectures)."""
_NUMBERS = {
    "x86_64": (
        0xC000003E,
        {
            "setsid": 112,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "perf_event_open": 298,
            "bpf": 321,
            "userfaultfd": 323,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "memfd_create": 319,
            "memfd_secret": 447,
            "shmget": 29,
            "msgget": 68,
            "socket": 41,
            "setsockopt": 54,
        },
    ),
    "aarch64": (
        0xC00000B7,
        {
            "setsid": 157,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "perf_event_open": 241,
            "bpf": 280,
            "userfaultfd": 282,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "memfd_create": 279,
            "memfd_secret": 447,
            "shmget": 194,
            "msgget": 186,
            "socket": 198,
            "setsockopt": 208,
        },
    ),
}


@dataclass(frozen=True, kw_only=True)
class Policy:
    """What one kernel's filter refuses beyond ``BLOCKED``."""

    unix_sockets_only: bool = False
    """Sockets of ``SOCKET_FAMILIES`` only (the confined modes)."""
    uncounted_memory: bool = False
    """Refuse ``UNCOUNTED_MEMORY`` and socket buffer growth (no memory cgroup)."""


_Op = tuple[int, int, str | None, str | None]
"""(code, k, jump-if-true label, jump-if-false label); None: the next instruction."""


def _assemble(items: list[_Op | str]) -> bytes:
    """Classic BPF from instructions and labels (a string marks the next instruction)."""
    labels: dict[str, int] = {}
    ops: list[_Op] = []
    for item in items:
        if isinstance(item, str):
            labels[item] = len(ops)
        else:
            ops.append(item)
    out = []
    for position, (code, k, true, false) in enumerate(ops):
        jt = 0 if true is None else labels[true] - position - 1
        jf = 0 if false is None else labels[false] - position - 1
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise ValueError("a seccomp jump out of range")
        out.append(struct.pack("=HBBI", code, jt, jf, k))
    return b"".join(out)


def _refuse(number: int) -> int:
    return _RET_ERRNO | number


def program(policy: Policy | None = None, machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where the numbers are not known.

    Layout: check the architecture (a call made through another ABI, such as 32-bit x86 on a
    64-bit kernel, ends the process); load the call's number; refuse x32 numbers; one
    comparison per refused call, jumping to its return; the calls refused by their arguments
    (``socket``'s family, ``setsockopt``'s option) jump to a block that loads and compares
    them; otherwise allow.
    """
    policy = policy or Policy()
    arch = _NUMBERS.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, numbers = arch
    items: list[_Op | str] = [
        (_LD_W_ABS, _ARCH, None, None),
        (_JEQ, audit_arch, "native", None),
        (_RET, _RET_KILL_PROCESS, None, None),
        "native",
        (_LD_W_ABS, _NR, None, None),
    ]
    if audit_arch == 0xC000003E:
        items.append((_JGE, _X32_BIT, "eperm", None))
    items += [(_JEQ, numbers[name], "eperm", None) for name in BLOCKED]
    if policy.uncounted_memory:
        items += [(_JEQ, numbers[name], "enosys", None) for name in UNCOUNTED_MEMORY]
        items.append((_JEQ, numbers["setsockopt"], "setsockopt", None))
    if policy.unix_sockets_only:
        items.append((_JEQ, numbers["socket"], "socket", None))
    items += [
        (_RET, _RET_ALLOW, None, None),
        "socket",  # BPF jumps forward only: the argument blocks come before the returns
        (_LD_W_ABS, _arg(0), None, None),
        *[(_JEQ, family, "allow", None) for family in SOCKET_FAMILIES],
        (_RET, _refuse(errno.EAFNOSUPPORT), None, None),
        "setsockopt",
        (_LD_W_ABS, _arg(1), None, None),
        (_JEQ, _SOL_SOCKET, None, "allow"),
        (_LD_W_ABS, _arg(2), None, None),
        *[(_JEQ, option, "eperm", None) for option in BUFFER_OPTIONS],
        "allow",
        (_RET, _RET_ALLOW, None, None),
        "eperm",
        (_RET, _refuse(errno.EPERM), None, None),
        "enosys",
        (_RET, _refuse(errno.ENOSYS), None, None),
    ]
    return _assemble(items)


def syscall_number(name: str, machine: str | None = None) -> int | None:
    """This architecture's number for ``name`` (one of ``BLOCKED``), or None."""
    arch = _NUMBERS.get(machine or platform.machine())
    return None if arch is None else arch[1].get(name)
