"""The Gradescope bundle end to end: build the zip, unpack it into an ``/autograder``-shaped
temporary root, run its ``run_autograder`` script on fixture submissions, and validate every
results.json.

Most tests run ``run_autograder`` with this project's virtual environment (fast, any user).
As root (as Gradescope and CI run), the ``installed`` fixture also runs the zip's own
``setup.sh`` into a temporary root, as Gradescope does when it builds the image: a venv from
the system Python, the datasets, the sandbox user. There the kernels run as that user: a
notebook cell trying to read the rubric and a reference solution by path must get
``PermissionError``, and a full correct submission must grade inside a 768 MB memory cgroup,
the limit of Gradescope's default container.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import nbformat
import pytest

from graders.data import default_data_root, verify_datasets
from graders.errors import ConfigError
from graders.gradescope import image as gradescope_image
from graders.gradescope.bundle import (
    PROFILE_ENV,
    ROOT_ENV,
    build_bundle,
    read_settings,
    secure_source,
)
from graders.gradescope.entry import _previous_score
from graders.sandbox import confinement, container_limits
from graders.sandbox.users import can_reach

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "tests" / "schemas" / "gradescope_results.schema.json").read_text())


@pytest.fixture(scope="module")
def bundle_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("bundle") / "autograder.zip")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A fresh root, in a 0755 temporary folder (removed after): in the sandbox-user mode that
    user must reach it, which pytest's own 0700 base folder would not let it."""
    made = Path(tempfile.mkdtemp(prefix="dlgrade-gs-test-"))
    made.chmod(0o755)
    try:
        yield made / "autograder"
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _run(root: Path) -> dict[str, Any]:
    """The zip's ``run_autograder`` with this project's venv and the quick profile."""
    env = {
        **os.environ,
        ROOT_ENV: str(root),
        PROFILE_ENV: "quick",
        "DLGRADE_PYTHON": sys.executable,
    }
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        ["bash", str(root / "source" / "run_autograder")],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return _results(root)


def _run_installed(
    root: Path, limits: gradescope_image.Limits | None = None, *, mode: str = "auto"
) -> dict[str, Any]:
    """``/autograder/run_autograder`` of an image made by setup.sh, with its own venv."""
    run = gradescope_image.run_autograder(
        root,
        limits or gradescope_image.Limits(),
        timeout_s=600,
        extra_env={confinement.MODE_ENV: mode},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.oom_kills == 0
    return _results(root)


def _results(root: Path) -> dict[str, Any]:
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, SCHEMA)
    return results


def _expected_total(scenario: str, questions: tuple[str, ...]) -> float:
    expected = tomllib.loads((REPO / "fixtures" / "submissions" / "expected.toml").read_text())
    return sum(float(expected[scenario][q]) for q in questions)


def _copy_notebooks(scenario: str, stems: tuple[str, ...], dest: Path) -> None:
    for stem in stems:
        name = f"{stem}.ipynb"
        shutil.copyfile(REPO / "fixtures" / "submissions" / scenario / name, dest / name)


def test_zip_layout(bundle_zip: Path) -> None:
    with zipfile.ZipFile(bundle_zip) as archive:
        names = set(archive.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        requirements = archive.read("requirements.txt").decode()
    for name in ("setup.sh", "run_autograder"):
        assert name in names
        assert modes[name] & stat.S_IXUSR, f"{name} must be executable"
    for name in ("profiles.toml", "rubric.toml", "thresholds.toml"):
        assert f"config/{name}" in names
    assert "dlgrade/graders/pipeline.py" in names
    assert "dlgrade/reference/q3_mlp.py" in names
    assert any(n.startswith("dlgrade/fixtures/data/") for n in names)
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith("dlgrade/fixtures/submissions") for n in names)
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(requirements.split()) == set(pins)


def test_build_rejects_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no profile named"):
        build_bundle(tmp_path / "a.zip", profile="nope")
    assert not (tmp_path / "a.zip").exists()


def test_settings_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bundle.toml").write_text('profile = "cpu"\nparallel = 2\n')
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert read_settings(tmp_path).profile == "cpu"
    assert read_settings(tmp_path).parallel == 2
    monkeypatch.setenv(PROFILE_ENV, "quick")
    assert read_settings(tmp_path).profile == "quick"
    (tmp_path / "bundle.toml").write_text("parallel = 0\n")
    with pytest.raises(ConfigError, match="parallel"):
        read_settings(tmp_path)


