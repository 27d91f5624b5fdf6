"""Set-up for ``bench_peers.py``: otter-grader and nbgrader, each in a virtual environment of its
own, and what each needs to grade the same Q2 notebook the way a course using it would.

Nothing here is timed. Every step runs a real command of the tool and stops the benchmark with a
message naming the step, the command and the tail of its output when it fails: a timing of a
grader that silently graded nothing would be meaningless.

The environments are made once from ``/usr/bin/python3.11 -m venv`` under
``~/.cache/dlgrade-bench/`` (``$DLGRADE_BENCH_CACHE`` elsewhere) and reused while their
requirements are unchanged; ipykernel and numpy are pinned to the versions of dlgrade's own
environment, so that the bare nbclient runs of the three environments start the same kernel.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import pprint
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from graders.config import PROJECT_ROOT

BASE_PYTHON = Path("/usr/bin/python3.11")
CACHE = Path(os.environ.get("DLGRADE_BENCH_CACHE", Path.home() / ".cache" / "dlgrade-bench"))
KERNEL_PACKAGES = ("ipykernel", "numpy")
"""What the Q2 notebook's kernel needs (its only import is numpy), at dlgrade's versions."""
PEER_REQUIREMENTS = {"otter": "otter-grader==7.0.0", "nbgrader": "nbgrader==0.9.6"}
SETUP_TIMEOUT_S = 1200
STUB_MARK = "# YOUR CODE HERE"
"""How the student template marks a cell the student fills in (nbgrader's own stub text)."""

BARE_RUNNER = """\
import sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="python3", timeout=300,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
"""
"""Bare nbclient, whole process: what every grader here is measured against, in its own venv."""

KERNEL_PREFIX = """\
import sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")])
NotebookClient(nb, kernel_name="python3", timeout=120).execute()
print(nb.cells[0].outputs[0]["text"].strip())
"""
"""Which environment the ``python3`` kernel of an environment runs in (it must be its own)."""


class SetupError(SystemExit):
    """A set-up step failed; the message names the step, the command and its output."""


def run_step(
    step: str,
    argv: Sequence[str | Path],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = SETUP_TIMEOUT_S,
) -> str:
    """Run one set-up command; its stdout, or a ``SetupError`` saying what failed and why."""
    command = [str(a) for a in argv]
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SetupError(f"set-up failed: {step}: {' '.join(command)}: {exc}") from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SetupError(
            f"set-up failed: {step}: {' '.join(command)} exited {done.returncode}"
            f"{f' in {cwd}' if cwd else ''}:\n{tail}"
        )
    return done.stdout


# ---------------------------------------------------------------- environments


@dataclass(frozen=True, kw_only=True)
class Environment:
    """A virtual environment a grader runs from; ``env`` is the process environment for it."""

    name: str
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        """``base`` with this environment first on PATH and no other's Python paths."""
        env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.bin}{os.pathsep}{base.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.root)
        return env


def own_environment() -> Environment:
    """dlgrade's environment: the interpreter running this script."""
    return Environment(name="dlgrade", root=Path(sys.prefix))


def kernel_requirements() -> list[str]:
    return [f"{p}=={importlib.metadata.version(p)}" for p in KERNEL_PACKAGES]


def check_kernel(environment: Environment, base: Mapping[str, str]) -> None:
    """The ``python3`` kernel a notebook started from this environment gets must be its own."""
    printed = run_step(
        f"{environment.name}: which Python the python3 kernel runs",
        [environment.python, "-c", KERNEL_PREFIX],
        env=environment.env(base),
        timeout=300,
    )
    prefix = Path(printed.strip().splitlines()[-1]).resolve()
    if prefix != environment.root.resolve():
        raise SetupError(
            f"set-up failed: {environment.name}: its python3 kernel runs in {prefix}, not in "
            f"{environment.root}: a kernelspec elsewhere (jupyter kernelspec list) shadows it"
        )


def peer_environment(name: str, base: Mapping[str, str]) -> Environment:
    """The cached environment for peer ``name``, made (or remade) when missing or outdated."""
    requirements = [PEER_REQUIREMENTS[name], *kernel_requirements()]
    environment = Environment(name=name, root=CACHE / name)
    marker = environment.root / "dlgrade-bench-requirements.txt"
    wanted = "\n".join(requirements) + "\n"
    if marker.is_file() and marker.read_text() == wanted and environment.python.exists():
        print(f"  {name}: reusing {environment.root} ({', '.join(requirements)})", flush=True)
        return environment
    if not BASE_PYTHON.exists():
        raise SetupError(f"set-up failed: {name}: {BASE_PYTHON} is missing (apt: python3.11-venv)")
    print(f"  {name}: creating {environment.root} ({', '.join(requirements)})", flush=True)
    shutil.rmtree(environment.root, ignore_errors=True)
    environment.root.parent.mkdir(parents=True, exist_ok=True)
    run_step(f"{name}: create the venv", [BASE_PYTHON, "-m", "venv", environment.root])
    pip: list[str | Path] = [environment.python, "-m", "pip", "install", "--quiet"]
    pip.append("--disable-pip-version-check")
    run_step(f"{name}: pip install", [*pip, *requirements], env=environment.env(base))
    marker.write_text(wanted)  # last: a half-made environment is made again next time
    return environment


