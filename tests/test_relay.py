"""The kernel relay's life cycle, without a kernel: it must end every thread it started.

The relay's message budget is tested with real kernels in ``test_containment.py``; here, that
``close`` ends its threads at once, in the order the grader really tears a kernel down:
jupyter_client removes the socket paths it connected to before the relay is closed.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from graders.sandbox.relay import KernelRelay

PORTS = (1, 2, 3, 4, 5)


def _relay_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("dlgrade-relay")}


def test_close_ends_every_thread_even_after_the_socket_paths_are_gone(tmp_path: Path) -> None:
    before = _relay_threads()
    relay = KernelRelay(str(tmp_path / "k"), str(tmp_path / "kernel"), budget=1 << 20)
    relay.start(PORTS)
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(tmp_path / "k-1"))  # a grader's connection, whose kernel never answers
    for port in PORTS:  # what jupyter_client's cleanup does before the relay is closed
        (tmp_path / f"k-{port}").unlink()
    started = _relay_threads() - before
    assert started, "the relay started no thread"
    relay.close()
    client.close()
    assert not [t for t in started if t.is_alive()], "close() left relay threads running"
