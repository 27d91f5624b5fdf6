"""Build the notebook the kernel actually runs: grader cells around the student's own.

Two grader cells are added (tagged ``dlgrader-injected``):

* a preamble before everything: fixed seeds, the thread share, and a hook that keeps a copy of
  chosen globals the first time a cell defines them (Q4's initial weights, before training);
* the parameters, right after the cell tagged ``parameters`` (papermill's convention), so the
  profile decides epochs, data root and device whatever the student typed there.

Every cell keeps a record of its index in the student's notebook so messages point at the cell
the student wrote, never at one the grader added.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nbformat
from nbformat import NotebookNode

from graders.kernel import source as kernel_source

INJECTED_TAG = "dlgrader-injected"
SKIP_TAGS = frozenset({"dlgrade-selfcheck", "dlgrader-skip"})
"""Cells the grader does not run (a student's self-check call would start a grading inside one)."""
SNAPSHOTS_NAME = "__dlgrader_snapshots__"
_PREAMBLE = kernel_source("preamble")
_COMPAT = kernel_source("compat")


@dataclass(frozen=True, kw_only=True)
class PreparedNotebook:
    notebook: NotebookNode
    origin: tuple[int | None, ...]
    """For each cell of ``notebook``: its index in the student's notebook, None if injected."""
    parameters: Mapping[str, Any]
    parameters_cell: int | None
    """Index of the student's ``parameters`` cell, or None when it had none."""


def _scalar(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"  # TOML allows inf/nan; repr gives a bare name
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    raise TypeError(f"parameter value {value!r} is not a plain literal")


def _literal(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return _scalar(value)


def parameters_source(parameters: Mapping[str, Any]) -> str:
    lines = ["# Parameters injected by the grader (they override the cell above)."]
    lines += [f"{name} = {_literal(value)}" for name, value in parameters.items()]
    return "\n".join(lines) + "\n"


def preamble_source(
    *,
    seed: int,
    threads: int,
    uses_torch: bool,
    snapshot_names: tuple[str, ...],
    data_root: str | None = None,
    device: str = "cpu",
    files_from: str | None = None,
    files: tuple[str, ...] = (),
) -> str:
    """The preamble cell: ``graders/kernel/preamble.py`` and one call with this grading's values,
    in a private namespace (nothing of it is left among the student's names but the snapshots).
    ``files``: names in the kernel's folder ``files_from`` to copy into its working folder
    first (the student's notebook, ``sandbox.deliver``)."""
    compat = (
        None if data_root is None else {"source": _COMPAT, "data_root": data_root, "device": device}
    )
    copies = {"from": files_from, "names": list(files)} if files_from and files else None
    call = (
        f"preamble({seed!r}, {threads!r}, {uses_torch!r}, {tuple(snapshot_names)!r}, "
        f"{SNAPSHOTS_NAME!r}, {compat!r}, {copies!r})"
    )
    return f"""# Grader preamble: fixed seeds, thread share, first values of {list(snapshot_names)}.
def __dlgrader_preamble():
    code = {{"get_ipython": get_ipython}}
    exec(compile({_PREAMBLE!r}, "<dlgrader preamble>", "exec"), code)
    exec({call!r}, code)
__dlgrader_preamble()
del __dlgrader_preamble
"""


def _grader_cell(source: str) -> NotebookNode:
    cell: NotebookNode = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = [INJECTED_TAG]
    return cell


def parameters_cells(nb: NotebookNode) -> list[int]:
    """Every code cell tagged ``parameters`` (a notebook holding several questions has one per
    part, and each would undo the grader's values if only the first were followed)."""
    return [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code" and "parameters" in cell.get("metadata", {}).get("tags", [])
    ]


def find_parameters_cell(nb: NotebookNode) -> int | None:
    found = parameters_cells(nb)
    return found[0] if found else None


def prepare(
    student: NotebookNode,
    *,
    parameters: Mapping[str, Any],
    preamble: str,
) -> PreparedNotebook:
    """The notebook to execute: preamble, student cells, parameters after each parameters cell.

    A notebook without a ``parameters`` cell still gets the parameters, right after the
    preamble, so the grader's data root and budget apply; the student's own later assignments
    then win, which the checks can detect.
    """
    nb = copy.deepcopy(student)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if SKIP_TAGS & set(cell.get("metadata", {}).get("tags", [])):
                cell.source = "# (a self-check cell: not run by the grader)"
    params_at = parameters_cells(nb)
    cells: list[NotebookNode] = [_grader_cell(preamble)]
    origin: list[int | None] = [None]
    if not params_at:
        cells.append(_grader_cell(parameters_source(parameters)))
        origin.append(None)
    for index, cell in enumerate(nb.cells):
        cells.append(cell)
        origin.append(index)
        if index in params_at:
            cells.append(_grader_cell(parameters_source(parameters)))
            origin.append(None)
    nb.cells = cells
    return PreparedNotebook(
        notebook=nb,
        origin=tuple(origin),
        parameters=dict(parameters),
        parameters_cell=params_at[0] if params_at else None,
    )
