"""Grader-owned code run in the finished kernel, and the plain data it leaves behind.

The probe cell carries its own source (``graders/kernel/probe_runtime.py`` plus the question's
``probe.py``), so the kernel never imports the grader. Its inputs are written just before it
runs, into a folder the kernel may only read. It writes its results into a private temporary
folder and packs them, with the step it is in, into the one results file the sandbox gives it
(``artifacts.zip``: the kernel cannot create any other file on the host). The grader reads it
as hostile input (``plain_data``): only the file names the question declares, sizes, ``.npy``
headers and JSON depth checked before anything is parsed, and any failure is a failed probe
step for the student, never a grader crash.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from graders.execute import KernelRun
from graders.kernel import is_known_notice
from graders.kernel import source as kernel_source
from graders.models import (
    Artifact,
    KernelStatus,
    ProbeInputs,
    ProbeRecord,
    ProbeStatus,
    ProbeStepError,
)
from graders.plain_data import (
    MAX_ARTIFACT_BYTES,
    PlainDataError,
    check_npz,
    load_json,
    open_zip,
)
from graders.questions.api import QuestionSpec
from graders.sandbox import ResultsFile, Sandbox

_RUNTIME_SOURCE = kernel_source("probe_runtime")
MAX_ARCHIVE_BYTES = 256 << 20
"""All of one question's artifacts together."""
MAX_MEMBERS = 64
_PROGRESS_BYTES = 4096
_BOOKKEEPING = ("probe_errors.json", "probe_done.json", "progress.json", "notices.json")
MAX_NOTICES = 20


def cell_source(spec: QuestionSpec, sandbox: Sandbox, *, step_seconds: float) -> str:
    """The probe cell: defines the runtime and the question's probe in a private namespace."""
    paths = sandbox.kernel_paths
    export = {"archive": paths.probe_archive}
    return f"""# Grader probe for {spec.id} (grader-owned code; not part of the student's notebook).
def __dlgrader_probe():
    import tempfile
    runtime = {{"__name__": "dlgrader_probe_runtime"}}
    exec(compile({_RUNTIME_SOURCE!r}, "<dlgrader probe runtime>", "exec"), runtime)
    question = dict(runtime)
    question["__name__"] = "dlgrader_probe_{spec.id}"
    exec(compile({spec.probe_source!r}, "<dlgrader probe {spec.id}>", "exec"), question)
    runtime["run_probe"](
        question["probe"], get_ipython().user_ns,
        tempfile.mkdtemp(prefix="dlgrade-probe-"), {paths.probe_in!r}, {step_seconds!r},
        {export!r},
    )
__dlgrader_probe()
del __dlgrader_probe
"""


def write_inputs(inputs: ProbeInputs, in_dir: Path) -> None:
    in_dir.mkdir(parents=True, exist_ok=True)
    if inputs.arrays:
        arrays = {k: np.asarray(v) for k, v in inputs.arrays.items()}
        np.savez(in_dir / "inputs.npz", **arrays)  # type: ignore[arg-type]
    (in_dir / "inputs.json").write_text(json.dumps(dict(inputs.values)), encoding="utf-8")
    # The inputs folder exists only for the probe: remove write access to keep it as written.
    for path in in_dir.iterdir():
        path.chmod(0o444)


def _step_errors(raw: object) -> list[ProbeStepError]:
    errors: list[ProbeStepError] = []
    if isinstance(raw, list):
        for item in raw[:200]:
            if isinstance(item, dict):
                errors.append(
                    ProbeStepError(
                        step=str(item.get("step", "?"))[:100],
                        kind=str(item.get("kind", "raised"))[:40],
                        message=str(item.get("message", ""))[:1000],
                    )
                )
    return errors


def _validate(name: str, data: bytes, declared: tuple[str, ...]) -> str | None:
    """Why one member of the results file is not acceptable, or None if it is."""
    if name not in declared:
        return f"{name!r} is not a file this question's probe writes"
    if len(data) > MAX_ARTIFACT_BYTES:
        return f"{name} is {len(data)} bytes (limit {MAX_ARTIFACT_BYTES})"
    try:
        if name.endswith(".npz"):
            check_npz(data, name=name)
        else:
            load_json(data, name=name)
    except PlainDataError as exc:
        return str(exc)
    return None


