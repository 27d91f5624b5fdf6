"""Kernel-side probe runtime: executed as source inside the student's finished kernel.

Never imported by the grader. It gives each question's ``probe(ctx)`` a small toolkit: named
steps whose failures are recorded instead of raised, a per-step alarm, lookups of the
student's globals that say clearly when a name is missing, and writers that only accept plain
data (numeric arrays to ``.npz``, JSON values to ``.json``). A ``progress.json`` written before
every step tells the grader which step was running if the kernel dies mid-probe.

With ``export`` (always, in a real grading) the files, progress included, are packed after
every step's start and every write into the one results file the sandbox lets the kernel
write on the host (an uncompressed zip): a probe that dies half-way still hands over what it
had, and which step it was in.
"""

import contextlib
import encodings.cp437  # noqa: F401  zipfile (np.savez) needs it; import before any step alarm
import json
import math
import os
import signal
import zipfile
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any, NoReturn, TypeAlias

import numpy as np

# Annotations are evaluated when this source runs in the kernel (no ``__future__`` import), so
# they name only what is defined here: the standard library's typing and numpy.
Array: TypeAlias = np.ndarray[Any, np.dtype[Any]]
"""A numpy array of any shape and dtype."""
Plain: TypeAlias = bool | str | int | float | list["Plain"] | dict[str, "Plain"] | None
"""A JSON-safe value."""


class MissingName(Exception):
    """The notebook does not define a name the grader needs."""


class BadValue(Exception):
    """A student's function returned something the grader cannot use (shape, type, NaN...)."""


class StepTimeout(BaseException):
    """Raised by the alarm when one probe step runs too long (BaseException: not swallowed)."""


def _plain(value: Any) -> Plain:
    """Convert numbers, arrays and tensors to JSON-safe Python values; refuse anything else."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value if not (isinstance(value, float) and not math.isfinite(value)) else str(value)
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.ndim else _plain(value.item())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    raise BadValue(f"a value of type {type(value).__name__} is not plain data")


def as_array(value: Any, what: str, *, dtype: type[np.generic] = np.float64) -> Array:
    """A numeric numpy array from arrays, tensors, lists or scalars, or BadValue saying why not."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise BadValue(f"{what} is not numeric ({type(value).__name__}): {exc}") from None
    return array


class Context:
    """What a question's ``probe(ctx)`` works with."""

    def __init__(
        self,
        user_ns: dict[str, Any],
        out_dir: str,
        in_dir: str,
        step_seconds: float,
        export: Mapping[str, str] | None = None,
    ):
        self.ns = user_ns
        self.out_dir = out_dir
        self.export: Mapping[str, str] = export or {}
        self.step_seconds = step_seconds
        self.errors: list[dict[str, str]] = []
        self.written: list[str] = []
        self.snapshots: dict[str, Any] = dict(user_ns.get("__dlgrader_snapshots__", {}))
        inputs_npz = os.path.join(in_dir, "inputs.npz")
        inputs_json = os.path.join(in_dir, "inputs.json")
        self.arrays: dict[str, Array] = {}
        if os.path.exists(inputs_npz):
            with np.load(inputs_npz, allow_pickle=False) as data:
                self.arrays = {k: data[k] for k in data.files}
        self.values: dict[str, Any] = {}
        if os.path.exists(inputs_json):
            with open(inputs_json, encoding="utf-8") as fh:
                self.values = json.load(fh)

    # -- the student's names -------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.ns

    def get(self, name: str, *, callable_: bool = False) -> Any:
        if name not in self.ns:
            raise MissingName(f"the notebook does not define `{name}`")
        value = self.ns[name]
        if callable_ and not callable(value):
            raise BadValue(f"`{name}` should be a function, but it is a {type(value).__name__}")
        return value

    # -- steps ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Run one probe step; its failure is recorded with a kind and a message, not raised."""
        self._progress(name)
        previous = signal.signal(signal.SIGALRM, self._alarm)
        signal.setitimer(signal.ITIMER_REAL, self.step_seconds)
        try:
            yield
        except MissingName as exc:
            self.errors.append({"step": name, "kind": "missing_name", "message": str(exc)})
        except BadValue as exc:
            self.errors.append({"step": name, "kind": "bad_value", "message": str(exc)})
        except StepTimeout:
            self.errors.append(
                {
                    "step": name,
                    "kind": "timeout",
                    "message": f"did not finish within {self.step_seconds:g} s",
                }
            )
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: still the student's code
            self.errors.append(
                {
                    "step": name,
                    "kind": "raised",
                    "message": f"{type(exc).__name__}: {str(exc)[:500]}",
                }
            )
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _alarm(self, signum: int, frame: FrameType | None) -> NoReturn:
        raise StepTimeout()

    def _progress(self, name: str) -> None:
        with open(os.path.join(self.out_dir, "progress.json"), "w", encoding="utf-8") as fh:
            json.dump({"step": name}, fh)
        self._pack()

    def _pack(self) -> None:
        """Everything written so far, as the results file (rewritten whole each time)."""
        archive = self.export.get("archive")
        if not archive:
            return
        with open(archive, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as packed:
            for name in sorted(os.listdir(self.out_dir)):
                packed.write(os.path.join(self.out_dir, name), arcname=name)

    # -- plain-data writers --------------------------------------------------------------
    def save_arrays(self, name: str, arrays: Mapping[str, Any]) -> None:
        clean: dict[str, Array] = {}
        for key, value in arrays.items():
            array = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value)
            if array.dtype == object or array.dtype.kind not in "biuf":
                raise BadValue(f"{key} is not a numeric array (dtype {array.dtype})")
            clean[str(key)] = array
        np.savez(os.path.join(self.out_dir, f"{name}.npz"), **clean)  # type: ignore[arg-type]
        self.written.append(f"{name}.npz")
        self._pack()

    def save_json(self, name: str, value: Any) -> None:
        with open(os.path.join(self.out_dir, f"{name}.json"), "w", encoding="utf-8") as fh:
            json.dump(_plain(value), fh)
        self.written.append(f"{name}.json")
        self._pack()

    def finish(self) -> None:
        with open(os.path.join(self.out_dir, "probe_errors.json"), "w", encoding="utf-8") as fh:
            json.dump(self.errors, fh)
        notices = self.ns.get("__dlgrader_compat__") or {}
        if isinstance(notices, dict) and notices:
            with open(os.path.join(self.out_dir, "notices.json"), "w", encoding="utf-8") as fh:
                json.dump({str(k): int(v) for k, v in list(notices.items())[:50]}, fh)
        with open(os.path.join(self.out_dir, "probe_done.json"), "w", encoding="utf-8") as fh:
            json.dump({"written": self.written}, fh)
        self._pack()


def run_probe(
    probe: Callable[[Context], object],
    user_ns: dict[str, Any],
    out_dir: str,
    in_dir: str,
    step_seconds: float,
    export: Mapping[str, str] | None = None,
) -> None:
    ctx = Context(user_ns, out_dir, in_dir, step_seconds, export)
    try:
        probe(ctx)
    finally:
        ctx.finish()