def test_previous_score(tmp_path: Path) -> None:
    meta = tmp_path / "submission_metadata.json"
    assert _previous_score(meta) is None
    meta.write_text(json.dumps({"previous_submissions": [{"score": 3}, {"score": "12.5"}]}))
    line = _previous_score(meta)
    assert line is not None and "12.5" in line
    for broken in ("{", "[]", '{"previous_submissions": []}', '{"previous_submissions": [{}]}'):
        meta.write_text(broken)
        assert _previous_score(meta) is None


def test_secure_source_closes_all_but_fixture_data(bundle_zip: Path, tmp_path: Path) -> None:
    root = tmp_path / "ag"
    gradescope_image.unpack(bundle_zip, root)
    secure_source(root)
    src = root / "source"
    for path in (src / "config" / "rubric.toml", src / "dlgrade" / "reference", src / "setup.sh"):
        assert path.stat().st_mode & 0o077 == 0, path
    for folder in (src, src / "dlgrade", src / "dlgrade" / "fixtures"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o711
    data_files = [p for p in (src / "dlgrade" / "fixtures" / "data").rglob("*") if p.is_file()]
    assert data_files and all(p.stat().st_mode & 0o004 for p in data_files)


def test_can_reach_follows_every_folder(tmp_path: Path) -> None:
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    (inner / "f").write_text("x")
    for path in (tmp_path, tmp_path / "a", inner):
        path.chmod(0o755)
    (inner / "f").chmod(0o644)
    nobody = 65534
    tmp_chain_open = all(p.stat().st_mode & 0o001 for p in tmp_path.parents)
    assert can_reach(inner / "f", nobody, nobody) is tmp_chain_open
    (tmp_path / "a").chmod(0o700)
    assert can_reach(inner / "f", nobody, nobody) is False
    (tmp_path / "a").chmod(0o755)


def test_the_sandbox_user_mode_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    plan, why = confinement._user_mode()
    assert plan is None
    assert "not root" in why


@pytest.mark.kernel
@pytest.mark.slow
def test_all_correct(bundle_zip: Path, root: Path) -> None:
    gradescope_image.unpack(bundle_zip, root)
    _copy_notebooks(
        "all_correct",
        ("q1_step_network", "q2_initialization", "q3_fashion_mlp", "q4_numpy_backprop"),
        root / "submission",
    )
    (root / "submission_metadata.json").write_text(
        json.dumps({"previous_submissions": [{"submission_time": "earlier", "score": 7.5}]})
    )
    results = _run(root)
    assert results["score"] == pytest.approx(
        _expected_total("all_correct", ("q1", "q2", "q3", "q4"))
    )
    assert "previous submission (earlier) scored 7.5" in results["output"]
    assert "Peak memory" in results["output"]
    assert "Sandbox: " in results["output"]
    assert results["extra_data"]["sandbox"] in ("bubblewrap", "user")
    # The Q3 and Q4 kernels import torch: far above what a launcher or an idle kernel holds
    # (getrusage's children, blind to a kernel in its own pid namespace, said about 80 MB).
    assert results["extra_data"]["peak_rss_mb"]["kernel"] > 200


@pytest.mark.kernel
@pytest.mark.slow
def test_partly_wrong(bundle_zip: Path, root: Path) -> None:
    """q1 from a scenario with a wrong step function; q3 and q4 are not submitted."""
    gradescope_image.unpack(bundle_zip, root)
    _copy_notebooks("q1_step_ge", ("q1_step_network", "q2_initialization"), root / "submission")
    results = _run(root)
    assert results["score"] == pytest.approx(_expected_total("q1_step_ge", ("q1", "q2")))
    failed = [t for t in results["tests"] if t.get("status") == "failed"]
    assert any(t["name"].startswith("Q1") for t in failed)
    assert any(t["name"].startswith("Q3") for t in failed)


@pytest.mark.parametrize("files", [{}, {"answers.txt": "my answers"}])
def test_empty_or_wrong_files(bundle_zip: Path, root: Path, files: dict[str, str]) -> None:
    gradescope_image.unpack(bundle_zip, root)
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    results = _run(root)
    assert results["score"] == 0
    assert results["output"].strip()


def _why_no_image() -> str | None:
    """Why ``setup.sh`` cannot run here (as root, from the system Python, with the datasets)."""
    reason = gradescope_image.why_no_setup()
    if reason is None and not verify_datasets(default_data_root()).ok:
        reason = f"the full datasets are not in {default_data_root()}; run `dlgrade data`"
    return reason and f"{reason} (CI runs these tests as root)"


@pytest.fixture(scope="module")
def installed(bundle_zip: Path) -> Iterator[Path]:
    """An ``/autograder`` root set up by the zip's own ``setup.sh`` (about a minute: pip takes
    torch from its cache), in a 0755 temporary folder the sandbox user can reach."""
    reason = _why_no_image()
    if reason:
        pytest.skip(reason)
    made = Path(tempfile.mkdtemp(prefix="dlgrade-gs-image-"))
    made.chmod(0o755)
    root = made / "autograder"
    try:
        gradescope_image.unpack(bundle_zip, root)
        gradescope_image.run_setup(root, data_source=default_data_root())
        yield root
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _fresh_submission(root: Path) -> None:
    """The image is shared by the tests of this module; each starts from an empty upload."""
    for folder in (root / "submission", root / "results"):
        shutil.rmtree(folder, ignore_errors=True)
    (root / "submission").mkdir()
    (root / "submission_metadata.json").unlink(missing_ok=True)


@pytest.mark.kernel
@pytest.mark.slow
def test_setup_sh_makes_an_image_that_drops_privileges(installed: Path) -> None:
    venv_python = installed / "venv" / "bin" / "python"
    assert venv_python.exists()
    assert "/root/" not in str(venv_python.resolve())  # the system Python, readable by all
    for name in ("rubric.toml", "thresholds.toml"):
        assert (installed / "source" / "config" / name).stat().st_mode & 0o077 == 0
    assert (installed / "run_autograder").stat().st_mode & stat.S_IXOTH
    assert verify_datasets(installed / "data").ok


@pytest.mark.kernel
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["auto", "user"])
def test_student_code_cannot_read_the_source(installed: Path, mode: str) -> None:
    """A last cell tries to read the rubric and a reference solution by path, in the mode this
    machine picks (bubblewrap where it works) and in the sandbox-user fallback Gradescope's
    containers often need.

    The kernel may not write anywhere the test could look, so the finding comes back through
    the score: if any read succeeds, or the kernel is root, the cell replaces ``step`` with a
    wrong one and q1 loses points.
    """
    _fresh_submission(installed)
    root = installed
    # Without a mount namespace (the sandbox user) the files are there but unreadable; under
    # bubblewrap the host's folder is not in the kernel's file system at all.
    closed = ("PermissionError",) if mode == "user" else ("PermissionError", "FileNotFoundError")
    secrets = {
        "rubric": str(root / "source" / "config" / "rubric.toml"),
        "reference": str(root / "source" / "dlgrade" / "reference" / "q1_step.py"),
    }
    spy = f"""import os
__found = {{"uid": os.getuid()}}
for __key, __path in {secrets!r}.items():
    try:
        open(__path).read()
        __found[__key] = "read"
    except Exception as __exc:
        __found[__key] = type(__exc).__name__
print(__found)
__closed = all(__found[__key] in {closed!r} for __key in {list(secrets)!r})
if __found["uid"] == 0 or not __closed:
    def step(u):
        return 1.0
"""
    name = "q1_step_network.ipynb"
    nb = nbformat.read(REPO / "fixtures" / "submissions" / "all_correct" / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(spy))
    nbformat.write(nb, root / "submission" / name)
    results = _run_installed(root, mode=mode)
    assert results["score"] == pytest.approx(_expected_total("all_correct", ("q1",)))
    if mode == "user":
        assert results["extra_data"]["sandbox"] == "user"
        assert "an unprivileged uid of its own" in results["output"]
    else:
        assert results["extra_data"]["sandbox"] in ("bubblewrap", "user")


