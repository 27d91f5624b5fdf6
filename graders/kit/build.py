"""``dlgrade kit build``: the student kit, a pip-installable folder or zip without the answers.

The kit is the grader's public half and nothing more (``contents.py`` lists it): the harness,
each split question's spec, probe and public checks, the template notebooks and the quick
profile's data slices. Where the grader asks the reference, the kit holds what the reference
gave on the kit's own fixed inputs, computed here once (``store.py`` writes it). The rubric it
carries lists the public tests and only the count and points of the hidden ones; its thresholds
are the quick profile's that a shipped check reads.

Before anything is written, every ``graders`` module a shipped file imports must itself be
shipped, and nothing may import ``reference``: a public check that starts to lean on the
reference fails the build, naming the file and line, instead of leaking the answers.
"""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
import stat
import string
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graders import GRADER_VERSION
from graders.config import FIXTURE_DATA_ROOT, PROJECT_ROOT, load_profiles, load_thresholds
from graders.errors import ConfigError
from graders.kit import contents
from graders.kit.store import Manifest, write_manifest, write_question
from graders.models import ProbeInputs, Visibility
from graders.questions import has_reference_side, load_questions
from graders.questions.api import ExpectationContext, ProbeContext, QuestionSpec
from graders.questions.expectations import plain
from graders.rubric import Rubric, load_rubric

KIT_SEED = 16
"""The public seed the kit's probe inputs are drawn with (any fixed number would do; it is in
the manifest, and it is no secret: the grader draws fresh inputs for every submission)."""
PROFILE = "quick"
FOLDER = "dlgrade-kit"
"""The kit's folder (in a zip, its one top-level entry)."""
DATASETS = ("MNIST", "FashionMNIST")
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
"""One timestamp for every member: the same tree always gives the same zip."""
_SKIPPED = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
STORED = "graders/kit/stored"
DATA = "graders/kit/data"
README_TEMPLATE = Path(__file__).resolve().parent / "student_readme.md"


@dataclass(frozen=True, kw_only=True)
class KitPlan:
    """What one build puts in the kit, decided before anything is written."""

    questions: tuple[QuestionSpec, ...]
    """The questions the kit checks: those split into a public half and a reference side."""
    left_out: tuple[QuestionSpec, ...]
    """Questions not split yet: their checks still need the reference, so the kit has none."""
    files: tuple[str, ...]
    """Source files copied as they are, relative to the project root."""


def _question_package(spec: QuestionSpec) -> str:
    return f"graders.questions.{spec.package_dir.name}"


def _expand(project_root: Path, patterns: Iterable[str], *, required: bool) -> list[str]:
    """The files the globs match; with ``required``, a glob that matches none is an error."""
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(
            p.relative_to(project_root).as_posix()
            for p in project_root.glob(pattern)
            if p.is_file() and not _SKIPPED & set(p.parts)
        )
        if required and not matches:
            raise ConfigError(f"the kit's contents name {pattern!r}, which is not there")
        found += matches
    return list(dict.fromkeys(found))


def plan_kit(project_root: Path = PROJECT_ROOT) -> KitPlan:
    full = load_questions()
    split = tuple(q for q in full if has_reference_side(_question_package(q)))
    files = _expand(project_root, contents.HARNESS, required=True)
    for spec in split:
        folder = spec.package_dir.relative_to(project_root).as_posix()
        names = [f"{folder}/{name}" for name in contents.QUESTION_FILES]
        files += _expand(project_root, names, required=False)
    plan = KitPlan(
        questions=split,
        left_out=tuple(q for q in full if q not in split),
        files=tuple(files),
    )
    problems = import_problems(project_root, plan.files)
    if problems:
        raise ConfigError(
            "the kit would not run without modules it must not ship:\n  " + "\n  ".join(problems)
        )
    return plan


def _module_of(path: str) -> str:
    dotted = path.removesuffix(".py").replace("/", ".")
    return dotted.removesuffix(".__init__")


def _imported(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, module) of every import, including ``from package import submodule``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module
            yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)


def import_problems(project_root: Path, files: Iterable[str]) -> list[str]:
    """Each import in ``files`` of ``reference`` or of a project module not among ``files``."""
    shipped = {_module_of(f) for f in files}
    project = {
        _module_of(p.relative_to(project_root).as_posix()) for p in _project_modules(project_root)
    }
    problems = []
    for file in files:
        if not file.endswith(".py"):
            continue
        tree = ast.parse((project_root / file).read_text(encoding="utf-8"), filename=file)
        for line, module in _imported(tree):
            top = module.split(".")[0]
            if top == "reference":
                problems.append(f"{file}:{line} imports {module} (the reference solutions)")
            elif top == "graders" and module in project and module not in shipped:
                problems.append(f"{file}:{line} imports {module}, which the kit does not ship")
    return problems


