"""What a kernel's sandbox is made of, checked without starting one (and, on a GPU, with one).

The containment tests show the sandbox holding against attacks; these pin down its parts: the
CUDA devices only for a CUDA profile, the grader's installed files masked wherever the kernel's
Python holds them, the kernel-side package free of the grader, the plan's limits as stated.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
from pathlib import Path

import nbformat
import pytest
from conftest import kernel_sandbox

from graders import config, inject, sandbox
from graders.config import FIXTURE_DATA_ROOT, Limits
from graders.execute import KernelJob, NbclientExecutor
from graders.kernel import SOURCE_DIR
from graders.sandbox import layout

REPO = Path(__file__).resolve().parents[1]


def _host(tmp_path: Path) -> layout.HostPaths:
    for name in ("in", "empty"):
        (tmp_path / name).mkdir(exist_ok=True)
    for name in ("a.zip", "empty-file"):
        (tmp_path / name).touch()
    return layout.HostPaths(
        probe_in=tmp_path / "in",
        probe_archive=tmp_path / "a.zip",
        empty_dir=tmp_path / "empty",
        empty_file=tmp_path / "empty-file",
    )


def _mounts(tmp_path: Path, *, cuda: bool) -> list[layout.Mount]:
    return layout.kernel_mounts(
        host=_host(tmp_path),
        data_root=FIXTURE_DATA_ROOT,
        disk_mb=64,
        tmp_mb=16,
        cuda=cuda,
        uid=1234,
        gid=1234,
    )


def test_cuda_devices_are_bound_only_for_a_cuda_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    devices = tmp_path / "dev"
    devices.mkdir()
    for name in ("nvidia0", "nvidiactl", "nvidia-uvm", "null"):
        (devices / name).touch()
    monkeypatch.setattr(layout, "DEVICES", devices)
    cpu = {m["dest"] for m in _mounts(tmp_path, cuda=False)}
    gpu = {m["dest"] for m in _mounts(tmp_path, cuda=True)}
    nvidia = {str(devices / n) for n in ("nvidia0", "nvidiactl", "nvidia-uvm")}
    assert nvidia <= gpu and "/sys" in gpu
    assert not nvidia & cpu and "/sys" not in cpu
    assert str(devices / "null") not in gpu  # /dev is bwrap's own minimal one


def test_the_root_is_read_only_and_only_the_tmpfs_folders_are_writable(tmp_path: Path) -> None:
    mounts = _mounts(tmp_path, cuda=False)
    assert mounts[-1] == {"kind": "remount-ro", "dest": "/"}
    writable = {m["dest"] for m in mounts if m["kind"] in ("bind", "tmpfs")}
    assert writable == {
        "/tmp",
        "/dev/shm",
        layout.WORKSPACE,
        f"{layout.KERNEL_PROBE_OUT}/a.zip",
    }
    sizes = {m["dest"]: int(m["size"]) for m in mounts if m["kind"] == "tmpfs"}
    assert sizes == {"/tmp": 16 << 20, "/dev/shm": 16 << 20, layout.WORKSPACE: 64 << 20}
    sources = {m.get("src", "") for m in mounts}
    assert str(REPO) not in sources, "the project itself is never bound"
    data = [m["dest"] for m in mounts if m.get("src", "").startswith(str(FIXTURE_DATA_ROOT))]
    assert data == [str(FIXTURE_DATA_ROOT / d) for d in layout.DATASET_FOLDERS]
    assert max(i for i, m in enumerate(mounts) if m["dest"] in data) > max(
        i for i, m in enumerate(mounts) if m["kind"] == "tmpfs"
    ), "the data must be bound after /tmp's tmpfs, or a data root under /tmp is hidden"
    assert not any(s.startswith(str(REPO / "graders")) for s in sources)


def test_a_python_under_tmp_is_bound_after_the_tmpfs_that_hides_the_hosts_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A clone (and its .venv) under /tmp, as CI makes one: bound before /tmp's tmpfs, the
    kernel's Python would vanish under it (bwrap: execvp .venv/bin/python: no such file)."""
    venv = Path("/tmp/some-ci-clone/.venv")
    installed = venv / "lib" / "site-packages" / "graders"
    monkeypatch.setattr(layout, "python_trees", lambda: [venv])
    monkeypatch.setattr(layout, "grader_paths", lambda trees=(): [installed])
    monkeypatch.setattr(Path, "is_dir", lambda self: self == installed or Path.exists(self))
    mounts = _mounts(tmp_path, cuda=False)
    where = {(m["kind"], m["dest"]): i for i, m in enumerate(mounts)}
    hidden = where[("tmpfs", "/tmp")]
    assert where[("ro-bind", str(venv))] > hidden
    assert where[("ro-bind", str(installed))] > where[("ro-bind", str(venv))], "mask after bind"