def _members(results: ResultsFile) -> tuple[dict[str, bytes], list[ProbeStepError]]:
    """The results file's members, read with every limit, or the reasons it could not be."""
    problems: list[ProbeStepError] = []
    try:
        data = results.read(MAX_ARCHIVE_BYTES)
    except OSError as exc:
        problem = f"the probe's results file is not readable: {exc}"
        return {}, [ProbeStepError(step="artifacts", kind="bad_value", message=problem)]
    if not data:
        return {}, problems
    if len(data) > MAX_ARCHIVE_BYTES:
        problem = f"the probe's results are larger than {MAX_ARCHIVE_BYTES} bytes"
        return {}, [ProbeStepError(step="artifacts", kind="bad_value", message=problem)]
    members: dict[str, bytes] = {}
    try:
        what = "the probe's results file"
        with open_zip(data, name=what, max_entries=4 * MAX_MEMBERS) as archive:
            infos = [i for i in archive.infolist() if i.filename not in _BOOKKEEPING]
            if len(infos) > MAX_MEMBERS:
                problem = f"{len(infos)} probe files; only the first {MAX_MEMBERS} were read"
                problems.append(ProbeStepError(step="artifacts", kind="bad_value", message=problem))
            kept = [i for i in archive.infolist() if i.filename in _BOOKKEEPING]
            for info in [*kept, *infos[:MAX_MEMBERS]]:
                if info.compress_type != zipfile.ZIP_STORED or info.file_size > MAX_ARTIFACT_BYTES:
                    problem = f"{info.filename!r} is compressed or too large"
                    problems.append(
                        ProbeStepError(step="artifacts", kind="bad_value", message=problem)
                    )
                    continue
                members[info.filename] = archive.read(info)
    except (PlainDataError, zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        problem = f"the probe's results file is not readable: {exc}"
        problems.append(ProbeStepError(step="artifacts", kind="bad_value", message=problem))
    return members, problems


def _progress_step(raw: bytes | None) -> str | None:
    if not raw or len(raw) > _PROGRESS_BYTES:
        return None
    try:
        found: Any = load_json(raw, name="progress.json")
    except PlainDataError:
        return None
    step = found.get("step") if isinstance(found, dict) else None
    return str(step)[:100] if step is not None else None


def collect(spec: QuestionSpec, run: KernelRun, sandbox: Sandbox, result_dir: Path) -> ProbeRecord:
    """Validate the probe's results file and copy its artifacts to ``result_dir/artifacts/<qid>``.

    Never raises for anything the kernel wrote: a bad member is a failed step with the reason.
    """
    dest = result_dir / "artifacts" / spec.id
    members, errors = _members(sandbox.results)
    raw_errors = members.pop("probe_errors.json", b"[]")
    try:
        errors = _step_errors(load_json(raw_errors, name="probe_errors.json")) + errors
    except PlainDataError as exc:
        errors.append(ProbeStepError(step="artifacts", kind="bad_value", message=str(exc)))
    done = members.pop("probe_done.json", None) is not None
    step = _progress_step(members.pop("progress.json", None))
    notices = _notices(members.pop("notices.json", None))
    artifacts: list[Artifact] = []
    for name, data in sorted(members.items()):
        problem = _validate(name, data, spec.artifacts)
        if problem:
            errors.append(
                ProbeStepError(step=name.rsplit(".", 1)[0], kind="bad_value", message=problem)
            )
            continue
        dest.mkdir(parents=True, exist_ok=True)
        (dest / name).write_bytes(data)
        stem, kind = name.rsplit(".", 1)
        artifacts.append(
            Artifact(
                name=stem,
                path=str((dest / name).relative_to(result_dir)),
                kind=kind,
                bytes=len(data),
            )
        )
    status, message = _status(run, done, errors, step)
    return ProbeRecord(
        question=spec.id,
        status=status,
        artifacts=tuple(artifacts),
        errors=tuple(errors),
        seconds=run.probe_seconds,
        message=message,
        notices=notices,
    )


def _notices(raw: bytes | None) -> tuple[str, ...]:
    """What the compatibility layer did in the kernel ("served MNIST from the grader's copy"):
    message -> how many times, as sentences for the report."""
    if not raw:
        return ()
    try:
        found: Any = load_json(raw, name="notices.json")
    except PlainDataError:
        return ()
    if not isinstance(found, dict):
        return ()
    lines, foreign = [], 0
    for message, count in list(found.items())[:MAX_NOTICES]:
        if not is_known_notice(str(message)):
            foreign += 1
            continue
        times = f" ({count} times)" if isinstance(count, int) and count > 1 else ""
        lines.append(f"{str(message)[:300]}{times}")
    if foreign:
        lines.append(
            f"The notebook's kernel reported {foreign} notice(s) the grader's compatibility "
            "layer never writes; they are not shown (the notebook wrote them itself)."
        )
    return tuple(lines)


def _status(
    run: KernelRun, done: bool, errors: list[ProbeStepError], step: str | None
) -> tuple[ProbeStatus, str]:
    if run.probe_status is KernelStatus.NOT_RUN:
        return ProbeStatus.NOT_RUN, run.probe_message or "the probe did not run"
    if not done:
        where = f" during step {step!r}" if step else ""
        reason = run.probe_message or "the probe stopped before finishing"
        return ProbeStatus.FAILED, f"{reason}{where}"
    if errors:
        return ProbeStatus.PARTIAL, f"{len(errors)} probe step(s) could not get what they needed"
    return ProbeStatus.OK, ""