@pytest.mark.kernel
@pytest.mark.slow
def test_a_full_correct_submission_grades_in_gradescopes_768_mb(installed: Path) -> None:
    """The bundle's default profile, all four notebooks, in a memory cgroup of 768 MB (what
    Gradescope's default container is), page cache dropped first so that the libraries'
    pages are charged to this run as in a fresh container."""
    if not container_limits.can_make_memory_cgroup():
        pytest.skip("no writable memory cgroup here to hold the run to 768 MB")
    _fresh_submission(installed)
    _copy_notebooks(
        "all_correct",
        ("q1_step_network", "q2_initialization", "q3_fashion_mlp", "q4_numpy_backprop"),
        installed / "submission",
    )
    gradescope_image.drop_page_cache()
    results = _run_installed(installed, gradescope_image.Limits(memory_mb=768))
    lost = [
        f"{t.get('name')}: {t.get('score')} / {t.get('max_score')}: {str(t.get('output'))[:300]}"
        for t in results.get("tests", [])
        if t.get("score") != t.get("max_score")
    ]
    assert results["score"] == pytest.approx(
        _expected_total("all_correct", ("q1", "q2", "q3", "q4"))
    ), "\n".join([results.get("output", "")[-1500:], *lost])
    assert results["extra_data"]["container_memory_mb"]["limit"] == 768
    assert results["extra_data"]["sandbox"] in ("bubblewrap", "user")
    assert "Container memory: peak" in results["output"]