def test_the_graders_files_inside_the_kernels_python_are_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "venv" / "lib" / "site-packages"
    installed = site / "graders"
    installed.mkdir(parents=True)
    finder = site / "__editable___dl_assignment1_autograder_finder.py"
    finder.touch()
    monkeypatch.setattr(layout, "python_trees", lambda: [tmp_path / "venv"])
    monkeypatch.setattr(layout, "grader_paths", lambda trees=(): [installed, finder])
    masks = {
        m["dest"]: m["src"]
        for m in _mounts(tmp_path, cuda=False)
        if m["dest"] in (str(installed), str(finder))
    }
    assert masks == {
        str(installed): str(tmp_path / "empty"),
        str(finder): str(tmp_path / "empty-file"),
    }


def _shadowed_install(venv: Path) -> dict[str, Path]:
    """A venv holding a regular install of the grader beside the checkout the grader runs
    from (which ``find_spec`` finds first), a checkout pip cloned into ``src/``, and the
    distribution's metadata and compiled editable finder."""
    site = venv / "lib" / "python3.11" / "site-packages"
    made = {name: site / name for name in ("graders", "reference", "reports")}
    made["dist-info"] = site / "dl_assignment1_autograder-0.1.0.dist-info"
    made["src checkout"] = venv / "src" / "dl-assignment1-autograder"
    for folder in made.values():
        folder.mkdir(parents=True)
    (made["reference"] / "q2_init.py").write_text("the reference")
    (made["src checkout"] / "graders").mkdir()
    (made["src checkout"] / "graders" / "__init__.py").touch()
    (site / "__pycache__").mkdir()
    finder = site / "__pycache__" / "__editable___dl_assignment1_autograder_0_1_0_finder.pyc"
    finder.write_bytes(b"MAPPING")
    made["finder"] = finder
    return made


def test_every_copy_of_the_grader_a_kernel_could_read_is_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only what ``find_spec`` finds: a regular install shadowed by the checkout held the
    reference solutions and the thresholds in plain sight of the kernel."""
    venv = tmp_path / "venv"
    made = _shadowed_install(venv)
    monkeypatch.setattr(layout, "python_trees", lambda: [venv])
    found = set(layout.grader_paths([venv]))
    assert {p.resolve() for p in made.values()} <= found
    assert (REPO / "graders").resolve() in found  # the one the grader imports, still
    mounts = _mounts(tmp_path, cuda=False)
    masks = {
        m["dest"]: m["src"]
        for m in mounts
        if m.get("src") in (str(tmp_path / "empty"), str(tmp_path / "empty-file"))
    }
    for name, path in made.items():
        assert str(path) in masks, name
    assert masks[str(made["finder"])] == str(tmp_path / "empty-file")
    binds = [i for i, m in enumerate(mounts) if m["kind"] == "ro-bind" and m["dest"] == str(venv)]
    first_mask = min(
        i for i, m in enumerate(mounts) if m["dest"] in masks and m["dest"].startswith(str(venv))
    )
    assert binds and binds[0] < first_mask, "each mask after the tree it lies in"


def test_no_mask_lies_inside_another_masked_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bwrap cannot make a mount point inside the empty read-only folder of a mask: a grader
    path inside a masked checkout is covered by that mask alone."""
    venv = tmp_path / "venv"
    made = _shadowed_install(venv)
    inner = made["src checkout"] / "graders"
    monkeypatch.setattr(layout, "python_trees", lambda: [venv])
    real = layout.grader_paths
    monkeypatch.setattr(layout, "grader_paths", lambda trees=(): [*real(trees), inner])
    dests = [
        m["dest"] for m in _mounts(tmp_path, cuda=False) if m.get("src") == str(tmp_path / "empty")
    ]
    assert str(made["src checkout"]) in dests and str(inner) not in dests
    for dest in dests:
        assert not any(Path(other) in Path(dest).parents for other in dests), dest


