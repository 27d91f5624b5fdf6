"""Every byte a kernel sends the grader passes a relay that holds each message to a budget.

libzmq checks ``ZMQ_MAXMSGSIZE`` frame by frame, and it hands a multipart message to the
application only once all of its frames have arrived: one output message of 200 frames of
4 MiB each (every frame under the limit) cost the grader 808 MiB before it could look at the
first frame, and nothing stopped 4,096 of them (16 GiB). So the grader's client never connects
to a kernel's sockets itself. For each channel the relay listens where jupyter_client connects
(``<listen prefix>-<port>``, in the grader's own socket folder), opens the kernel's socket
(``<kernel prefix>-<port>``, bound by the launcher) for every connection it accepts, copies
the grader's bytes through as they are, and reads the kernel's as ZMTP 3 while they pass:
every message's frames (their sizes plus a per-frame overhead, so that a million empty frames
count too) against the budget, commands to a small size, and the greeting to version 3. A
kernel that sends more, or bytes that are no ZMTP 3, has that connection cut before libzmq has
read the announcement: the grader's client sees a dropped channel, which the executor already
turns into a failed cell and new sockets.

Threads, not the grader's event loop: a relay works whatever the loop is doing, and each
connection costs two threads and a 64 KiB buffer.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterable

_GREETING_BYTES = 64
_ZMTP_MAJOR = 3
_MORE, _LONG, _COMMAND = 0x01, 0x02, 0x04
_RESERVED_FLAGS = 0xF8
FRAME_OVERHEAD = 64
"""What one frame costs the grader beyond its bytes (libzmq's message object), so that a
message of many empty frames meets the budget too."""
MAX_COMMAND_BYTES = 64 << 10
"""A ZMTP command (READY, PING, ...) is a few dozen bytes; none needs more."""
_CHUNK = 64 << 10
_CONNECT_S = 5.0


class ZmtpMeter:
    """The bytes one kernel connection sends, parsed as ZMTP 3 as they pass (greeting, then
    frames), with the cost of the message under way counted against ``budget``."""

    def __init__(self, budget: int):
        self.budget = budget
        self._greeting = bytearray()
        self._header = bytearray()
        self._body = 0
        """Bytes of the current frame's body still to come."""
        self._more = False
        self._message = 0
        """What the message under way has cost so far."""

    def feed(self, data: bytes) -> str | None:
        """Account for ``data`` (the next bytes of the stream): why the connection must be cut,
        or None while everything so far is acceptable."""
        position, end = 0, len(data)
        while position < end:
            if len(self._greeting) < _GREETING_BYTES:
                take = min(_GREETING_BYTES - len(self._greeting), end - position)
                self._greeting += data[position : position + take]
                position += take
                problem = self._greeting_problem()
                if problem:
                    return problem
            elif self._body:
                take = min(self._body, end - position)
                self._body -= take
                position += take
                if not self._body:
                    self._frame_done()
            else:
                self._header.append(data[position])
                position += 1
                problem = self._header_byte()
                if problem:
                    return problem
        return None

    def _greeting_problem(self) -> str | None:
        seen = self._greeting
        if seen[0] != 0xFF or (len(seen) > 9 and not seen[9] & 0x01):
            return "the kernel's greeting is not ZMTP 3"
        if len(seen) > 10 and seen[10] != _ZMTP_MAJOR:
            return f"the kernel asked for ZMTP version {seen[10]}, not {_ZMTP_MAJOR}"
        return None

    def _header_byte(self) -> str | None:
        flags = self._header[0]
        if flags & _RESERVED_FLAGS:
            return f"a frame with flags {flags:#04x} is not ZMTP 3"
        length = 9 if flags & _LONG else 2
        if len(self._header) < length:
            return None
        size = int.from_bytes(self._header[1:length], "big")
        self._header.clear()
        if flags & _COMMAND:
            if flags & _MORE or self._message:
                return "a ZMTP command inside a message"
            if size > MAX_COMMAND_BYTES:
                return f"a ZMTP command of {size} bytes (limit {MAX_COMMAND_BYTES})"
            self._more = False
        else:
            self._message += size + FRAME_OVERHEAD
            if self._message > self.budget:
                return f"a message of more than {self.budget} bytes"
            self._more = bool(flags & _MORE)
        self._body = size
        if not size:
            self._frame_done()
        return None

    def _frame_done(self) -> None:
        if not self._more:
            self._message = 0


class _Link:
    """One connection of the grader's client and the kernel connection made for it."""

    def __init__(self, grader: socket.socket, kernel: socket.socket, budget: int):
        self.grader = grader
        self.kernel = kernel
        self.meter = ZmtpMeter(budget)
        self.cut_because: str | None = None

    def stop(self) -> None:
        """Wake both pumps (each returns from its blocked read); the owner closes the sockets."""
        for end in (self.grader, self.kernel):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def upstream(self) -> None:
        """The grader's bytes, as they are."""
        try:
            while data := self.grader.recv(_CHUNK):
                self.kernel.sendall(data)
        except OSError:
            pass
        finally:
            self.stop()

    def downstream(self) -> None:
        """The kernel's bytes, each passed on only once the meter accepts it."""
        try:
            while data := self.kernel.recv(_CHUNK):
                problem = self.meter.feed(data)
                if problem:
                    self.cut_because = problem
                    return
                self.grader.sendall(data)
        except OSError:
            pass
        finally:
            self.stop()


class KernelRelay:
    """The relay of one kernel's channels (see the module's docstring)."""

    def __init__(
        self,
        listen_prefix: str,
        kernel_prefix: str,
        *,
        budget: int,
        connect_timeout_s: float = 120.0,
    ):
        self.listen_prefix = listen_prefix
        self.kernel_prefix = kernel_prefix
        self.budget = budget
        self.connect_timeout_s = connect_timeout_s
        self.cuts: list[str] = []
        """Why connections were cut (for the log and the tests)."""
        self._stop = threading.Event()
        self._listeners: list[tuple[socket.socket, int]] = []
        self._wake, self._wake_send = socket.socketpair()
        self._links: list[_Link] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, ports: Iterable[int]) -> None:
        """Listen for the grader's client on every channel's port (synchronously: jupyter_client
        connects as soon as the kernel is started)."""
        for port in ports:
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(f"{self.listen_prefix}-{port}")
            listener.listen(16)
            listener.setblocking(False)
            self._listeners.append((listener, port))
        self._spawn(self._accept)

    def close(self) -> None:
        """Stop listening and cut every connection; the threads end on their own."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_send.send(b"x")  # ends the accept thread's select() at once
        with self._lock:
            links = list(self._links)
        for link in links:
            link.stop()
        for thread in list(self._threads):
            thread.join(timeout=2.0)
        for listener, _ in self._listeners:
            listener.close()
        self._wake_send.close()
        self._wake.close()

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="dlgrade-relay")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        """One thread for every channel's listener, woken by ``close`` through a socket pair
        (a connection to a listener cannot wake it: jupyter_client removes the listeners'
        paths when it cleans up the kernel, before the relay is closed; and ``shutdown`` does
        not end an ``accept`` on a unix socket)."""
        with selectors.DefaultSelector() as selector:
            for listener, port in self._listeners:
                selector.register(listener, selectors.EVENT_READ, port)
            selector.register(self._wake, selectors.EVENT_READ, None)
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if key.data is None or self._stop.is_set():
                        return
                    try:
                        grader, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        return
                    grader.setblocking(True)
                    self._spawn(self._serve, grader, key.data)

    def _kernel_side(self, port: int) -> socket.socket | None:
        """A connection to the kernel's socket, waiting while the kernel starts."""
        deadline = time.monotonic() + self.connect_timeout_s
        while not self._stop.is_set() and time.monotonic() < deadline:
            kernel = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            kernel.settimeout(_CONNECT_S)  # a full backlog would block a connect for good
            try:
                kernel.connect(f"{self.kernel_prefix}-{port}")
                kernel.settimeout(None)
                return kernel
            except OSError:
                kernel.close()
                self._stop.wait(0.05)
        return None

    def _serve(self, grader: socket.socket, port: int) -> None:
        kernel = self._kernel_side(port)
        if kernel is None:
            grader.close()
            return
        link = _Link(grader, kernel, self.budget)
        with self._lock:
            self._links.append(link)
        if self._stop.is_set():
            link.stop()
        up = threading.Thread(target=link.upstream, daemon=True, name="dlgrade-relay-up")
        up.start()
        link.downstream()
        up.join()
        grader.close()
        kernel.close()
        with self._lock:
            self._links.remove(link)
            if link.cut_because:
                self.cuts.append(f"port {port}: {link.cut_because}")
