"""Grader-owned code run in the finished kernel, and the plain data it leaves behind.

The probe cell carries its own source (``probe_runtime.py`` plus the question's ``probe.py``),
so the kernel never imports the grader. Its inputs are written just before it runs, into a
folder with an unguessable name; its outputs are read only after the kernel has been shut
down, and only as plain data: ``.npz`` loaded with ``allow_pickle=False`` and ``.json``.
Nothing the student's code produced is ever unpickled in the grader's process.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np

from graders.execute import KernelRun
from graders.models import Artifact, ProbeRecord, ProbeStatus, ProbeStepError
from graders.questions import ProbeInputs, QuestionSpec
from graders.sandbox import Sandbox

_RUNTIME_SOURCE = (Path(__file__).resolve().parent / "probe_runtime.py").read_text(encoding="utf-8")
MAX_ARTIFACT_BYTES = 64 << 20
MAX_ARTIFACTS = 64
_BOOKKEEPING = {"probe_errors.json", "probe_done.json", "progress.json"}


def cell_source(spec: QuestionSpec, sandbox: Sandbox, *, step_seconds: float) -> str:
    """The probe cell: defines the runtime and the question's probe in a private namespace."""
    return f"""# Grader probe for {spec.id} (grader-owned code; not part of the student's notebook).
def __dlgrader_probe():
    import os
    runtime = {{"__name__": "dlgrader_probe_runtime"}}
    exec(compile({_RUNTIME_SOURCE!r}, "<dlgrader probe runtime>", "exec"), runtime)
    question = dict(runtime)
    question["__name__"] = "dlgrader_probe_{spec.id}"
    exec(compile({spec.probe_source!r}, "<dlgrader probe {spec.id}>", "exec"), question)
    os.makedirs({str(sandbox.probe_out)!r}, exist_ok=True)
    runtime["run_probe"](
        question["probe"], get_ipython().user_ns,
        {str(sandbox.probe_out)!r}, {str(sandbox.probe_in)!r}, {step_seconds!r},
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


def _validate(path: Path) -> str | None:
    """Why a probe output file is not acceptable plain data, or None if it is."""
    size = path.stat().st_size
    if size > MAX_ARTIFACT_BYTES:
        return f"{path.name} is {size} bytes (limit {MAX_ARTIFACT_BYTES})"
    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as archive:  # a small npz may unpack to gigabytes
                unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > MAX_ARTIFACT_BYTES:
                return f"{path.name} unpacks to {unpacked} bytes (limit {MAX_ARTIFACT_BYTES})"
            with np.load(path, allow_pickle=False) as data:
                for key in data.files:
                    _ = data[key]
        elif path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        else:
            return f"{path.name}: only .npz and .json are accepted"
    except (ValueError, OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        return f"{path.name} is not valid plain data: {exc}"
    return None


def _read_json(path: Path, default: object) -> object:
    """A bookkeeping file of the probe, or ``default`` when it is absent, broken or too big."""
    try:
        if path.stat().st_size > MAX_ARTIFACT_BYTES:
            return default
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


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


def collect(spec: QuestionSpec, run: KernelRun, sandbox: Sandbox, result_dir: Path) -> ProbeRecord:
    """Copy the probe's plain-data files into ``result_dir/artifacts/<qid>/`` and describe them."""
    out = sandbox.probe_out
    dest = result_dir / "artifacts" / spec.id
    errors: list[ProbeStepError] = []
    artifacts: list[Artifact] = []
    if out.is_dir() and not out.is_symlink():  # a link planted by student code is not followed
        errors += _step_errors(_read_json(out / "probe_errors.json", []))
        files = sorted(p for p in out.iterdir() if p.is_file() and not p.is_symlink())
        outputs = [p for p in files if p.name not in _BOOKKEEPING]
        if len(outputs) > MAX_ARTIFACTS:
            errors.append(
                ProbeStepError(
                    step="artifacts",
                    kind="bad_value",
                    message=f"{len(outputs)} probe files; only the first {MAX_ARTIFACTS} were kept",
                )
            )
        for path in outputs[:MAX_ARTIFACTS]:
            problem = _validate(path)
            if problem:
                errors.append(ProbeStepError(step=path.stem, kind="bad_value", message=problem))
                continue
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / path.name)
            artifacts.append(
                Artifact(
                    name=path.stem,
                    path=str((dest / path.name).relative_to(result_dir)),
                    kind=path.suffix.lstrip("."),
                    bytes=path.stat().st_size,
                )
            )
    done = (out / "probe_done.json").is_file()
    status, message = _status(run, done, errors, out)
    return ProbeRecord(
        question=spec.id,
        status=status,
        artifacts=tuple(artifacts),
        errors=tuple(errors),
        seconds=run.probe_seconds,
        message=message,
    )


def _status(
    run: KernelRun, done: bool, errors: list[ProbeStepError], out: Path
) -> tuple[ProbeStatus, str]:
    if run.probe_status == "not_run":
        return ProbeStatus.NOT_RUN, run.probe_message or "the probe did not run"
    if not done:
        progress = _read_json(out / "progress.json", {})
        step = progress.get("step") if isinstance(progress, dict) else None
        where = f" during step {step!r}" if step else ""
        reason = run.probe_message or "the probe stopped before finishing"
        return ProbeStatus.FAILED, f"{reason}{where}"
    if errors:
        return ProbeStatus.PARTIAL, f"{len(errors)} probe step(s) could not get what they needed"
    return ProbeStatus.OK, ""