@pytest.mark.slow
@pytest.mark.kernel
def test_the_spy_cell_would_notice_a_readable_file(bundle_zip: Path, root: Path) -> None:
    """The channel above works: the same replacement of ``step`` does cost q1 points."""
    gradescope_image.unpack(bundle_zip, root)
    name = "q1_step_network.ipynb"
    nb = nbformat.read(REPO / "fixtures" / "submissions" / "all_correct" / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("def step(u):\n    return 1.0\n"))
    nbformat.write(nb, root / "submission" / name)
    results = _run(root)
    assert results["score"] < _expected_total("all_correct", ("q1",))


@pytest.mark.parametrize("version", [1, 2])
def test_container_memory_reads_the_cgroup_counters(tmp_path: Path, version: int) -> None:
    fs = tmp_path / "cgroup"
    proc = tmp_path / "proc_cgroup"
    if version == 1:
        folder = fs / "memory" / "box"
        proc.write_text("4:memory:/box\n0::/\n")
        files = {
            "memory.max_usage_in_bytes": str(600 * 2**20),
            "memory.limit_in_bytes": str(768 * 2**20),
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        }
    else:
        folder = fs / "box"
        (fs).mkdir()
        (fs / "cgroup.controllers").write_text("memory pids\n")
        proc.write_text("0::/box\n")
        files = {
            "memory.peak": str(600 * 2**20),
            "memory.max": "max",
            "memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
        }
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    group = container_limits.own_memory_cgroup(proc, fs)
    assert group is not None and group.folder == folder
    found = container_limits.container_memory(group)
    assert found is not None
    assert (found.peak_mb, found.oom_kills) == (600, 2)
    assert found.limit_mb == (768 if version == 1 else None)
    assert "peak 600 MB" in found.line()
    assert container_limits.own_memory_cgroup(tmp_path / "absent", fs) is None


@pytest.mark.kernel
@pytest.mark.slow
def test_the_unprivileged_uid_mode_leaves_nothing_behind(installed: Path) -> None:
    """Without namespaces (Gradescope's containers often have none) a kernel's SysV segment,
    its files in /dev/shm and /tmp and its daemons would stay on the host: the grader sweeps
    what the kernel's uid left once the kernel is gone."""
    import secrets as random_names

    from tools import make_hostile

    _fresh_submission(installed)
    marker = f"dlgrade-left-{random_names.token_hex(5)}"
    key = 0x45000000 + random_names.randbelow(1 << 20)
    cell = f"MARKER = {marker!r}\nSHM_KEY = {key}\n" + make_hostile.CELLS["ipc_leftovers"]
    name = "q2_initialization.ipynb"
    nbformat.write(make_hostile.hostile_notebook(cell), installed / "submission" / name)
    results = _run_installed(installed, mode="user")
    assert results["extra_data"]["sandbox"] == "user"
    shm = Path("/proc/sysvipc/shm").read_text().split()
    assert str(key) not in shm, "the kernel's shared memory segment outlived the grading"
    assert not (Path("/dev/shm") / marker).exists()
    assert not (Path(tempfile.gettempdir()) / marker).exists()
    marked = subprocess.run(
        ["pgrep", "-f", make_hostile.FORK_MARKER], capture_output=True, text=True
    ).stdout.split()
    assert marked == [], "the kernel's daemon outlived the grading"
