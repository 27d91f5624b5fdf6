"""The entry point ``run_autograder`` calls: grade the upload into ``results/results.json``.

Whatever happens, a valid results file is left: a placeholder before grading starts, the graded
results after, a crash notice for any exception. Run notes (settings, peak memory, the earlier
submission's score) are added afterwards, and losing them never costs the graded file.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graders.config import GradeOptions
from graders.execute import KERNEL_PEAKS
from graders.gradescope.bundle import BundleSettings, autograder_root, read_settings, secure_source
from graders.models import GradeReport, Visibility
from graders.render.gradescope import (
    JsonDict,
    crash_results,
    gradescope_results,
    placeholder_results,
    write_results_json,
)
from graders.sandbox.container_limits import ContainerMemory, container_memory

_MB = 1024  # ru_maxrss is in KiB on Linux


def safe_grade_to_gradescope(
    source: Path,
    results_path: Path,
    options: GradeOptions | None = None,
    *,
    out_dir: Path | None = None,
    stdout_visibility: Visibility | str = Visibility.HIDDEN,
    grade_fn: Callable[..., GradeReport] | None = None,
) -> JsonDict:
    """Grade ``source`` and ALWAYS leave a valid ``results_path``; returns what was written.

    Every exception, ``SystemExit`` included (nothing in our process should exit mid-grade, and
    if something does the student still gets a file), becomes a crash notice. A
    ``KeyboardInterrupt`` writes its notice too and is then re-raised: whoever pressed Ctrl-C
    wants the process to stop. The traceback goes to stderr, which Gradescope shows to
    instructors only. ``out_dir`` keeps the grader's own result folder (default: a temporary
    one); ``grade_fn`` stands in for ``pipeline.grade`` in tests.
    """
    started = time.monotonic()
    write_results_json(placeholder_results(), results_path)
    hidden: Visibility | str = Visibility.AFTER_PUBLISHED
    try:
        # Deferred until the placeholder is written: a broken import still leaves a valid file.
        from graders.pipeline import grade
        from graders.rubric import load_rubric

        options = options or GradeOptions()
        hidden = load_rubric(options.rubric_file).hidden_visibility
        with tempfile.TemporaryDirectory(prefix="dlgrade-gs-") as tmp:
            report = (grade_fn or grade)(source, out_dir or Path(tmp), options)
            results = gradescope_results(
                report, hidden_visibility=hidden, stdout_visibility=stdout_visibility
            )
            write_results_json(results, results_path)
        return results
    except BaseException as exc:
        traceback.print_exc(file=sys.stderr)
        results = crash_results(
            exc,
            seconds=time.monotonic() - started,
            hidden_visibility=hidden,
            stdout_visibility=stdout_visibility,
        )
        write_results_json(results, results_path)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return results


def _previous_score(metadata_path: Path) -> str | None:
    """A line about the last earlier submission's score, from Gradescope's metadata."""
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        previous = metadata.get("previous_submissions") or []
        last = previous[-1]
        score = float(last.get("score"))
    except (OSError, ValueError, TypeError, AttributeError, IndexError, KeyError):
        return None
    when = last.get("submission_time") or ""
    return f"Your previous submission{f' ({when})' if when else ''} scored {score:g}."


def peak_memory_mb() -> tuple[float, float]:
    """Peak RSS of this process and of the largest kernel process it ran, in MB (read from
    the kernel's own ``/proc`` before it stopped: ``RUSAGE_CHILDREN`` never sees a kernel in
    its own pid namespace)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / _MB
    return own, KERNEL_PEAKS.mb


@dataclass(frozen=True, kw_only=True)
class _Measured:
    """Peak memory, read once after grading: the output's lines and extra_data agree."""

    own_mb: float
    child_mb: float
    container: ContainerMemory | None

    @classmethod
    def now(cls) -> _Measured:
        own, child = peak_memory_mb()
        return cls(own_mb=own, child_mb=child, container=container_memory())


def _notes(root: Path, settings: BundleSettings, measured: _Measured) -> list[str]:
    own, child = measured.own_mb, measured.child_mb
    lines = [
        f"Grading settings: profile {settings.profile}, {settings.parallel} kernel(s) at once.",
        f"Peak memory: grader {own:.0f} MB, largest kernel {child:.0f} MB "
        f"(at most {own + child:.0f} MB together).",
    ]
    if measured.container is not None:
        lines.append(measured.container.line())
    previous = _previous_score(root / "submission_metadata.json")
    if previous:
        lines.append(previous)
    return lines


def _options(root: Path, settings: BundleSettings) -> GradeOptions:
    config = root / "source" / "config"

    def pick(name: str) -> Path | None:
        return config / name if (config / name).exists() else None

    return GradeOptions(
        profile=settings.profile,
        parallel=settings.parallel,
        data_root=root / "data",
        profiles_file=pick("profiles.toml"),
        rubric_file=pick("rubric.toml"),
        thresholds_file=pick("thresholds.toml"),
    )


def run_autograder(root: Path | None = None) -> JsonDict:
    """Grade ``root/submission`` into ``root/results/results.json``; always leaves a valid file."""
    root = root or autograder_root()
    results_path = root / "results" / "results.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    settings = BundleSettings()
    try:
        settings = read_settings(root / "source")
        options: GradeOptions | None = _options(root, settings)
        if os.geteuid() == 0:
            secure_source(root)
    except Exception as exc:  # a broken bundle.toml still gets graded, with defaults
        print(f"dlgrade gradescope: {exc}; grading with the defaults", flush=True)
        options = None
    results = safe_grade_to_gradescope(root / "submission", results_path, options)
    try:
        measured = _Measured.now()
        notes = _notes(root, settings, measured)
        return _annotate(results, results_path, notes, measured)
    except Exception:  # the graded file is already valid; the notes are not worth losing it
        traceback.print_exc()
        return results


def _annotate(
    results: JsonDict,
    path: Path,
    notes: list[str],
    measured: _Measured,
) -> JsonDict:
    """Add the run notes to the output students and staff see, and the numbers to extra_data."""
    print("\n".join(notes), flush=True)
    annotated = dict(results)
    annotated["output"] = "\n".join([str(results.get("output", "")), "", *notes]).strip()
    annotated["extra_data"] = {
        **results.get("extra_data", {}),
        "peak_rss_mb": {"grader": round(measured.own_mb), "kernel": round(measured.child_mb)},
    }
    container = measured.container
    if container is not None:
        annotated["extra_data"]["container_memory_mb"] = {
            "peak": round(container.peak_mb),
            "limit": round(container.limit_mb) if container.limit_mb else None,
        }
    write_results_json(annotated, path)
    return annotated
