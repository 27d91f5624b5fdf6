"""The student kit holds the public checks and none of the answers, and installs with pip.

The kit is built once per session as a zip and unpacked as a student gets it (conftest's
``student_kit``); these tests search every file of it for what must never be there: the
reference's function and class bodies, the hidden tests and their thresholds, the filled-in
cells of the correct submission, and the seeded initial weights Q4 would accept verbatim.
``test_kit_parity.py`` runs it.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from kit_support import kit_python

from graders.config import FIXTURE_DATA_ROOT, load_profiles, load_thresholds
from graders.kit import contents
from graders.kit.build import FOLDER, build_kit, import_problems, plan_kit
from graders.kit.store import STORED_DIR, StoredExpectations, read_inputs
from graders.models import Visibility
from graders.questions import load_questions
from graders.questions.api import ExpectationContext
from graders.questions.expectations import LiveExpectations, is_arrays
from graders.questions.q4_backprop.expected import KIT_INIT_SAMPLE
from graders.rubric import load_rubric
from reference import q4_numpy

ROOT = Path(__file__).resolve().parents[1]
WHITESPACE = re.compile(r"\s+")
SHARED_BODIES = {
    "q4_numpy.py:EpochRow.accuracy": (
        "`return self.correct / self.total`: the accuracy of a measurement, correct over total. "
        "The Q4 accuracy check's own measurement (checks/accuracy.py: Measured) has the same "
        "one-line property; it is arithmetic every report of a count does, not a part of Q4's "
        "answer (the reference's table rows and the grader's measurement just both divide)."
    ),
}
"""Reference bodies the kit may contain, each with why it is no answer. The test fails as well
when one of them stops appearing, so this list is always exactly what the kit holds."""


def normalized(text: str) -> str:
    return WHITESPACE.sub(" ", text).strip()


def kit_texts(kit: Path) -> Iterator[tuple[str, str]]:
    """(path in the kit, normalized text) of every text file; a notebook as its cells' source."""
    for path in sorted(p for p in kit.rglob("*") if p.is_file()):
        name = path.relative_to(kit).as_posix()
        if path.suffix == ".npz" or "/kit/data/" in f"/{name}":
            continue
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            yield name, normalized(" ".join("".join(c["source"]) for c in cells))
        else:
            yield name, normalized(path.read_text(encoding="utf-8"))


def found_in(kit: Path, needle: str) -> list[str]:
    """The kit files holding ``needle`` (normalized) as a whole: not inside a longer name."""
    pattern = re.compile(r"(?<![\w.])" + re.escape(normalized(needle)) + r"(?!\w)")
    return [name for name, text in kit_texts(kit) if pattern.search(text)]