def test_a_cuda_library_folder_is_masked_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder on LD_LIBRARY_PATH is bound for CUDA; a copy of the grader in it is masked
    where the kernel sees it, after the bind (it was bound over the masks before)."""
    lib = tmp_path / "conda"
    made = _shadowed_install(lib)
    link = tmp_path / "libs-link"
    link.symlink_to(lib / "lib")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(link))
    monkeypatch.setattr(layout, "python_trees", lambda: [])
    mounts = _mounts(tmp_path, cuda=True)
    where = {m["dest"]: i for i, m in enumerate(mounts)}
    seen = link / made["graders"].relative_to(lib / "lib")
    assert str(seen) in where and where[str(seen)] > where[str(link)]
    assert mounts[where[str(seen)]]["src"] == str(tmp_path / "empty")


def test_the_host_files_of_a_private_proc_are_masked(tmp_path: Path) -> None:
    mounts = _mounts(tmp_path, cuda=False)
    proc = next(i for i, m in enumerate(mounts) if m["kind"] == "proc")
    masked = {
        m["dest"]: i for i, m in enumerate(mounts) if m.get("src") == str(tmp_path / "empty-file")
    }
    for name in layout.PROC_MASKED:
        if os.path.exists(name):
            assert masked.get(name, -1) > proc, name
    assert "/proc/keys" in masked or not os.path.exists("/proc/keys")


def test_the_kernel_package_imports_nothing_of_the_grader() -> None:
    """What runs inside the kernel is handed over as source; an import of ``graders`` there
    would fail (it is not on the kernel's file system) or, worse, find the grader."""
    sources = [*SOURCE_DIR.glob("*.py"), *(REPO / "graders" / "questions").glob("*/probe.py")]
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {
            id(n)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == "graders" or n.startswith("graders.") for n in names), path


@pytest.mark.gpu
@pytest.mark.kernel
def test_cuda_is_visible_inside_the_sandbox_on_a_gpu_profile(tmp_path: Path) -> None:
    if not config.cuda_visible():
        pytest.skip("no CUDA device is visible on this machine")
    limits = Limits(cell_timeout_s=120, total_timeout_s=120, probe_timeout_s=30)
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import torch\nprint(torch.cuda.is_available())")]
    )
    prepared = inject.prepare(nb, parameters={}, preamble="pass")
    box = kernel_sandbox(tmp_path, limits, device="cuda")
    job = KernelJob(
        question="qx",
        prepared=prepared,
        sandbox=box,
        limits=limits,
        probe_source="pass",
        write_probe_inputs=lambda: None,
    )
    run = asyncio.run(NbclientExecutor().run(job))
    printed = "".join(o.get("text", "") for o in run.notebook.cells[-1].outputs)
    assert printed.strip() == "True"


def test_the_self_test_names_everything_an_unconfined_process_lacks(tmp_path: Path) -> None:
    """The bubblewrap self-test's program, run with no sandbox at all (a ``bwrap`` that only
    runs its command): it fails and names each missing part, so a TA learns what is wrong."""
    import subprocess
    import sys

    from graders.sandbox import confinement

    source = confinement._self_test_source(tmp_path, not_root=True)
    ran = subprocess.run(
        [sys.executable, "-I", "-c", source], capture_output=True, text=True, cwd=tmp_path
    )
    assert ran.returncode == 3, ran.stderr
    said = ran.stderr
    assert "its working folder is not /workspace" in said
    for name in ("user", "pid", "net", "mnt"):
        assert f"shares the grader's {name} namespace" in said, said
    assert f"the host's {tmp_path} is visible" in said
    assert f"the host's {config.PROJECT_ROOT / 'graders'} is visible" in said


