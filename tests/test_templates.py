"""The student templates and the two fixture submissions, checked without a kernel.

The grader relies on these notebooks' shape: one ``parameters`` cell it can override, answer
regions in the nbgrader form, free-response cells it can collect by id, data read offline from
``DATA_ROOT``. The ``all_correct`` fixture must differ from the template only where a student
writes, or it would not be evidence that a student's notebook gets full marks. The last tests
run the fixture's pure functions (no kernel, no data) against the closed forms and the reference.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from nbformat import NotebookNode

from graders.questions import load_questions
from tools.notebooks import builder

REPO = Path(__file__).resolve().parents[1]
TEMPLATE_DIR = REPO / "student_template"
BLANK_DIR = REPO / "fixtures" / "submissions" / "blank"
CORRECT_DIR = REPO / "fixtures" / "submissions" / "all_correct"
GENERATOR = REPO / "tools" / "make_notebooks.py"

Q1, Q2, Q3, Q4 = (
    "q1_step_network.ipynb",
    "q2_initialization.ipynb",
    "q3_fashion_mlp.ipynb",
    "q4_numpy_backprop.ipynb",
)
NOTEBOOKS = (Q1, Q2, Q3, Q4)
ALL_FILES = [d / name for d in (TEMPLATE_DIR, BLANK_DIR, CORRECT_DIR) for name in NOTEBOOKS]

DEVICE_DEFAULT = '"cuda" if torch.cuda.is_available() else "cpu"'
EXPECTED_PARAMETERS: dict[str, dict[str, Any]] = {
    Q1: {"SEED": 0},
    Q2: {"SEED": 0},
    Q3: {
        "EPOCHS": 25,
        "BATCH_SIZE": 64,
        "LEARNING_RATE": 0.01,
        "DATA_ROOT": "./data",
        "DEVICE": DEVICE_DEFAULT,
        "TRAIN_LIMIT": None,
        "N_SAMPLES": 3,
        "SEED": 0,
    },
    Q4: {
        "EPOCHS": 3,
        "LEARNING_RATE": 0.003,
        "DATA_ROOT": "./data",
        "TRAIN_LIMIT": None,
        "TEST_LIMIT": None,
    },
}
"""The settings the grader overrides; DEVICE is an expression, compared as source text."""

ANSWER_NAMES = {
    Q1: ("box_network", "box_approximation"),
    Q2: (
        "activation_variance",
        "forward_variance",
        "relu_factor",
        "relu_forward_variance",
        "backward_variance",
        "xavier_variance",
    ),
    Q3: (
        "FashionMLP",
        "model",
        "loss",
        "optimizer",
        "test_accuracy_history",
        "random_indices",
        "sample_probabilities",
    ),
    Q4: (
        "weights",
        "biases",
        "feed_forward_sample",
        "feed_forward_dataset",
        "train_one_sample",
        "train_one_epoch",
    ),
}
"""Names the grader reads: the cell that binds each one must hold an answer region."""

FREE_RESPONSE_IDS = {
    Q1: ("q1a", "q1b", "q1c"),
    Q2: ("q2a", "q2b", "q2c", "q2d", "q2e"),
    Q3: ("q3_test_vs_train", "q3_observations"),
    Q4: ("q4_notes",),
}

REGION = re.compile(
    r"^(?P<indent>[ \t]*)# YOUR CODE HERE\n(?P=indent)raise NotImplementedError\(\)[ \t]*$",
    re.MULTILINE,
)


def load(path: Path) -> NotebookNode:
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def code_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def tagged(nb: NotebookNode, tag: str) -> list[NotebookNode]:
    return [cell for cell in nb.cells if tag in cell.get("metadata", {}).get("tags", [])]


def bound_names(tree: ast.AST) -> Iterator[str]:
    """Every name a piece of code binds at any depth (assignments, defs, imports, loops)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            yield node.id
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node.name
        elif isinstance(node, ast.Import | ast.ImportFrom):
            yield from ((a.asname or a.name).split(".")[0] for a in node.names)