# ---------------------------------------------------------------- otter-grader

OTTER_TESTS = {
    "q2_forward": [
        "abs(forward_variance(100) - 0.01) < 1e-12",
        "abs(relu_forward_variance(50) - 2 / 50) < 1e-12",
        "abs(activation_variance(300, 0.01, 1.0) - 3.0) < 1e-12",
    ],
    "q2_backward": [
        "abs(backward_variance(100) - 0.01) < 1e-12",
        "abs(xavier_variance(300, 100) - 2 / 400) < 1e-12",
    ],
}
"""A couple of Q2's functions checked at fixed arguments, as an otter course's tests would."""


def otter_test_file(name: str, expressions: list[str]) -> str:
    """An OK-format test file: one doctest case per expression, each expected to print True."""
    cases = [{"code": f">>> {e}\nTrue", "hidden": False, "locked": False} for e in expressions]
    suite = {"cases": cases, "scored": True, "setup": "", "teardown": "", "type": "doctest"}
    spec = {"name": name, "points": len(cases), "suites": [suite]}
    return f"OK_FORMAT = True\n\ntest = {pprint.pformat(spec, sort_dicts=False)}\n"


def otter_autograder(environment: Environment, folder: Path, base: Mapping[str, str]) -> Path:
    """``otter generate`` on a tests/ folder of OK-format tests: the autograder zip."""
    tests = folder / "tests"
    tests.mkdir(parents=True)
    for name, expressions in OTTER_TESTS.items():
        (tests / f"{name}.py").write_text(otter_test_file(name, expressions))
    zip_path = folder / "autograder.zip"
    run_step(
        "otter: generate the autograder zip",
        [
            environment.bin / "otter",
            "generate",
            "--tests-dir",
            tests,
            "--output-path",
            zip_path,
            "--no-config",
            "--no-requirements",
            "--no-environment",
        ],
        cwd=folder,
        env=environment.env(base),
    )
    if not zip_path.is_file():
        raise SetupError(f"set-up failed: otter generate wrote no {zip_path}")
    return zip_path


def check_otter_results(out: Path) -> str | None:
    """None if ``otter run`` gave every test its points (it exits 0 even when grading failed)."""
    path = out / "results.json"
    if not path.is_file():
        return f"no {path}"
    tests = json.loads(path.read_text()).get("tests", [])
    scored = {t["name"]: t for t in tests if "max_score" in t}
    missing = set(OTTER_TESTS) - set(scored)
    if missing:
        said = "\n".join(f"{t.get('name')}: {t.get('output', '')}" for t in tests)
        return f"results.json lacks {sorted(missing)}; it says:\n{said}"
    short = [n for n, t in scored.items() if t.get("score") != t.get("max_score")]
    return f"tests below full marks on a correct notebook: {short}" if short else None


# ---------------------------------------------------------------- nbgrader

NBGRADER_ASSIGNMENT = "bench"
NBGRADER_STUDENT = "bench-student"
NBGRADER_TESTS = [e for expressions in OTTER_TESTS.values() for e in expressions]
"""The same checks as otter's, as asserts in one autograder-test cell."""


def nbgrader_meta(
    grade_id: str, *, solution: bool, grade: bool, points: float = 0
) -> dict[str, dict[str, object]]:
    """A cell's nbgrader metadata: a solution cell the student writes, or a locked test cell."""
    meta: dict[str, object] = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": not solution,
        "schema_version": 3,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def stub_positions(template: Path, student: NotebookNode) -> list[int]:
    """Indices of the cells the student fills in: those the template leaves as stubs."""
    cells = nbformat.read(str(template), as_version=4).cells
    if len(cells) != len(student.cells):
        raise SetupError(
            f"set-up failed: nbgrader: {template} has {len(cells)} cells and the submission "
            f"{len(student.cells)}: the answer cells cannot be matched"
        )
    return [i for i, c in enumerate(cells) if c.cell_type == "code" and STUB_MARK in c.source]


