"""The notebook the kernel runs: grader cells around the student's, and the map back."""

from __future__ import annotations

import copy
import math
import random
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat import NotebookNode

from graders import inject
from graders.inject import INJECTED_TAG, parameters_source, preamble_source, prepare

PARAMS = {"DATA_ROOT": "/data/root", "EPOCHS": 1, "DEVICE": "cpu"}


@pytest.fixture
def student(repo_root: Path) -> NotebookNode:
    return nbformat.read(str(repo_root / "student_template" / "q1_step_network.ipynb"), 4)


def tagged_parameters(nb: NotebookNode) -> int:
    [index] = [
        i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])
    ]
    return index


def is_injected(cell: NotebookNode) -> bool:
    return INJECTED_TAG in cell.metadata.get("tags", [])


def test_parameters_are_injected_right_after_the_tagged_cell(student):
    at = tagged_parameters(student)
    prepared = prepare(student, parameters=PARAMS, preamble="# preamble\n")
    cells = prepared.notebook.cells
    assert prepared.parameters_cell == at
    # preamble first, then the student's cells up to the parameters cell, then the grader's
    assert cells[0].source == "# preamble\n" and is_injected(cells[0])
    assert cells[at + 1].source == student.cells[at].source
    params_cell = cells[at + 2]
    assert is_injected(params_cell)
    assert params_cell.cell_type == "code"
    assert "EPOCHS = 1" in params_cell.source
    assert len(cells) == len(student.cells) + 2
    assert [is_injected(c) for c in cells].count(True) == 2


def test_origin_maps_every_cell_back_to_the_students_notebook(student):
    prepared = prepare(student, parameters=PARAMS, preamble="# preamble\n")
    cells, origin = prepared.notebook.cells, prepared.origin
    assert len(origin) == len(cells)
    for cell, index in zip(cells, origin, strict=True):
        if index is None:
            assert is_injected(cell)
        else:
            assert not is_injected(cell)
            assert cell.source == student.cells[index].source
            assert cell.cell_type == student.cells[index].cell_type
    assert [i for i in origin if i is not None] == list(range(len(student.cells)))


def test_every_parameters_cell_is_followed_by_the_graders_values(student):
    """A notebook holding several parts has a parameters cell per part: each would undo the
    grader's values, so the grader's cell follows every one of them."""
    at = tagged_parameters(student)
    second = copy.deepcopy(student.cells[at])
    second.source = "EPOCHS = 99\nDATA_ROOT = './elsewhere'"
    student.cells.append(second)
    prepared = prepare(student, parameters=PARAMS, preamble="# preamble\n")
    cells = prepared.notebook.cells
    injected = [i for i, c in enumerate(cells) if is_injected(c) and "EPOCHS = 1" in c.source]
    assert len(injected) == 2
    assert cells[injected[-1] - 1].source == second.source, "right after the second one"
    assert prepared.parameters_cell == at


def test_without_a_parameters_cell_the_parameters_follow_the_preamble(student):
    for cell in student.cells:
        cell.metadata.pop("tags", None)
    prepared = prepare(student, parameters=PARAMS, preamble="# preamble\n")
    assert prepared.parameters_cell is None
    assert prepared.origin[:3] == (None, None, 0)
    assert "DATA_ROOT = '/data/root'" in prepared.notebook.cells[1].source


def test_a_tagged_markdown_cell_is_not_the_parameters_cell():
    md = nbformat.v4.new_markdown_cell("EPOCHS = 25")
    md.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[md, nbformat.v4.new_code_cell("x = 1")])
    assert inject.find_parameters_cell(nb) is None


def test_the_students_outputs_are_cleared_and_their_notebook_left_alone(student):
    code = [i for i, c in enumerate(student.cells) if c.cell_type == "code"]
    for i in code:
        student.cells[i].outputs = [nbformat.v4.new_output("stream", name="stdout", text="old\n")]
        student.cells[i].execution_count = 7
    prepared = prepare(student, parameters=PARAMS, preamble="# preamble\n")
    for cell in prepared.notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None
    assert all(student.cells[i].outputs for i in code)  # the input notebook is not mutated
    assert all(student.cells[i].execution_count == 7 for i in code)


