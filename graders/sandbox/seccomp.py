"""A seccomp filter for every kernel: the few system calls student code has no use for.

Namespaces decide what a kernel can reach; a handful of calls are dangerous even inside them:

* ``setsid``: every new session is its own scheduling group for the kernel's autogroup
  scheduler, so 150 children each in a session of their own took 150/151 of the CPU and a
  classmate's correct notebook timed out (the kernel itself is already in a session of its own);
* ``keyctl``, ``add_key``, ``request_key``: the kernel keyring is not namespaced, so they would
  read a TA's session keys and leave keys behind after the grading;
* ``perf_event_open``, ``bpf``, ``userfaultfd``, ``io_uring_*``: kernel attack surface that no
  notebook needs.

Each of these fails with ``EPERM``; everything else is allowed. The program is classic BPF, as
bwrap's ``--seccomp`` and ``prctl(PR_SET_SECCOMP)`` take it; a machine of another architecture
gets none, and the report says so.
"""

from __future__ import annotations

import errno
import platform
import struct

_LD_W_ABS, _JEQ, _JGE, _RET = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
_X32_BIT = 0x40000000

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
        },
    ),
}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(machine: str | None = None) -> bytes | None:
    """The filter for this machine's architecture, or None where the numbers are not known.

    Layout: check the architecture (a call made through another ABI, such as 32-bit x86 on a
    64-bit kernel, ends the process); load the call's number; refuse x32 numbers; one
    comparison per blocked call jumping to ``EPERM``; otherwise allow.
    """
    arch = _NUMBERS.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, numbers = arch
    checks = [(_JGE, _X32_BIT)] if audit_arch == 0xC000003E else []
    checks += [(_JEQ, numbers[name]) for name in BLOCKED]
    ops = [
        _op(_LD_W_ABS, 4),  # seccomp_data.arch
        _op(_JEQ, audit_arch, jt=1),
        _op(_RET, _RET_KILL_PROCESS),
        _op(_LD_W_ABS, 0),  # seccomp_data.nr
    ]
    for position, (code, value) in enumerate(checks):
        ops.append(_op(code, value, jt=len(checks) - position))
    ops.append(_op(_RET, _RET_ALLOW))
    ops.append(_op(_RET, _RET_ERRNO | errno.EPERM))
    return b"".join(ops)


def syscall_number(name: str, machine: str | None = None) -> int | None:
    """This architecture's number for ``name`` (one of ``BLOCKED``), or None."""
    arch = _NUMBERS.get(machine or platform.machine())
    return None if arch is None else arch[1].get(name)