def nbgrader_source(
    graded: NotebookNode, student: NotebookNode, template: Path
) -> tuple[NotebookNode, dict[int, str]]:
    """The instructor's source notebook and, by cell index, the student's code for each
    solution cell: the student's answers as solutions, plus one autograder-test cell.

    ``graded`` is the notebook every variant runs (parameters cell added, self-check cells
    blanked), so its answer cells are found by their source, the student's answer to a stub.
    """
    stubs = stub_positions(template, student)
    answers = {student.cells[i].source for i in stubs}
    if len(answers) != len(stubs):
        raise SetupError(f"set-up failed: nbgrader: two answer cells of {template.name} are equal")
    source = copy.deepcopy(graded)
    filled: dict[int, str] = {}
    for index, cell in enumerate(source.cells):
        if cell.cell_type == "code" and cell.source in answers:
            filled[index] = cell.source
            cell.source = f"### BEGIN SOLUTION\n{cell.source}\n### END SOLUTION"
            cell.metadata.update(nbgrader_meta(f"answer_{index}", solution=True, grade=False))
    if len(filled) != len(stubs):
        raise SetupError(
            f"set-up failed: nbgrader: found {len(filled)} of the {len(stubs)} answer cells of "
            f"{template.name} in the graded notebook"
        )
    test = nbformat.v4.new_code_cell("\n".join(f"assert {e}" for e in NBGRADER_TESTS))
    test.metadata.update(
        nbgrader_meta("q2_tests", solution=False, grade=True, points=len(NBGRADER_TESTS))
    )
    source.cells.append(test)
    return source, filled


@dataclass(frozen=True, kw_only=True)
class NbgraderCourse:
    root: Path
    notebook: str
    """The notebook's file name in source/, release/ and submitted/."""


def nbgrader_course(
    environment: Environment,
    folder: Path,
    graded: NotebookNode,
    student: NotebookNode,
    name: str,
    base: Mapping[str, str],
) -> NbgraderCourse:
    """A course directory with the assignment generated, a student in the database and the
    student's submission under submitted/: built from the released notebook, answers filled in.
    """
    template = PROJECT_ROOT / "student_template" / name
    source, filled = nbgrader_source(graded, student, template)
    folder.mkdir(parents=True)
    (folder / "nbgrader_config.py").write_text(
        f"c = get_config()  # noqa: F821\nc.CourseDirectory.course_id = 'dlgrade-bench'\n"
        f"c.CourseDirectory.root = {str(folder)!r}\n"
    )
    source_dir = folder / "source" / NBGRADER_ASSIGNMENT
    source_dir.mkdir(parents=True)
    nbformat.write(source, str(source_dir / name))
    nbgrader = environment.bin / "nbgrader"
    env = environment.env(base)
    run_step(
        "nbgrader: generate_assignment",
        [nbgrader, "generate_assignment", NBGRADER_ASSIGNMENT, "--force"],
        cwd=folder,
        env=env,
    )
    run_step(
        "nbgrader: add the student",
        [nbgrader, "db", "student", "add", NBGRADER_STUDENT],
        cwd=folder,
        env=env,
    )
    released_path = folder / "release" / NBGRADER_ASSIGNMENT / name
    if not released_path.is_file():
        raise SetupError(f"set-up failed: nbgrader generate_assignment wrote no {released_path}")
    released = nbformat.read(str(released_path), as_version=4)
    for index, code in filled.items():
        cell = released.cells[index]
        if "### BEGIN SOLUTION" in cell.source or "NotImplementedError" not in cell.source:
            raise SetupError(
                f"set-up failed: nbgrader: released cell {index} of {name} is not a cleared "
                f"solution: {cell.source[:120]!r}"
            )
        cell.source = code
    submitted = folder / "submitted" / NBGRADER_STUDENT / NBGRADER_ASSIGNMENT
    submitted.mkdir(parents=True)
    nbformat.write(released, str(submitted / name))
    return NbgraderCourse(root=folder, notebook=name)


NBGRADER_SCORE = f"""\
from nbgrader.api import Gradebook
with Gradebook("sqlite:///gradebook.db") as gb:
    nb = gb.find_submission_notebook({{name!r}}, {NBGRADER_ASSIGNMENT!r}, {NBGRADER_STUDENT!r})
    print(nb.score, nb.max_score)
"""


def check_nbgrader_score(
    environment: Environment, course: NbgraderCourse, base: Mapping[str, str]
) -> str | None:
    """None if the last autograde gave the submission full marks, as a correct one deserves."""
    graded = course.root / "autograded" / NBGRADER_STUDENT / NBGRADER_ASSIGNMENT / course.notebook
    if not graded.is_file():
        return f"no {graded}"
    printed = run_step(
        "nbgrader: read the score from the gradebook",
        [environment.python, "-c", NBGRADER_SCORE.format(name=Path(course.notebook).stem)],
        cwd=course.root,
        env=environment.env(base),
    )
    score, max_score = (float(v) for v in printed.split())
    if max_score != len(NBGRADER_TESTS) or score != max_score:
        return f"scored {score:g} of {max_score:g} (expected {len(NBGRADER_TESTS)} of as many)"
    return None
