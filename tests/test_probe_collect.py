"""What the grader takes out of a probe's folder: plain data only, described for the report."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import nbformat
import numpy as np
import pytest
from fakes import json_bytes, npz_bytes, pickled_npz_bytes, sparse_file, symlink_to

from graders import probe, sandbox
from graders.config import Limits
from graders.execute import KernelRun
from graders.models import ProbeStatus, ProbeStepError
from graders.questions import ProbeInputs, QuestionSpec


@pytest.fixture
def spec(questions: tuple[QuestionSpec, ...]) -> QuestionSpec:
    return next(q for q in questions if q.id == "q4")


@pytest.fixture
def box(tmp_path: Path) -> sandbox.Sandbox:
    return sandbox.prepare(
        question="q4", scratch=tmp_path / "scratch", limits=Limits(), threads=1, device="cpu"
    )


@pytest.fixture
def result_dir(tmp_path: Path) -> Path:
    path = tmp_path / "result"
    path.mkdir()
    return path


def kernel_run(probe_status: str = "ok", probe_message: str = "") -> KernelRun:
    return KernelRun(
        notebook=nbformat.v4.new_notebook(),
        cells=(),
        probe_status=probe_status,
        probe_message=probe_message,
    )


def probe_left(
    box: sandbox.Sandbox,
    files: dict[str, bytes | object],
    *,
    errors: Sequence[object] | None = None,
    done: bool = True,
    step: str | None = None,
) -> None:
    """Lay out ``probe_out`` the way ``probe_runtime`` leaves it."""
    out = box.probe_out
    out.mkdir(parents=True)
    if step is not None:
        (out / "progress.json").write_bytes(json_bytes({"step": step}))
    for name, content in files.items():
        if isinstance(content, bytes):
            (out / name).write_bytes(content)
        else:
            content(out / name)  # type: ignore[operator]
    if done:
        (out / "probe_errors.json").write_bytes(json_bytes(list(errors or [])))
        (out / "probe_done.json").write_bytes(json_bytes({"written": sorted(files)}))


def test_plain_data_is_copied_with_paths_relative_to_the_result(spec, box, result_dir):
    weights = np.arange(12.0).reshape(3, 4)
    probe_left(
        box,
        {"final.npz": npz_bytes(w0=weights), "layout.json": json_bytes({"layers": [784, 32]})},
        step="final",
    )
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.status is ProbeStatus.OK
    assert record.errors == ()
    assert {a.name: (a.path, a.kind) for a in record.artifacts} == {
        "final": ("artifacts/q4/final.npz", "npz"),
        "layout": ("artifacts/q4/layout.json", "json"),
    }
    for artifact in record.artifacts:
        copied = result_dir / artifact.path
        assert not Path(artifact.path).is_absolute()
        assert copied.read_bytes() == (box.probe_out / copied.name).read_bytes()
        assert artifact.bytes == copied.stat().st_size
    with np.load(result_dir / "artifacts/q4/final.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["w0"], weights)
    assert sorted(p.name for p in (result_dir / "artifacts/q4").iterdir()) == [
        "final.npz",
        "layout.json",
    ]  # progress.json, probe_done.json, probe_errors.json are bookkeeping, not artifacts


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("evil.npz", pickled_npz_bytes(), "Object arrays cannot be loaded"),
        ("broken.npz", b"PK\x03\x04 not a zip", "not valid plain data"),
        ("broken.json", b"{'single': quotes}", "not valid plain data"),
        ("notes.txt", b"hello", "only .npz and .json"),
        ("model.pkl", b"\x80\x04K\x01.", "only .npz and .json"),
        ("huge.json", sparse_file(probe.MAX_ARTIFACT_BYTES + 1), "limit"),
    ],
)
def test_anything_but_plain_data_is_rejected_and_not_copied(
    spec, box, result_dir, name, content, why
):
    probe_left(box, {"good.json": json_bytes([1, 2]), name: content})
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert [a.name for a in record.artifacts] == ["good"]
    [error] = record.errors
    assert error.step == Path(name).stem
    assert error.kind == "bad_value"
    assert why in error.message
    assert not (result_dir / "artifacts" / "q4" / name).exists()
    assert record.status is ProbeStatus.PARTIAL


def test_a_symlink_planted_in_the_probe_folder_is_not_followed(spec, box, result_dir, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"hidden": "tests"}')
    probe_left(box, {"stolen.json": symlink_to(secret)})
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.artifacts == ()
    assert not list(result_dir.rglob("stolen.json"))


def test_a_folder_in_the_probe_output_is_not_collected(spec, box, result_dir):
    probe_left(box, {"a.json": json_bytes(1)})
    (box.probe_out / "sub.json").mkdir()
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert [a.name for a in record.artifacts] == ["a"]


def test_probe_errors_become_step_errors(spec, box, result_dir):
    errors = [
        {"step": "forward", "kind": "missing_name", "message": "`feed_forward_sample` missing"},
        {"step": "train_step", "kind": "raised", "message": "ValueError: shapes"},
        "not a dict",
        {"step": "x" * 500, "message": "m" * 5000},
    ]
    probe_left(box, {"init.npz": npz_bytes(w0=np.zeros(3))}, errors=errors)
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.errors[:2] == (
        ProbeStepError(
            step="forward", kind="missing_name", message="`feed_forward_sample` missing"
        ),
        ProbeStepError(step="train_step", kind="raised", message="ValueError: shapes"),
    )
    assert len(record.errors) == 3  # the non-dict entry is dropped, the long one is cut
    assert len(record.errors[2].step) <= 100 and len(record.errors[2].message) <= 1000
    assert record.status is ProbeStatus.PARTIAL
    assert record.message.startswith("3 ")
    assert [a.name for a in record.artifacts] == ["init"]


def test_an_unreadable_errors_file_does_not_stop_collection(spec, box, result_dir):
    probe_left(box, {"a.json": json_bytes(1)})
    (box.probe_out / "probe_errors.json").write_text("{not json")
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.status is ProbeStatus.OK
    assert [a.name for a in record.artifacts] == ["a"]


def test_without_probe_done_the_probe_failed_during_the_step_in_progress(spec, box, result_dir):
    probe_left(box, {"init.npz": npz_bytes(w0=np.ones(2))}, done=False, step="train_step")
    run = kernel_run("timeout", "the probe did not finish within 120 s")
    record = probe.collect(spec, run, box, result_dir)
    assert record.status is ProbeStatus.FAILED
    assert "train_step" in record.message
    assert "did not finish within 120 s" in record.message
    assert [a.name for a in record.artifacts] == ["init"]  # what it did write is kept


def test_a_probe_that_never_ran_leaves_nothing_to_collect(spec, box, result_dir):
    record = probe.collect(spec, kernel_run("kernel_died", "the kernel had died"), box, result_dir)
    assert record.status is ProbeStatus.FAILED
    assert "kernel had died" in record.message
    assert record.artifacts == ()
    assert not (result_dir / "artifacts").exists()


def test_a_probe_not_run_is_reported_as_such(spec, box, result_dir):
    record = probe.collect(spec, kernel_run("not_run", "no kernel"), box, result_dir)
    assert record.status is ProbeStatus.NOT_RUN
    assert record.message == "no kernel"


def test_the_number_of_artifacts_is_capped(spec, box, result_dir):
    files: dict[str, bytes | object] = {
        f"a{i:03d}.json": json_bytes(i) for i in range(probe.MAX_ARTIFACTS + 5)
    }
    probe_left(box, files)
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert len(record.artifacts) == probe.MAX_ARTIFACTS
    assert len(os.listdir(result_dir / "artifacts" / "q4")) == probe.MAX_ARTIFACTS


# -- the other direction: inputs for the probe, and the probe cell itself ----------------------


def test_inputs_are_written_as_plain_data_and_made_read_only(tmp_path):
    inputs = ProbeInputs(
        arrays={"w0": np.arange(6.0).reshape(2, 3)}, values={"learning_rate": 0.003}
    )
    in_dir = tmp_path / "in"
    probe.write_inputs(inputs, in_dir)
    with np.load(in_dir / "inputs.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["w0"], inputs.arrays["w0"])
    assert json.loads((in_dir / "inputs.json").read_text()) == {"learning_rate": 0.003}
    for path in in_dir.iterdir():
        assert path.stat().st_mode & 0o222 == 0


def test_inputs_without_arrays_write_no_npz(tmp_path):
    probe.write_inputs(ProbeInputs(values={"calls": {}}), tmp_path / "in")
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["inputs.json"]


def test_the_probe_cell_is_valid_python_naming_the_sandbox_folders(spec, box):
    source = probe.cell_source(spec, box, step_seconds=30.0)
    compile(source, "<probe cell>", "exec")
    assert str(box.probe_out) in source and str(box.probe_in) in source
    assert "import graders" not in source  # the kernel must never need the grader package


# -- size caps on what the kernel leaves behind -----------------------------------------------


def test_a_compressed_npz_that_unpacks_past_the_cap_is_rejected(spec, box, result_dir, monkeypatch):
    monkeypatch.setattr(probe, "MAX_ARTIFACT_BYTES", 1 << 20)
    buf = io.BytesIO()
    np.savez_compressed(buf, zeros=np.zeros(16 << 20, dtype=np.uint8))  # 16 MiB -> ~16 KiB
    assert len(buf.getvalue()) < probe.MAX_ARTIFACT_BYTES
    probe_left(box, {"bomb.npz": buf.getvalue()})
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.artifacts == ()
    assert [e.kind for e in record.errors] == ["bad_value"]


def test_an_oversized_errors_file_is_not_read(spec, box, result_dir, monkeypatch):
    monkeypatch.setattr(probe, "MAX_ARTIFACT_BYTES", 1 << 10)
    errors = [{"step": f"s{i}", "kind": "raised", "message": "x" * 100} for i in range(50)]
    probe_left(box, {}, errors=errors)
    assert (box.probe_out / "probe_errors.json").stat().st_size > probe.MAX_ARTIFACT_BYTES
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert not any(e.step.startswith("s") for e in record.errors)