def test_the_prepared_notebook_still_validates(student):
    prepared = prepare(student, parameters=PARAMS, preamble="# preamble\n")
    nbformat.validate(prepared.notebook)


@pytest.mark.parametrize(
    "value", [object(), {"nested": 1}, [1, [2]], {1, 2}, b"bytes", Path("/data"), [object()]]
)
def test_values_that_are_not_plain_literals_are_refused(value):
    with pytest.raises(TypeError):
        parameters_source({"X": value})


def test_prepare_refuses_a_non_literal_parameter(student):
    with pytest.raises(TypeError):
        prepare(student, parameters={"DEVICE": object()}, preamble="")


def test_parameters_source_round_trips_through_exec():
    params = {
        "DATA_ROOT": '/tmp/it\'s "quoted"\nand two lines',
        "EPOCHS": 3,
        "LR": 0.003,
        "TINY": 1e-300,
        "NEGATIVE": -2,
        "ON_GPU": False,
        "LIMIT": None,
        "SIZES": (784, 32, 10),
        "NAMES": ["a", None, True, 1.5],
    }
    namespace: dict[str, object] = {}
    exec(parameters_source(params), namespace)
    expected = {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}
    assert {k: namespace[k] for k in params} == expected
    assert type(namespace["EPOCHS"]) is int and type(namespace["ON_GPU"]) is bool


def test_non_finite_floats_round_trip_through_exec():
    """TOML allows ``inf`` and ``nan``; ``repr`` gives ``inf``, a NameError in the kernel."""
    namespace: dict[str, object] = {}
    exec(parameters_source({"BIG": math.inf, "LOW": -math.inf, "NOTHING": math.nan}), namespace)
    assert namespace["BIG"] == math.inf and namespace["LOW"] == -math.inf
    assert isinstance(namespace["NOTHING"], float) and math.isnan(namespace["NOTHING"])


@pytest.mark.parametrize("uses_torch", [True, False])
def test_the_preamble_is_valid_python(uses_torch):
    source = preamble_source(
        seed=3, threads=2, uses_torch=uses_torch, snapshot_names=("weights", "biases")
    )
    compile(source, "<preamble>", "exec")
    # the kernel-side preamble (graders/kernel/preamble.py), called with this grading's values
    assert f"preamble(3, 2, {uses_torch!r}, ('weights', 'biases'), " in source
    assert "torch.set_num_threads(threads)" in source and "numpy.random.seed(seed)" in source


class _Shell:
    """Just enough of IPython's shell for the preamble: a namespace and post_run_cell hooks."""

    def __init__(self) -> None:
        self.user_ns: dict[str, object] = {}
        self.hooks: list[tuple[str, object]] = []
        self.events = self

    def register(self, event: str, hook: object) -> None:
        self.hooks.append((event, hook))

    def run_cell(self, source: str) -> None:
        exec(source, self.user_ns)
        for event, hook in self.hooks:
            assert event == "post_run_cell"
            hook()  # type: ignore[operator]


def test_the_preamble_keeps_the_first_value_of_each_snapshot_name():
    """Q4's initial weights must survive training that updates them in place."""
    saved = random.getstate(), np.random.get_state()
    try:
        shell = _Shell()
        shell.user_ns["get_ipython"] = lambda: shell
        preamble = preamble_source(
            seed=0, threads=1, uses_torch=False, snapshot_names=("weights", "biases")
        )
        shell.run_cell(preamble)
        shell.run_cell("import numpy as np\nweights = [np.zeros(3)]")
        shell.run_cell("weights[0] += 5\nbiases = [np.ones(2)]")
        snapshots = shell.user_ns[inject.SNAPSHOTS_NAME]
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    assert isinstance(snapshots, dict)
    np.testing.assert_array_equal(snapshots["weights"][0], np.zeros(3))
    np.testing.assert_array_equal(snapshots["biases"][0], np.ones(2))
    assert "__dlgrader_preamble" not in shell.user_ns