def top_level_names(source: str) -> set[str]:
    """Names a cell binds outside function bodies: what the grader finds in the kernel."""
    names: set[str] = set()
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(stmt.name)
        else:
            names.update(bound_names(stmt))
    return names


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_is_valid_nbformat_45_without_outputs(path: Path) -> None:
    nb = load(path)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert nb.metadata.kernelspec.name == "python3"
    ids = [cell.id for cell in nb.cells]
    assert len(set(ids)) == len(ids)
    for cell in code_cells(nb):
        assert cell.outputs == [] and cell.execution_count is None, cell.id
        ast.parse(cell.source)  # every code cell is valid Python


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_one_parameters_cell_of_plain_assignments(path: Path) -> None:
    cells = tagged(load(path), "parameters")
    assert len(cells) == 1 and cells[0].cell_type == "code"
    found: dict[str, Any] = {}
    for stmt in ast.parse(cells[0].source).body:
        assert isinstance(stmt, ast.Assign), f"not a plain assignment: {ast.unparse(stmt)}"
        assert len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)
        name = stmt.targets[0].id
        if name == "DEVICE":
            found[name] = ast.unparse(stmt.value).replace("'", '"')
        else:
            found[name] = ast.literal_eval(stmt.value)
    assert found == EXPECTED_PARAMETERS[path.name]


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_settings_are_never_reassigned_after_the_parameters_cell(path: Path) -> None:
    """The grader's values are injected right after the cell; a later assignment would win."""
    nb = load(path)
    start = nb.cells.index(tagged(nb, "parameters")[0])
    settings = set(EXPECTED_PARAMETERS[path.name])
    for cell in code_cells(nb):
        if nb.cells.index(cell) > start:
            clash = settings & set(bound_names(ast.parse(cell.source)))
            assert not clash, f"cell {cell.id} rebinds {sorted(clash)}"


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_gpu_hard_coding_and_no_tensorflow(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert ".cuda()" not in text
    assert "tensorflow" not in text.lower() and "keras" not in text.lower()


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_datasets_are_read_offline_from_data_root(path: Path) -> None:
    calls = [
        node
        for cell in code_cells(load(path))
        for node in ast.walk(ast.parse(cell.source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"MNIST", "FashionMNIST"}
    ]
    assert len(calls) == (2 if path.name in {Q3, Q4} else 0)
    for call in calls:
        assert isinstance(call.args[0], ast.Name) and call.args[0].id == "DATA_ROOT"
        download = {k.arg: k.value for k in call.keywords}["download"]
        assert isinstance(download, ast.Constant) and download.value is False


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_template_has_an_answer_region_for_every_graded_name(name: str) -> None:
    template, correct = load(TEMPLATE_DIR / name), load(CORRECT_DIR / name)
    template_by_id = {cell.id: cell for cell in template.cells}
    for cell in code_cells(template):
        markers = cell.source.count("# YOUR CODE HERE")
        assert len(REGION.findall(cell.source)) == markers, f"malformed region in {cell.id}"
    for wanted in ANSWER_NAMES[name]:
        binders = [c for c in code_cells(correct) if wanted in top_level_names(c.source)]
        assert binders, f"all_correct never defines {wanted}"
        assert REGION.search(template_by_id[binders[0].id].source), f"{wanted}: no region"
        defs = [
            node
            for node in ast.walk(ast.parse(template_by_id[binders[0].id].source))
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == wanted
        ]
        for node in defs:  # a graded function must raise until the student writes it
            assert "raise NotImplementedError()" in ast.unparse(node), wanted


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_template_free_response_cells(name: str) -> None:
    cells = tagged(load(TEMPLATE_DIR / name), "free_response")
    assert tuple(c.metadata["dlgrader"]["id"] for c in cells) == FREE_RESPONSE_IDS[name]
    for cell in cells:
        answer_id = cell.metadata["dlgrader"]["id"]
        assert cell.cell_type == "markdown"
        assert cell.source == f"**Your answer ({answer_id}):**\n\nYOUR ANSWER HERE"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_blank_submission_is_the_template(name: str) -> None:
    assert (BLANK_DIR / name).read_bytes() == (TEMPLATE_DIR / name).read_bytes()


def _filled_pattern(template_source: str) -> re.Pattern[str]:
    """The template with each answer region replaced by 'any non-empty code'."""
    parts = REGION.split(template_source)
    fixed = parts[::2]  # split() also returns the captured indent after each piece
    return re.compile("(.+?)".join(re.escape(p) for p in fixed), re.DOTALL)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_all_correct_differs_from_template_only_where_students_write(name: str) -> None:
    template, correct = load(TEMPLATE_DIR / name), load(CORRECT_DIR / name)
    assert template.metadata == correct.metadata
    assert [c.id for c in template.cells] == [c.id for c in correct.cells]
    for t, c in zip(template.cells, correct.cells, strict=True):
        assert (t.cell_type, t.metadata) == (c.cell_type, c.metadata), t.id
        if "free_response" in t.metadata.get("tags", []):
            header = t.source.split("\n", 1)[0]
            assert c.source.startswith(header + "\n") and "YOUR ANSWER HERE" not in c.source
        elif t.cell_type == "code" and REGION.search(t.source):
            match = _filled_pattern(t.source).fullmatch(c.source)
            assert match, f"{t.id}: all_correct changes code outside the answer regions"
            assert all(group.strip() for group in match.groups()), t.id
        else:
            assert t.source == c.source, t.id


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_all_correct_leaves_nothing_unanswered(name: str) -> None:
    nb = load(CORRECT_DIR / name)
    for cell in code_cells(nb):
        assert "NotImplementedError" not in cell.source and "YOUR CODE HERE" not in cell.source
    for cell in tagged(nb, "free_response"):
        assert "YOUR ANSWER HERE" not in cell.source, cell.id


def test_regenerating_gives_byte_identical_files(tmp_path: Path) -> None:
    rendered = builder.render_all()
    assert sorted(rendered) == sorted(str(p.relative_to(REPO)) for p in ALL_FILES)
    assert builder.render_all() == rendered  # no random cell ids
    builder.write_all(tmp_path)
    for relative in rendered:
        assert (tmp_path / relative).read_bytes() == (REPO / relative).read_bytes(), relative
    assert builder.stale_files(REPO) == []
    edited = next(iter(rendered))
    (tmp_path / edited).write_text("{}", encoding="utf-8")
    assert builder.stale_files(tmp_path) == [edited]


def test_command_line_checks_the_committed_notebooks_from_any_directory(tmp_path: Path) -> None:
    """The documented command, run as a script from elsewhere and without PYTHONPATH."""
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_one_notebook_module_per_grader_question() -> None:
    """The builder finds the question modules by name; each must be a question the grader has."""
    found = [(spec.question, spec.filename) for spec in builder.question_specs()]
    assert found == [(q.id, f"{q.notebook_stem}.ipynb") for q in load_questions()]


def test_generator_rejects_unbalanced_solution_markers() -> None:
    with pytest.raises(ValueError, match="never closed"):
        builder.split_source("### BEGIN SOLUTION\nx = 1", solution=False)
    with pytest.raises(ValueError, match="without"):
        builder.split_source("x = 1\n### END SOLUTION", solution=True)
    template = builder.split_source(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", solution=False
    )
    assert template == "def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()"


# ---------------------------------------------------------------------------------------------
# The all_correct answers themselves (pure functions only: no kernel, no data, no plots)
# ---------------------------------------------------------------------------------------------


def definitions(name: str, **given: Any) -> dict[str, Any]:
    """Run the all_correct cells that only define functions or classes; return the namespace."""
    namespace: dict[str, Any] = {"np": np, **given}
    for cell in code_cells(load(CORRECT_DIR / name)):
        body = ast.parse(cell.source).body
        if body and all(isinstance(s, ast.FunctionDef | ast.ClassDef) for s in body):
            exec(compile(cell.source, f"<{name}:{cell.id}>", "exec"), namespace)
    return namespace


def step_net(params: tuple[Any, ...], x: np.ndarray) -> np.ndarray:
    """The grader's reading of (w_hidden, b_hidden, w_out, b_out), independent of the notebook."""
    w_hidden, b_hidden, w_out, b_out = (np.asarray(p, dtype=float) for p in params)
    hidden = (np.multiply.outer(x, w_hidden) + b_hidden > 0).astype(float)
    return np.asarray(hidden @ w_out + b_out)


@pytest.mark.parametrize(("h", "delta"), [(1.0, 1.0), (2.5, 0.3), (-1.7, 4.0)])
def test_q1_box_is_exact_including_both_edges(h: float, delta: float) -> None:
    box_network = definitions(Q1)["box_network"]
    edges = np.array([0.0, delta])
    x = np.concatenate(
        [
            np.linspace(-delta, 2 * delta, 3001),
            edges,
            np.nextafter(edges, 9e9),
            np.nextafter(edges, -9e9),
        ]
    )
    params = box_network(h, delta)
    assert len(params[0]) == 2
    np.testing.assert_array_equal(step_net(params, x), np.where((x > 0) & (x < delta), h, 0.0))


@pytest.mark.parametrize(
    ("f", "lipschitz", "B"),
    [(np.sin, 1.0, 3.0), (lambda x: x**2 - 1.0, 4.0, 2.0), (np.exp, np.exp(1.0), 1.0)],
)
def test_q1_box_approximation_error_is_order_one_over_n(
    f: Callable[[Any], Any], lipschitz: float, B: float
) -> None:
    box_approximation = definitions(Q1)["box_approximation"]
    errors = []
    for n in (4, 16, 64):
        params = box_approximation(f, B, n)
        assert len(params[0]) == 2 * n
        edges = np.linspace(-B, B, n + 1)  # the error peaks at box edges: always include them
        x = np.concatenate([np.linspace(-B, B, 2001), edges, np.nextafter(edges[1:-1], 9e9)])
        errors.append(float(np.max(np.abs(step_net(params, x) - f(x)))))
        assert errors[-1] <= lipschitz * B / n + 1e-12, (n, errors[-1])
    assert errors[2] < errors[0] / 8


def test_q2_formulas_match_the_closed_forms() -> None:
    ns = definitions(Q2)
    rng = np.random.default_rng(1)
    for n_in, n_out in rng.integers(1, 5000, size=(20, 2)).tolist():
        sigma2, v2 = rng.uniform(1e-4, 2.0, size=2)
        assert ns["activation_variance"](n_in, sigma2, v2) == pytest.approx(n_in * sigma2 * v2)
        assert ns["forward_variance"](n_in) == pytest.approx(1 / n_in)
        assert ns["relu_forward_variance"](n_in) == pytest.approx(2 / n_in)
        assert ns["backward_variance"](n_out) == pytest.approx(1 / n_out)
        assert ns["xavier_variance"](n_in, n_out) == pytest.approx(2 / (n_in + n_out))
    assert ns["relu_factor"]() == pytest.approx(2.0)


def test_q3_model_matches_the_reference_architecture() -> None:
    torch = pytest.importorskip("torch")
    from reference.q3_mlp import N_PARAMETERS
    from reference.q3_mlp import FashionMLP as ReferenceMLP

    model = definitions(Q3, torch=torch)["FashionMLP"]()
    assert sum(p.numel() for p in model.parameters()) == N_PARAMETERS
    torch.manual_seed(0)
    reference = ReferenceMLP()
    # Copy tensor by tensor in order: the grader may not rely on the student's layer names.
    ours, theirs = model.state_dict(), reference.state_dict()
    assert [t.shape for t in ours.values()] == [t.shape for t in theirs.values()]
    model.load_state_dict(dict(zip(ours, theirs.values(), strict=True)))
    images = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(model(images), reference(images))


def test_q4_functions_match_the_reference_bit_for_bit() -> None:
    from reference import q4_numpy as ref

    correct = load(CORRECT_DIR / Q4)
    init_cell = next(c for c in code_cells(correct) if "weights" in top_level_names(c.source))
    ns = definitions(Q4, LEARNING_RATE=0.003)
    exec(compile(init_cell.source, "<q4 init>", "exec"), ns)
    start = ref.init_params()
    for mine, theirs in zip(
        [*ns["weights"], *ns["biases"]], [*start.weights, *start.biases], strict=True
    ):
        np.testing.assert_array_equal(mine, theirs)

    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, size=(5, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=5)
    params = start.copy()
    for sample, label in zip(x, y.tolist(), strict=True):
        loss, guess = ns["feed_forward_sample"](sample, label)
        ref_loss, ref_guess = ref.feed_forward_sample(params, sample, label)
        assert loss == ref_loss
        np.testing.assert_array_equal(guess, ref_guess)
        ns["train_one_sample"](sample, label, 0.003)
        params = ref.train_one_sample(params, sample, label, 0.003)
    for mine, theirs in zip(
        [*ns["weights"], *ns["biases"]], [*params.weights, *params.biases], strict=True
    ):
        np.testing.assert_array_equal(mine, theirs)