def _full_disk_for(name: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Writing a file called ``name`` fails as on a full disk; returns the uids released."""
    from graders.sandbox import users

    write_text = Path.write_text
    released: list[int] = []
    release = users.KernelUid.release

    def full_disk(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.name == name:
            raise OSError(28, "No space left on device")
        return write_text(self, *args, **kwargs)

    def counting(self: users.KernelUid) -> None:
        released.append(self.run_as.uid)
        release(self)

    monkeypatch.setattr(Path, "write_text", full_disk)
    monkeypatch.setattr(users.KernelUid, "release", counting)
    return released


def test_a_self_test_that_cannot_write_its_connection_file_says_so_and_lets_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full disk while the self-test's folders are made: a verdict naming the cause (the
    grader falls back or refuses), and the kernel uid the self-test held is free again."""
    from graders.sandbox import confinement

    released = _full_disk_for("connection.json", monkeypatch)
    test = confinement._SelfTest("/usr/bin/bwrap", FIXTURE_DATA_ROOT)
    assert test.problem() == (
        "the sandbox's folders could not be made ([Errno 28] No space left on device)"
    )
    assert len(released) == (1 if os.geteuid() == 0 else 0)


def test_a_kernel_whose_folders_cannot_be_made_holds_no_uid_and_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nor a socket folder of its own in /tmp, where a scratch path too long for a unix socket
    puts it (pytest's tmp_path for a long test name is one)."""
    from graders.models import SandboxMode
    from graders.sandbox import SandboxPlan, prepare, workspace

    released = _full_disk_for("launch.json", monkeypatch)
    made: list[Path] = []
    socket_folder = workspace._socket_folder

    def recorded(base: Path) -> Path:
        made.append(socket_folder(base))
        return made[-1]

    monkeypatch.setattr(workspace, "_socket_folder", recorded)
    scratch = tmp_path / ("long-" * 20)
    scratch.mkdir()
    root = os.geteuid() == 0  # only a root grader gives each kernel a uid of its own
    plan = SandboxPlan(mode=SandboxMode.BUBBLEWRAP, bwrap="/usr/bin/bwrap", kernel_uids=root)
    with pytest.raises(OSError, match="No space left"):
        prepare(
            plan=plan,
            question="q1",
            scratch=scratch,
            limits=Limits(),
            threads=1,
            device="cpu",
            data_root=FIXTURE_DATA_ROOT,
        )
    assert len(released) == (1 if root else 0)
    assert list(scratch.iterdir()) == []
    assert len(made) == 1 and not made[0].is_relative_to(scratch), "the socket folder was short"
    assert not made[0].exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only a root grader gives kernels uids of their own")
def test_in_the_user_mode_no_other_account_reaches_a_kernels_inputs_or_results() -> None:
    """Without namespaces (the user mode) the kernel's folders are host folders that other
    local accounts could walk into: there, a copy of the submission, and a results file the
    kernel owns and could make a setuid program. Only the kernel's own uid gets through."""
    import shutil
    import subprocess
    import tempfile

    from graders.models import SandboxMode
    from graders.sandbox import SandboxPlan, cleanup, deliver, prepare

    scratch = Path(tempfile.mkdtemp(prefix="dlgrade-user-mode-"))  # in /tmp, as the grader's
    plan = SandboxPlan(mode=SandboxMode.USER, kernel_uids=True)
    box = prepare(
        plan=plan,
        question="q2",
        scratch=scratch,
        limits=Limits(),
        threads=1,
        device="cpu",
        data_root=FIXTURE_DATA_ROOT,
    )
    try:
        source = scratch / "nb.ipynb"
        source.write_text("{}", encoding="utf-8")
        (name,) = deliver(box, {"nb.ipynb": source})
        assert box.uid is not None

        def reaches(uid: int, path: Path, mode: str) -> bool:
            script = f"open({str(path)!r}, {mode!r}).close()"
            account = [f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
            done = subprocess.run(
                ["setpriv", *account, "/usr/bin/python3.11", "-I", "-c", script],
                capture_output=True,
            )
            return done.returncode == 0

        kernel, stranger = box.uid.run_as.uid, 65534
        assert reaches(kernel, box.probe_archive, "ab")
        assert reaches(kernel, box.probe_in / name, "rb")
        assert not reaches(stranger, box.probe_in / name, "rb")
        box.probe_archive.chmod(0o4755)  # what the kernel, its owner, may do
        assert not reaches(stranger, box.probe_archive, "rb")
    finally:
        cleanup(box)
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.kernel
def test_the_base_pythons_own_packages_are_not_the_kernels_to_read(tmp_path: Path) -> None:
    """The kernel's venv leaves the base interpreter's site-packages out, so whatever else is
    installed there (a TA's tools, their settings) is masked; the kernel's own packages and
    the standard library stay."""
    from graders.models import SandboxMode

    unused = layout.unused_base_packages()
    plan = sandbox.choose(data_root=FIXTURE_DATA_ROOT)
    if not unused or plan.mode is not SandboxMode.BUBBLEWRAP:
        pytest.skip("no unused base package folder here, or no bubblewrap to mask it")
    assert any(unused[0].iterdir()), "the host's folder should hold something to hide"
    limits = Limits(cell_timeout_s=120, total_timeout_s=120, probe_timeout_s=30)
    code = (
        "import json, os, numpy\n"
        f"print('SEEN', json.dumps([os.listdir(p) for p in {[str(p) for p in unused]!r}]))"
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    job = KernelJob(
        question="qx",
        prepared=inject.prepare(nb, parameters={}, preamble="pass"),
        sandbox=kernel_sandbox(tmp_path, limits),
        limits=limits,
        probe_source="pass",
        write_probe_inputs=lambda: None,
    )
    run = asyncio.run(NbclientExecutor().run(job))
    printed = "".join(o.get("text", "") for c in run.notebook.cells for o in c.get("outputs", []))
    assert "SEEN " in printed, printed
    assert printed.split("SEEN ", 1)[1].strip() == json.dumps([[] for _ in unused])