def _body_text(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> str:
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        body = body[1:]  # the docstring is words, not code
    return " ".join(ast.get_source_segment(source, statement) or "" for statement in body)


def reference_bodies() -> Iterator[tuple[str, str]]:
    """(``file:Qualified.name``, body source) of every function and class in ``reference/``."""

    def walk(file: str, source: str, node: ast.AST, prefix: str) -> Iterator[tuple[str, str]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                text = _body_text(source, child)
                if text.strip():
                    yield f"{file}:{name}", text
                yield from walk(file, source, child, f"{name}.")

    for path in sorted((ROOT / "reference").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        yield from walk(path.name, source, ast.parse(source), "")


def code_cells(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def solution_chunks() -> Iterator[tuple[str, str]]:
    """The correct submission's code that the template does not have: each run of added lines."""
    for solution in sorted((ROOT / "fixtures" / "submissions" / "all_correct").glob("*.ipynb")):
        template = code_cells(ROOT / "student_template" / solution.name).splitlines()
        filled = code_cells(solution).splitlines()
        matcher = difflib.SequenceMatcher(a=template, b=filled, autojunk=False)
        for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
            chunk = "\n".join(filled[j1:j2])
            if tag in ("insert", "replace") and chunk.strip():
                yield f"{solution.name}:{j1 + 1}", chunk


def hidden_modules() -> list[Path]:
    """Every module of a question folder that the kit must not ship (reference sides)."""
    shipped = {ROOT / f for f in plan_kit().files}
    return sorted(
        p
        for p in (ROOT / "graders" / "questions").glob("*/**/*.py")
        if p not in shipped and "__pycache__" not in p.parts
    )


# -- what is in it ---------------------------------------------------------------------------


def test_the_zip_unpacks_to_the_folder_build(student_kit: Path, tmp_path: Path) -> None:
    """One build, two forms: the folder and the zip hold the same files, byte for byte; and the
    same checkout always builds the same zip."""
    folder, again = tmp_path / "kit", tmp_path / "again.zip"
    build_kit(folder, say=lambda _m: None)
    build_kit(again, say=lambda _m: None)
    assert again.read_bytes() == (student_kit.parents[1] / "kit.zip").read_bytes()
    files = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    unpacked = {
        p.relative_to(student_kit): p.read_bytes() for p in student_kit.rglob("*") if p.is_file()
    }
    assert files == unpacked
    with pytest.raises(Exception, match="already exists"):
        build_kit(folder, say=lambda _m: None)


def test_it_holds_the_harness_the_public_checks_the_templates_and_the_data(
    student_kit: Path,
) -> None:
    manifest = json.loads((student_kit / "graders/kit/stored/manifest.json").read_text())
    split = [q.id for q in plan_kit().questions]
    assert manifest["questions"] == split and "q1" in split
    for spec in plan_kit().questions:
        assert (student_kit / "notebooks" / f"{spec.notebook_stem}.ipynb").read_bytes() == (
            ROOT / "student_template" / f"{spec.notebook_stem}.ipynb"
        ).read_bytes()
        assert (student_kit / "graders/kit/stored" / spec.id / "inputs.json").is_file()
    for raw in (ROOT / "fixtures" / "data").glob("*/raw/*"):
        copy = student_kit / "graders/kit/data" / raw.relative_to(ROOT / "fixtures" / "data")
        assert copy.read_bytes() == raw.read_bytes()
    assert {"README.md", "pyproject.toml"} <= {p.name for p in student_kit.iterdir()}


def test_the_contract_names_every_module_the_kit_ships() -> None:
    """pyproject's kit contract and ``contents.py`` list the same modules, so the import rule
    covers everything the kit ships (and nothing the kit does not)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if c["name"].startswith("What the student kit ships")
    )
    modules = {
        p.relative_to(ROOT).with_suffix("").as_posix().removesuffix("/__init__").replace("/", ".")
        for p in (ROOT / "graders").rglob("*.py")
        if "__pycache__" not in p.parts
    }

    def matches(expression: str, module: str) -> bool:
        return re.fullmatch(re.escape(expression).replace(r"\*", r"[^.]+"), module) is not None

    listed = {m for m in modules if any(matches(e, m) for e in contract["source_modules"])}
    shipped = {
        f.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for f in plan_kit().files
    }
    assert listed == shipped


def test_the_build_refuses_a_shipped_module_that_needs_what_the_kit_lacks(tmp_path: Path) -> None:
    (tmp_path / "graders" / "questions").mkdir(parents=True)
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "q1_step.py").write_text("X = 1\n")
    (tmp_path / "graders" / "hidden.py").write_text("X = 1\n")
    (tmp_path / "graders" / "public.py").write_text(
        "import json\nfrom reference import q1_step\nfrom graders import hidden\n"
    )
    problems = import_problems(tmp_path, ["graders/public.py"])
    assert problems == [
        "graders/public.py:2 imports reference (the reference solutions)",
        "graders/public.py:2 imports reference.q1_step (the reference solutions)",
        "graders/public.py:3 imports graders.hidden, which the kit does not ship",
    ]


# -- what is not in it -----------------------------------------------------------------------


def test_no_module_of_the_reference_or_of_a_reference_side_is_in_the_kit(
    student_kit: Path,
) -> None:
    names = {p.relative_to(student_kit).as_posix() for p in student_kit.rglob("*") if p.is_file()}
    assert not [n for n in names if n.startswith("reference/")]
    assert not {"graders/kit/build.py", "graders/kit/contents.py"} & names
    leaked = sorted({p.relative_to(ROOT).as_posix() for p in hidden_modules()} & names)
    assert not leaked
    assert any(p.name == "hidden.py" for p in hidden_modules())  # the search had something to find
    for module in hidden_modules():
        dotted = module.relative_to(ROOT).with_suffix("").as_posix().replace("/", ".")
        assert not found_in(student_kit, dotted), dotted


def test_no_body_of_the_reference_is_in_the_kit(student_kit: Path) -> None:
    bodies = reference_bodies()
    found = {name: hits for name, body in bodies if (hits := found_in(student_kit, body))}
    assert set(found) == set(SHARED_BODIES), found
    assert len(list(reference_bodies())) > 50  # every function and class, nested ones included


def test_no_filled_in_cell_of_the_correct_submission_is_in_the_kit(student_kit: Path) -> None:
    chunks = list(solution_chunks())
    assert len(chunks) >= 10
    found = {where: hits for where, chunk in chunks if (hits := found_in(student_kit, chunk))}
    assert not found


def test_no_file_of_the_kit_names_the_machine_it_was_built_on(student_kit: Path) -> None:
    """No stored value is a path: one of the checkout (Q3's inputs named its test images file)
    told students where the TA keeps it, and pointed their probe at a file they lack."""
    assert found_in(student_kit, str(ROOT)) == []
    assert found_in(student_kit, str(FIXTURE_DATA_ROOT)) == []


def test_no_hidden_test_is_named_in_the_kit(student_kit: Path) -> None:
    rubric = load_rubric()
    hidden = [t.id for t in rubric.tests.values() if t.visibility is not Visibility.VISIBLE]
    assert hidden
    for test_id in hidden:
        assert not found_in(student_kit, test_id), test_id
        key = test_id.split(".", 1)[1]
        assert not found_in(student_kit, key), key


def _hidden_constants() -> Iterator[tuple[str, str, str]]:
    """(module, name, docstring) of every module-level constant of a hidden-check module."""
    for path in hidden_modules():
        if path.name != "hidden.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        body = tree.body
        for node, after in zip(body, [*body[1:], None], strict=True):
            target = node.targets[0] if isinstance(node, ast.Assign) else None
            if isinstance(node, ast.AnnAssign):
                target = node.target
            # CHECKS is every check module's list of its checks, not a threshold.
            if isinstance(target, ast.Name) and target.id.isupper() and target.id != "CHECKS":
                doc = ""
                if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                    doc = str(after.value.value)
                yield path.parent.name, target.id, doc


def test_no_hidden_threshold_is_in_the_kit(student_kit: Path) -> None:
    constants = list(_hidden_constants())
    names = {name for _, name, _ in constants}
    assert {"MIN_SLOPE", "BOUND_FACTOR", "BAND", "MC_SAMPLES"} <= names
    for module, name, doc in constants:
        assert not found_in(student_kit, name), f"{module}: {name}"
        if doc:
            assert not found_in(student_kit, doc), f"{module}: {name}'s docstring"


def test_the_kits_thresholds_are_the_quick_profiles_its_checks_read(student_kit: Path) -> None:
    kit = load_thresholds(student_kit / "graders/config/thresholds.toml").for_profile("quick")
    full = load_thresholds().for_profile("quick")
    sources = "\n".join(p.read_text() for p in (student_kit / "graders").rglob("*.py"))
    assert kit and all(full[k] == v and f'"{k}"' in sources for k, v in kit.items())
    assert set(load_thresholds(student_kit / "graders/config/thresholds.toml").values) == {"quick"}


def test_the_kits_rubric_counts_the_hidden_tests_without_naming_them(student_kit: Path) -> None:
    kit, full = load_rubric(student_kit / "graders/config/rubric.toml"), load_rubric()
    assert all(t.visibility is Visibility.VISIBLE for t in kit.tests.values())
    for spec in plan_kit().questions:
        q = spec.id
        assert kit.hidden_tests(q) == full.hidden_tests(q)
        assert kit.question_points(q) == full.question_points(q)
        assert kit.manual[q] == full.manual[q]
    assert kit.hidden_tests("q1").count == 1 and kit.hidden_tests("q4").count == 0
    visible = {k: v for k, v in full.tests.items() if v.visibility is Visibility.VISIBLE}
    assert {k: v.points for k, v in kit.tests.items()} == {
        k: v.points for k, v in visible.items() if k.split(".")[0] in kit.manual
    }


def test_the_kit_holds_a_sample_of_the_seeded_initial_weights_not_the_draws(
    student_kit: Path,
) -> None:
    """The seeded draws are the same in every grader run, so the kit holding them would hand
    over q4.init's answer; it holds ``KIT_INIT_SAMPLE`` of each layer's values at most."""
    stored: list[np.ndarray] = []
    for path in (student_kit / "graders/kit/stored").rglob("*.npz"):
        with np.load(path, allow_pickle=False) as archive:
            stored += [archive[k].reshape(-1) for k in archive.files]
    values = np.concatenate([a for a in stored if a.dtype.kind == "f"])
    for w in q4_numpy.init_params().weights:
        assert np.isin(w.reshape(-1), values).sum() <= KIT_INIT_SAMPLE


def test_the_stored_values_are_what_the_grader_computes_on_the_kits_inputs(
    student_kit: Path,
) -> None:
    """Read back, every stored expectation equals the live one on the stored inputs; a published
    sample equals the live value at the positions it holds."""
    quick = load_profiles().get("quick")
    kit_ids = {q.id for q in plan_kit().questions}
    checked = 0
    for spec in (q for q in load_questions() if q.id in kit_ids):
        folder = student_kit / STORED_DIR.relative_to(ROOT) / spec.id
        inputs = read_inputs(folder)
        context = ExpectationContext(inputs=inputs, data_root=FIXTURE_DATA_ROOT, profile=quick)
        live, stored = LiveExpectations(spec.expectations, context), StoredExpectations(folder)
        for entry in json.loads((folder / "expected.json").read_text(encoding="utf-8")):
            name, arguments = entry["name"], entry["arguments"]
            want, got = live.get(name, arguments), stored.get(name, arguments)
            checked += 1
            if next(d for d in spec.expectations if d.name == name).publish is not None:
                for key in (k for k in got if k.endswith(".index")):
                    values = key.removesuffix(".index") + ".values"
                    at = np.searchsorted(want[key], got[key])
                    assert np.array_equal(want[key][at], got[key])
                    assert np.array_equal(want[values][at], got[values]), (spec.id, name, key)
                    assert got[key].size < want[key].size
            elif is_arrays(want):
                assert want.keys() == got.keys()
                assert all(np.array_equal(want[k], got[k]) for k in want), (spec.id, name)
            else:
                assert want == got, (spec.id, name)
    assert checked >= 6


def test_the_kit_is_pip_installable_and_pulls_only_its_dependencies(
    student_kit: Path, tmp_path: Path
) -> None:
    wheels, source = tmp_path / "wheels", tmp_path / "source"
    shutil.copytree(student_kit, source)  # pip builds in the tree; the session's kit stays clean
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    done = subprocess.run(
        [*pip, "-q", str(source), "-w", str(wheels)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = wheels.glob("dlgrade_kit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    kit_files = {
        p.relative_to(student_kit).as_posix()
        for p in (student_kit / "graders").rglob("*")
        if p.is_file()
    }
    assert kit_files <= names  # the stored values and the data slices are package data
    assert not [n for n in names if n.startswith("reference/")]
    assert "dlgrade-check = graders.selfcheck:main" in entry_points.decode()
    pins = {
        r.split(">")[0].split("=")[0].lower().replace("-", "_"): r
        for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    required = sorted(
        line.removeprefix("Requires-Dist: ")
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist: ")
    )
    assert required == sorted(
        [pins[d] for d in contents.DEPENDENCIES]
        + [f'{pins[d]}; extra == "torch"' for d in contents.TORCH_DEPENDENCIES]
    )
    unwanted = ("dask", "jinja2", "torch")
    assert not [r for r in required if r.startswith(unwanted) and "extra" not in r]


def test_the_kit_imports_without_the_checkout(student_kit: Path) -> None:
    """In the kit's own Python, ``graders`` is the kit's, ``reference`` does not exist, and the
    questions load (public halves only)."""
    code = (
        "import importlib.util, graders, graders.questions as q; "
        "print(graders.__file__); print(importlib.util.find_spec('reference')); "
        "print([s.id for s in q.load_questions()])"
    )
    done = kit_python(student_kit, code)
    assert done.returncode == 0, done.stderr
    where, reference, ids = done.stdout.splitlines()
    assert Path(where).is_relative_to(student_kit)
    assert reference == "None"
    assert ids == str([q.id for q in plan_kit().questions])


def test_a_kit_folder_inside_the_grader_is_refused() -> None:
    with pytest.raises(Exception, match="inside the grader"):
        build_kit(ROOT / "graders" / "kit" / "oops", say=lambda _m: None)
    assert not (ROOT / "graders" / "kit" / "oops").exists()
    assert FOLDER == "dlgrade-kit"
