"""The Gradescope bundle end to end: build the zip, unpack it into an ``/autograder``-shaped
temporary root, run its ``run_autograder`` script on fixture submissions with this virtual
environment (setup.sh's apt/pip parts are not run), and validate every results.json.

When the tests run as root and the sandbox user exists and can read this Python (as in CI),
a notebook cell tries to read the rubric and a reference solution by path: it must get
``PermissionError`` and the grade must still come out.
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

from graders import sandbox
from graders.errors import ConfigError
from graders.gradescope_bundle import (
    PROFILE_ENV,
    ROOT_ENV,
    _previous_score,
    build_bundle,
    read_settings,
    secure_source,
)

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "tests" / "schemas" / "gradescope_results.schema.json").read_text())
DROPS = sandbox.privilege_status().run_as is not None


@pytest.fixture(scope="module")
def bundle_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("bundle") / "autograder.zip")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """A fresh root. With a privilege drop it must be reachable by the sandbox user, which
    pytest's own 0700 base folder is not; then it is a 0755 temporary folder, removed after."""
    if not DROPS:
        yield tmp_path / "autograder"
        return
    made = Path(tempfile.mkdtemp(prefix="dlgrade-gs-test-"))
    made.chmod(0o755)
    try:
        yield made / "autograder"
    finally:
        shutil.rmtree(made, ignore_errors=True)


def _unpack(bundle: Path, root: Path) -> None:
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    root.chmod(0o755)
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    for script in ("setup.sh", "run_autograder"):
        (root / "source" / script).chmod(0o755)


def _run(root: Path) -> dict[str, Any]:
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
    _unpack(bundle_zip, root)
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
    assert sandbox._can_reach(inner / "f", nobody, nobody) is tmp_chain_open
    (tmp_path / "a").chmod(0o700)
    assert sandbox._can_reach(inner / "f", nobody, nobody) is False
    (tmp_path / "a").chmod(0o755)


def test_not_root_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    status = sandbox.privilege_status()
    assert status.run_as is None
    assert "not root" in status.message


@pytest.mark.kernel
def test_all_correct(bundle_zip: Path, root: Path) -> None:
    _unpack(bundle_zip, root)
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
    assert "Student code ran as" in results["output"]
    assert results["extra_data"]["peak_rss_mb"]["kernel"] > 0


@pytest.mark.kernel
def test_partly_wrong(bundle_zip: Path, root: Path) -> None:
    """q1 from a scenario with a wrong step function; q3 and q4 are not submitted."""
    _unpack(bundle_zip, root)
    _copy_notebooks("q1_step_ge", ("q1_step_network", "q2_initialization"), root / "submission")
    results = _run(root)
    assert results["score"] == pytest.approx(_expected_total("q1_step_ge", ("q1", "q2")))
    failed = [t for t in results["tests"] if t.get("status") == "failed"]
    assert any(t["name"].startswith("Q1") for t in failed)
    assert any(t["name"].startswith("Q3") for t in failed)


@pytest.mark.parametrize("files", [{}, {"answers.txt": "my answers"}])
def test_empty_or_wrong_files(bundle_zip: Path, root: Path, files: dict[str, str]) -> None:
    _unpack(bundle_zip, root)
    for name, text in files.items():
        (root / "submission" / name).write_text(text)
    results = _run(root)
    assert results["score"] == 0
    assert results["output"].strip()


@pytest.mark.kernel
@pytest.mark.skipif(
    not DROPS,
    reason=f"no privilege drop here ({sandbox.privilege_status().message}); CI runs it as root",
)
def test_student_code_cannot_read_the_source(bundle_zip: Path, root: Path) -> None:
    """A last cell tries to read the rubric and a reference solution by path.

    The kernel may not write anywhere the test could look (its files are read-only outside
    its sandbox), so the finding comes back through the score: if any read succeeds, or the
    kernel is root, the cell replaces ``step`` with a wrong one and q1 loses points.
    """
    _unpack(bundle_zip, root)
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
__closed = __found["rubric"] == "PermissionError" and __found["reference"] in (
    "PermissionError", "FileNotFoundError")  # masked by the mount namespace where it has one
if __found["uid"] == 0 or not __closed:
    def step(u):
        return 1.0
"""
    name = "q1_step_network.ipynb"
    nb = nbformat.read(REPO / "fixtures" / "submissions" / "all_correct" / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(spy))
    nbformat.write(nb, root / "submission" / name)
    results = _run(root)
    assert results["score"] == pytest.approx(_expected_total("all_correct", ("q1",)))
    assert "unprivileged user" in results["output"]
    assert results["extra_data"]["run_as"] == sandbox.privilege_status().run_as.user  # type: ignore[union-attr]


@pytest.mark.kernel
def test_the_spy_cell_would_notice_a_readable_file(bundle_zip: Path, root: Path) -> None:
    """The channel above works: the same replacement of ``step`` does cost q1 points."""
    _unpack(bundle_zip, root)
    name = "q1_step_network.ipynb"
    nb = nbformat.read(REPO / "fixtures" / "submissions" / "all_correct" / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("def step(u):\n    return 1.0\n"))
    nbformat.write(nb, root / "submission" / name)
    results = _run(root)
    assert results["score"] < _expected_total("all_correct", ("q1",))