def _project_modules(project_root: Path) -> Iterator[Path]:
    for top in ("graders", "reference"):
        for path in (project_root / top).rglob("*.py"):
            if not _SKIPPED & set(path.parts):
                yield path


# -- what the kit's config holds -------------------------------------------------------------


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a TOML basic string


def public_rubric(rubric: Rubric, questions: Iterable[str]) -> str:
    """The kit's rubric.toml: public tests and free-response items in full, hidden tests as
    ``[<q>.hidden]`` count and points only."""
    lines = [
        "# The student kit's rubric, written by `dlgrade kit build`: the public tests' points,",
        "# the free-response items, and each question's hidden tests as their count and points.",
        "",
        "[settings]",
        f"hidden_visibility = {_toml_string(rubric.hidden_visibility.value)}",
        f"cuda_deduction = {rubric.cuda_deduction!r}",
    ]
    for q in questions:
        lines += ["", f"[{q}.tests]"]
        for test in rubric.tests.values():
            if test.id.startswith(f"{q}.") and test.visibility is Visibility.VISIBLE:
                lines.append(f"{test.id.removeprefix(f'{q}.')} = {{ points = {test.points!r} }}")
        hidden = rubric.hidden_tests(q)
        if hidden.count:
            lines += ["", f"[{q}.hidden]", f"count = {hidden.count}", f"points = {hidden.points!r}"]
        if rubric.manual.get(q):
            lines += ["", f"[{q}.manual]"]
            for item in rubric.manual[q]:
                title = _toml_string(item.title)
                lines.append(f"{item.id} = {{ points = {item.points!r}, title = {title} }}")
    return "\n".join(lines) + "\n"


def public_thresholds(project_root: Path, files: Iterable[str]) -> str:
    """The kit's thresholds.toml: the quick profile's values that a shipped file names."""
    sources = "\n".join((project_root / f).read_text(encoding="utf-8") for f in files)
    values = load_thresholds().for_profile(PROFILE)
    kept = {k: v for k, v in sorted(values.items()) if f'"{k}"' in sources}
    lines = [
        "# The quick profile's calibrated thresholds that the kit's public checks read,",
        "# copied by `dlgrade kit build` from the grader's (where their provenance is).",
        "",
        f"[{PROFILE}]",
        *(f"{_toml_string(k)} = {v!r}" for k, v in kept.items()),
    ]
    return "\n".join(lines) + "\n"


def pyproject(project_root: Path) -> str:
    """The kit's own pyproject.toml: ``dlgrade-kit``, the ``dlgrade-check`` command, and only
    the dependencies the kit uses, with the grader's own version pins."""
    raw = tomllib.loads((project_root / "pyproject.toml").read_text(encoding="utf-8"))
    pins = {_requirement_name(r): r for r in raw["project"]["dependencies"]}

    def chosen(names: Iterable[str]) -> str:
        return ", ".join(_toml_string(pins[n]) for n in names)

    return f"""[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{FOLDER}"
version = "{GRADER_VERSION}"
description = "Self-check for Deep Learning Assignment 1: the public tests, offline."
readme = "README.md"
requires-python = ">=3.11"
dependencies = [{chosen(contents.DEPENDENCIES)}]

[project.optional-dependencies]
torch = [{chosen(contents.TORCH_DEPENDENCIES)}]

[project.scripts]
dlgrade-check = "graders.selfcheck:main"

[tool.setuptools.packages.find]
include = ["graders*"]

[tool.setuptools.package-data]
graders = [
    "config/*.toml",
    "kit/stored/*.json",
    "kit/stored/*/*",
    "kit/stored/*/expected/*",
    "kit/data/*/raw/*",
]
"""


def _requirement_name(requirement: str) -> str:
    name = requirement
    for stop in "<>=!~[; ":
        name = name.split(stop)[0]
    return name.strip().lower().replace("-", "_")


def student_readme(plan: KitPlan) -> str:
    rows = "\n".join(f"| `{q.notebook_stem}.ipynb` | {q.id}: {q.title} |" for q in plan.questions)
    text = f"| notebook | question |\n|---|---|\n{rows}"
    if plan.left_out:
        names = ", ".join(f"{q.id} ({q.title})" for q in plan.left_out)
        text += f"\n\nThis kit does not check {names} yet; the grader does."
    return string.Template(README_TEMPLATE.read_text(encoding="utf-8")).substitute(questions=text)


