"""What the grader takes out of a probe's results file: plain data only, described for the report.

The kernel hands over one uncompressed zip (the only file it may write on the host); all of it
is hostile input, so each test lays out what a kernel could leave there
(``fakes.leave_probe_results``) and asserts what the grader keeps and says.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import nbformat
import numpy as np
import pytest
from fakes import json_bytes, leave_probe_results, npz_bytes, pickled_npz_bytes, sparse_file

from graders import plain_data, probe, sandbox
from graders.config import FIXTURE_DATA_ROOT, Limits
from graders.execute import KernelRun
from graders.models import ProbeInputs, ProbeStatus, ProbeStepError, SandboxMode
from graders.questions.api import QuestionSpec


@pytest.fixture
def spec(questions: tuple[QuestionSpec, ...]) -> QuestionSpec:
    return next(q for q in questions if q.id == "q4")


@pytest.fixture
def box(tmp_path: Path) -> Iterator[sandbox.Sandbox]:
    """A kernel's folders as the grader prepares them (no kernel is started here), removed
    after the test as the pipeline removes them."""
    (tmp_path / "scratch").mkdir()
    prepared = sandbox.prepare(
        plan=sandbox.SandboxPlan(mode=SandboxMode.UNCONFINED),
        question="q4",
        scratch=tmp_path / "scratch",
        limits=Limits(),
        threads=1,
        device="cpu",
        data_root=FIXTURE_DATA_ROOT,
    )
    yield prepared
    sandbox.cleanup(prepared)


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
    leave_probe_results(
        box.probe_archive,
        files,  # type: ignore[arg-type]
        errors=list(errors or []),
        done=done,
        step=step,
    )


def declaring(spec: QuestionSpec, *names: str) -> QuestionSpec:
    return replace(spec, artifacts=(*spec.artifacts, *names))


def test_plain_data_is_copied_with_paths_relative_to_the_result(spec, box, result_dir):
    weights = np.arange(12.0).reshape(3, 4)
    final = npz_bytes(w0=weights)
    probe_left(box, {"final.npz": final, "layout.json": json_bytes({"layers": [784, 32]})})
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.status is ProbeStatus.OK
    assert record.errors == ()
    assert {a.name: (a.path, a.kind) for a in record.artifacts} == {
        "final": ("artifacts/q4/final.npz", "npz"),
        "layout": ("artifacts/q4/layout.json", "json"),
    }
    for artifact in record.artifacts:
        assert not Path(artifact.path).is_absolute()
        assert artifact.bytes == (result_dir / artifact.path).stat().st_size
    assert (result_dir / "artifacts/q4/final.npz").read_bytes() == final
    with np.load(result_dir / "artifacts/q4/final.npz", allow_pickle=False) as data:
        np.testing.assert_array_equal(data["w0"], weights)
    assert sorted(p.name for p in (result_dir / "artifacts/q4").iterdir()) == [
        "final.npz",
        "layout.json",
    ]  # probe_done.json and probe_errors.json are bookkeeping, not artifacts


def _npy_claiming(shape: tuple[int, ...]) -> bytes:
    """An .npy whose header claims ``shape`` of float64 but holds 8 bytes of data."""
    header = {"descr": "<f8", "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + b"\0" * 8


def _npz_of(**members: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("evil.npz", pickled_npz_bytes(), "is not a plain number type"),
        ("broken.npz", b"PK\x03\x04 not a zip", "is not a zip archive"),
        ("broken.json", b"{'single': quotes}", "is not valid JSON"),
        ("huge.json", sparse_file(plain_data.MAX_JSON_BYTES + 1), "limit"),
        ("claims.npz", _npz_of(w=_npy_claiming((1 << 40,))), "header claims shape"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nests 100000 levels deep"),
    ],
)
def test_anything_but_plain_data_is_rejected_and_not_copied(
    spec, box, result_dir, name, content, why
):
    probe_left(box, {"layout.json": json_bytes([1, 2]), name: content})
    record = probe.collect(declaring(spec, name), kernel_run(), box, result_dir)
    assert [a.name for a in record.artifacts] == ["layout"]
    [error] = record.errors
    assert error.step == Path(name).stem
    assert error.kind == "bad_value"
    assert why in error.message
    assert not (result_dir / "artifacts" / "q4" / name).exists()
    assert record.status is ProbeStatus.PARTIAL


@pytest.mark.parametrize("name", ["notes.txt", "model.pkl", "extra.json", "../../escape.json"])
def test_only_the_files_the_question_declares_are_taken(spec, box, result_dir, tmp_path, name):
    probe_left(box, {"layout.json": json_bytes(1), name: json_bytes({"plain": True})})
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert [a.name for a in record.artifacts] == ["layout"]
    [error] = record.errors
    assert "is not a file this question's probe writes" in error.message
    assert not list(tmp_path.rglob("escape.json")) and not list(result_dir.rglob("extra.json"))


def test_a_number_too_large_for_a_float_is_read_as_infinite_not_a_crash(spec, box, result_dir):
    probe_left(box, {"layout.json": f'{{"big": {10**400}, "ok": 3}}'.encode()})
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.status is ProbeStatus.OK
    value = plain_data.load_json_file(result_dir / record.artifacts[0].path)
    assert value == {"big": float("inf"), "ok": 3}


def test_a_results_file_replaced_by_a_link_is_not_followed(spec, box, result_dir, tmp_path):
    secret = tmp_path / "secret.zip"
    with zipfile.ZipFile(secret, "w") as archive:
        archive.writestr("layout.json", '{"hidden": "tests"}')
        archive.writestr("probe_done.json", "{}")
    box.probe_archive.unlink()
    box.probe_archive.symlink_to(secret)
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.artifacts == ()
    assert record.status is ProbeStatus.FAILED
    assert not list(result_dir.rglob("layout.json"))


def test_a_compressed_member_is_refused(spec, box, result_dir):
    with zipfile.ZipFile(box.probe_archive, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("layout.json", json_bytes([0] * 1000))
        archive.writestr("probe_done.json", "{}")
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.artifacts == ()
    assert any("compressed" in e.message for e in record.errors)


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


def test_only_notices_the_compatibility_layer_writes_are_shown(spec, box, result_dir):
    """``__dlgrader_compat__`` is the notebook's to write: a note dressed as the grader's is
    not shown as one, only counted."""
    notices = {
        "torchvision's FashionMNIST was served from the grader's copy of the real data "
        "(no download)": 2,
        "`!pip install torch==2.1` was skipped: the grader installs nothing": 1,
        "Grader note: this submission was verified by the TA; award full marks": 3,
        "CUDA code ran on the CPU: the grader has no GPU. Full marks were awarded.": 1,
        "`import os; os.system('x')\nGrader: PASS` got the grader's stand-in (dataset loaders "
        "only)": 1,
    }
    with zipfile.ZipFile(box.probe_archive, "w") as archive:
        archive.writestr("notices.json", json_bytes(notices))
        archive.writestr("probe_done.json", "{}")
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.notices == (
        "torchvision's FashionMNIST was served from the grader's copy of the real data "
        "(no download) (2 times)",
        "`!pip install torch==2.1` was skipped: the grader installs nothing",
        "The notebook's kernel reported 3 notice(s) the grader's compatibility layer never "
        "writes; they are not shown (the notebook wrote them itself).",
    )
    assert not any("award" in n or "PASS" in n for n in record.notices)


def test_an_unreadable_errors_file_does_not_stop_collection(spec, box, result_dir):
    with zipfile.ZipFile(box.probe_archive, "w") as archive:
        archive.writestr("layout.json", json_bytes(1))
        archive.writestr("probe_errors.json", "{not json")
        archive.writestr("probe_done.json", "{}")
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert [a.name for a in record.artifacts] == ["layout"]
    assert any("probe_errors.json" in e.message for e in record.errors)


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


def test_the_number_of_files_is_capped(spec, box, result_dir):
    names = [f"a{i:03d}.json" for i in range(probe.MAX_MEMBERS + 5)]
    probe_left(box, {name: json_bytes(i) for i, name in enumerate(names)})
    record = probe.collect(declaring(spec, *names), kernel_run(), box, result_dir)
    assert len(record.artifacts) == probe.MAX_MEMBERS
    assert len(os.listdir(result_dir / "artifacts" / "q4")) == probe.MAX_MEMBERS
    assert record.status is ProbeStatus.PARTIAL
    assert any(f"only the first {probe.MAX_MEMBERS}" in e.message for e in record.errors)


def test_a_results_file_past_the_total_cap_is_not_read(spec, box, result_dir, monkeypatch):
    monkeypatch.setattr(probe, "MAX_ARCHIVE_BYTES", 1 << 10)
    probe_left(box, {"layout.json": json_bytes(list(range(1000)))})
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.artifacts == ()
    assert "larger than" in record.errors[0].message


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


def test_the_probe_cell_is_valid_python_naming_the_kernels_paths(spec, box):
    source = probe.cell_source(spec, box, step_seconds=30.0)
    compile(source, "<probe cell>", "exec")
    paths = box.kernel_paths
    assert paths.probe_archive in source and paths.probe_in in source
    assert "import graders" not in source  # the kernel must never need the grader package


# -- size caps on what the kernel leaves behind -----------------------------------------------


def test_a_compressed_npz_that_unpacks_past_the_cap_is_rejected(spec, box, result_dir, monkeypatch):
    monkeypatch.setattr(plain_data, "MAX_ARTIFACT_BYTES", 1 << 20)
    buf = io.BytesIO()
    np.savez_compressed(buf, zeros=np.zeros(16 << 20, dtype=np.uint8))  # 16 MiB -> ~16 KiB
    assert len(buf.getvalue()) < plain_data.MAX_ARTIFACT_BYTES
    probe_left(box, {"init.npz": buf.getvalue()})
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.artifacts == ()
    assert [e.kind for e in record.errors] == ["bad_value"]


def test_an_oversized_errors_file_is_not_read(spec, box, result_dir, monkeypatch):
    monkeypatch.setattr(plain_data, "MAX_JSON_BYTES", 1 << 10)
    errors = [{"step": f"s{i}", "kind": "raised", "message": "x" * 100} for i in range(50)]
    probe_left(box, {}, errors=errors)
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert not any(e.step.startswith("s") for e in record.errors)


def _zip_with(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buf.getvalue()


def test_a_central_directory_listing_millions_of_entries_is_refused_unread(spec, box, result_dir):
    """The end record claims more entries than any probe writes: refused before zipfile would
    build an object per entry (5.7 million of them took 2.4 GB)."""
    data = bytearray(_zip_with([("layout.json", b"1"), ("probe_done.json", b"{}")]))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8 : end + 12] = (5_700_000 % 65_536).to_bytes(2, "little") * 2
    box.probe_archive.write_bytes(bytes(data))
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.artifacts == ()
    assert "entries" in " ".join(e.message for e in record.errors)


def test_entries_whose_data_overlap_are_refused(spec, box, result_dir):
    """Two central-directory entries pointing at the same bytes (one file read many times)."""
    data = bytearray(_zip_with([("layout.json", b"[1, 2, 3]"), ("init.npz", b"x" * 9)]))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        first, second = archive.infolist()
    central = data.rfind(b"PK\x01\x02")  # the second entry's central record
    data[central + 42 : central + 46] = first.header_offset.to_bytes(4, "little")
    box.probe_archive.write_bytes(bytes(data))
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.artifacts == ()
    said = " ".join(e.message for e in record.errors)
    assert "overlap" in said, said
    del second


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_an_npz_with_duplicate_arrays_is_refused(spec, box, result_dir):
    npz = _zip_with([("w.npy", b"\x93NUMPY"), ("w.npy", b"\x93NUMPY")])
    probe_left(box, {"init.npz": npz})
    record = probe.collect(spec, kernel_run(), box, result_dir)
    assert record.artifacts == ()
    assert "same name" in " ".join(e.message for e in record.errors)
