"""Headless Chromium driven over the DevTools protocol, with the standard library only.

``test_html_chromium`` only needs a page's DOM and log (``--dump-dom``); the answer and
manual-grading tests need more: an element's box on screen, typing into fields, clicking a
button, a download saved to disk, a screenshot. Chromium speaks the DevTools protocol on a
pair of pipes (``--remote-debugging-pipe``: it reads commands on fd 3 and writes replies on
fd 4, each a JSON message ended by a NUL byte), so no websocket client or browser driver is
needed. Every console message and uncaught exception of the page is collected, so a test can
assert there were none.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
"""A headless browser that asks nothing of the network (and can resolve no host)."""
FLAGS = (*HEADLESS, "--remote-debugging-pipe")
TIMEOUT_S = 60.0


class CdpError(RuntimeError):
    """Chromium answered a command with an error, or did not answer in time."""


@dataclass
class Page:
    """One tab, attached over the pipe; ``console`` and ``errors`` fill as events arrive."""

    _to: Any
    _from: Any
    _session: str = ""
    _next_id: int = 0
    _buffer: bytes = b""
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    downloads: dict[str, str] = field(default_factory=dict)
    """Download guid -> its state (``inProgress``, ``completed``, ``canceled``)."""
    _events: list[dict[str, Any]] = field(default_factory=list)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise CdpError("chromium did not answer in time")
            chunk = os.read(self._from.fileno(), 1 << 16)
            if not chunk:
                raise CdpError("chromium closed its pipe")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        if "method" in message:
            self._note(message)
        return message

    def _note(self, event: dict[str, Any]) -> None:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.console.append(f"{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            self.errors.append(json.dumps(params["exceptionDetails"])[:2000])
        elif method == "Log.entryAdded":
            entry = params["entry"]
            self.console.append(f"{entry['level']}: {entry['text']}")
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Browser.downloadProgress":
            self.downloads[params["guid"]] = params["state"]
        self._events.append(event)

    def send(self, method: str, params: dict[str, Any] | None = None, *, browser: bool = False):
        """Send a command (to the tab, or to the browser) and return its result."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if self._session and not browser:
            message["sessionId"] = self._session
        self._to.write(json.dumps(message).encode() + b"\0")
        self._to.flush()
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CdpError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def wait_for(self, method: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        """The next event named ``method`` (one that already arrived counts)."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self._events):
                if event["method"] == method:
                    del self._events[: i + 1]
                    return event
            self._events.clear()
            self._read_message(deadline)

    def open(self, url: str) -> None:
        """Navigate and return once the *new* document has loaded: the page open before (the
        same URL, for a reload) is marked first, since a load event of its own can still be in
        the pipe on a busy machine, and the marked page would answer for the new one."""
        self.evaluate("window.__cdpStale = true")
        self._events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")
        deadline = time.monotonic() + TIMEOUT_S
        while self.evaluate("!!window.__cdpStale || document.readyState !== 'complete'"):
            if time.monotonic() > deadline:
                raise CdpError(f"{url} did not finish loading in time")
            time.sleep(0.02)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (an exception raises CdpError)."""
        done = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in done:
            raise CdpError(f"{expression[:80]}: {done['exceptionDetails']}")
        return done["result"].get("value")

    def box(self, selector: str) -> dict[str, float]:
        """The bounding box (x, y, width, height, in CSS pixels) of the first match."""
        found = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()"
        )
        if found is None:
            raise CdpError(f"no element matches {selector!r}")
        return dict(found)

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type ``text`` as a keyboard would (input events fire)."""
        self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.focus(); e.select && e.select(); })()"
        )
        self.send("Input.insertText", {"text": text})

    def click(self, selector: str) -> None:
        """A real mouse click at the middle of the element."""
        box = self.box(selector)
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        for kind in ("mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
            )

    def screenshot(self, path: Path, *, full_page: bool = True) -> Path:
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def allow_downloads(self, folder: Path) -> None:
        self.send(
            "Browser.setDownloadBehavior",
            {"behavior": "allow", "downloadPath": str(folder), "eventsEnabled": True},
            browser=True,
        )

    def wait_for_download(self, timeout: float = TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while "completed" not in self.downloads.values():
            if "canceled" in self.downloads.values():
                raise CdpError("the download was canceled")
            self._read_message(deadline)


@contextlib.contextmanager
def browser(tmp: Path, *, width: int = 1100, height: int = 1400) -> Iterator[Page]:
    """A headless Chromium with one attached tab; closed (and waited for) on exit."""
    assert CHROMIUM is not None, "chromium is not installed"
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()

    def fds() -> None:  # runs in the child: the pipes become its fd 3 and fd 4
        # Copies first: a pipe end may itself be fd 3 or 4, and dup2 onto itself would
        # neither move it nor clear its close-on-exec flag.
        read_end, write_end = os.dup(to_child_r), os.dup(from_child_w)
        os.dup2(read_end, 3)
        os.dup2(write_end, 4)

    profile = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"],
        preexec_fn=fds,  # a test helper, single-threaded
        close_fds=False,  # else fd 3 and 4 are closed after preexec_fn (the rest are CLOEXEC)
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(to_child_r)
    os.close(from_child_w)
    to = os.fdopen(to_child_w, "wb")
    back = os.fdopen(from_child_r, "rb")
    page = Page(_to=to, _from=back)
    try:
        targets = page.send("Target.getTargets")["targetInfos"]
        tab = next((t for t in targets if t["type"] == "page"), None)
        if tab is None:
            tab = page.send("Target.createTarget", {"url": "about:blank"})
        target = tab["targetId"]
        attached = page.send("Target.attachToTarget", {"targetId": target, "flatten": True})
        page._session = attached["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(f"{domain}.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        yield page
    finally:
        with contextlib.suppress(Exception):
            page.send("Browser.close", browser=True)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        to.close()
        back.close()