# -- the stored values -----------------------------------------------------------------------


def _kit_rng(question: str, purpose: str) -> np.random.Generator:
    digest = hashlib.sha256(f"kit:{question}:{purpose}:{KIT_SEED}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def kit_inputs(spec: QuestionSpec) -> ProbeInputs:
    """The kit's fixed public inputs for ``spec``: its own ``make_inputs`` on the fixture data."""
    if spec.make_inputs is None:
        return ProbeInputs()
    profile = load_profiles().get(PROFILE)
    ctx = ProbeContext(
        profile=profile, data_root=FIXTURE_DATA_ROOT, rng=_kit_rng(spec.id, "inputs")
    )
    return spec.make_inputs(ctx)


def kit_values(spec: QuestionSpec, inputs: ProbeInputs) -> list[tuple[str, dict[str, Any], Any]]:
    """Every expectation of ``spec`` the kit stores, as (name, arguments, value): computed by
    the reference on the kit's inputs, for each argument set it declares, published as it says."""
    ctx = ExpectationContext(
        inputs=inputs, data_root=FIXTURE_DATA_ROOT, profile=load_profiles().get(PROFILE)
    )
    out: list[tuple[str, dict[str, Any], Any]] = []
    for definition in spec.expectations:
        argument_sets = definition.kit_arguments(inputs) if definition.kit_arguments else ({},)
        for arguments in argument_sets:
            value = plain(definition.name, definition.compute(ctx, dict(arguments)))
            if definition.publish is not None:
                rng = _kit_rng(spec.id, f"publish:{definition.name}")
                value = plain(definition.name, definition.publish(value, rng))
            out.append((definition.name, dict(arguments), value))
    return out


# -- writing -----------------------------------------------------------------------------------


def _write_tree(plan: KitPlan, project_root: Path, kit: Path, say: Callable[[str], None]) -> None:
    for file in plan.files:
        target = kit / file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project_root / file, target)
    config = kit / "graders" / "config"
    config.mkdir(parents=True, exist_ok=True)
    for name in contents.CONFIG_COPIED:
        shutil.copyfile(project_root / "graders" / "config" / name, config / name)
    ids = [q.id for q in plan.questions]
    (config / "rubric.toml").write_text(public_rubric(load_rubric(), ids), encoding="utf-8")
    (config / "thresholds.toml").write_text(
        public_thresholds(project_root, plan.files), encoding="utf-8"
    )
    for spec in plan.questions:
        say(f"computing {spec.id}'s expected values on the kit's inputs")
        inputs = kit_inputs(spec)
        write_question(kit / STORED, spec.id, inputs, kit_values(spec, inputs))
        notebook = project_root / "student_template" / f"{spec.notebook_stem}.ipynb"
        (kit / "notebooks").mkdir(exist_ok=True)
        shutil.copyfile(notebook, kit / "notebooks" / notebook.name)
    for dataset in DATASETS:
        shutil.copytree(FIXTURE_DATA_ROOT / dataset / "raw", kit / DATA / dataset / "raw")
    (kit / "README.md").write_text(student_readme(plan), encoding="utf-8")
    (kit / "pyproject.toml").write_text(pyproject(project_root), encoding="utf-8")
    manifest = Manifest(
        grader_version=GRADER_VERSION,
        seed=KIT_SEED,
        questions=tuple(ids),
        left_out=tuple(q.id for q in plan.left_out),
    )
    write_manifest(kit / STORED, manifest)  # last: a kit without it is incomplete


def _zip(folder: Path, out: Path) -> None:
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(
                f"{FOLDER}/{path.relative_to(folder).as_posix()}", date_time=_ZIP_TIME
            )
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(out)


def build_kit(
    out: Path, *, project_root: Path = PROJECT_ROOT, say: Callable[[str], None] = print
) -> KitPlan:
    """Write the kit to ``out``: a folder (created; it must not exist yet) or a ``.zip``."""
    out = out.resolve()
    if out.is_relative_to(project_root / "graders"):
        raise ConfigError("the kit cannot be built inside the grader's own package", path=out)
    if out.suffix != ".zip" and out.exists():
        raise ConfigError("already exists; remove it or choose another --out", path=out)
    plan = plan_kit(project_root)
    for spec in plan.left_out:
        say(f"{spec.id} is not in the kit: its checks are not split from the reference yet")
    with tempfile.TemporaryDirectory(prefix="dlgrade-kit-") as tmp:
        kit = Path(tmp) / FOLDER
        _write_tree(plan, project_root, kit, say)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".zip":
            _zip(kit, out)
        else:
            shutil.copytree(kit, out)
    return plan
