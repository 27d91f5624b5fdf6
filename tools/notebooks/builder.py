"""Generate the student template notebooks and the two fixture submissions from one source.

The source is the question modules of this package (``q<N>_<name>.py``, each with a ``spec()``),
found by name so that this file knows no question. The template replaces each solution block
with ``# YOUR CODE HERE`` / ``raise NotImplementedError()`` at the block's indentation; the
``all_correct`` fixture keeps the answer and drops the markers. A free-response cell becomes its
header and ``YOUR ANSWER HERE`` in the template and keeps the model answer in the fixture. The
output is byte-identical from run to run, so a test can hold the committed notebooks to this
source (``--check``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import nbformat
from nbformat import NotebookNode

from tools.notebooks.cells import BEGIN_SOLUTION, END_SOLUTION, Cell, NotebookSpec
from tools.question_modules import question_modules

REPO_ROOT: Final = Path(__file__).resolve().parents[2]

CODE_MARKER: Final = "# YOUR CODE HERE"
CODE_RAISE: Final = "raise NotImplementedError()"
ANSWER_PLACEHOLDER: Final = "YOUR ANSWER HERE"

TEMPLATE_DIRS: Final = ("student_template", "fixtures/submissions/blank")
"""Folders that receive the untouched template."""
SOLUTION_DIRS: Final = ("fixtures/submissions/all_correct",)
"""Folders that receive the filled-in notebooks."""

KERNELSPEC: Final = {"display_name": "Python 3", "language": "python", "name": "python3"}


def question_specs() -> list[NotebookSpec]:
    """Every question module's notebook, in question order; two may not share a file or an id."""
    specs = []
    for module in question_modules(__name__.rpartition(".")[0]):
        make_spec = getattr(module, "spec", None)
        spec = make_spec() if callable(make_spec) else None
        if not isinstance(spec, NotebookSpec):
            raise TypeError(f"{module.__name__} has no spec() that returns a NotebookSpec")
        specs.append(spec)
    for key in ("filename", "question"):
        values = [getattr(spec, key) for spec in specs]
        if len(set(values)) != len(values):
            raise ValueError(f"two question modules share a {key}: {values}")
    return specs


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def split_source(source: str, *, solution: bool) -> str:
    """The template (solution blocks -> marker and raise) or the solution (markers dropped)."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), start=1):
        marker = line.strip()
        if marker == BEGIN_SOLUTION:
            if inside:
                raise ValueError(f"line {number}: nested {BEGIN_SOLUTION}")
            inside = True
            if not solution:
                out += [_indent_of(line) + CODE_MARKER, _indent_of(line) + CODE_RAISE]
        elif marker == END_SOLUTION:
            if not inside:
                raise ValueError(f"line {number}: {END_SOLUTION} without {BEGIN_SOLUTION}")
            inside = False
        elif solution or not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN_SOLUTION} is never closed")
    return "\n".join(out)


def free_response_header(answer_id: str) -> str:
    return f"**Your answer ({answer_id}):**"


def free_response_source(cell: Cell, *, solution: bool) -> str:
    """The model answer, or its header line followed by the placeholder."""
    assert cell.answer_id is not None
    header = free_response_header(cell.answer_id)
    if not cell.source.startswith(header):
        raise ValueError(f"free-response cell {cell.id} must start with {header!r}")
    return cell.source if solution else f"{header}\n\n{ANSWER_PLACEHOLDER}"


def render_cell(cell: Cell, *, solution: bool) -> NotebookNode:
    metadata: dict[str, object] = {}
    if cell.tags:
        metadata["tags"] = list(cell.tags)
    if cell.answer_id is not None:
        metadata["dlgrader"] = {"id": cell.answer_id}
        return nbformat.v4.new_markdown_cell(
            free_response_source(cell, solution=solution), id=cell.id, metadata=metadata
        )
    if cell.kind == "markdown":
        return nbformat.v4.new_markdown_cell(cell.source, id=cell.id, metadata=metadata)
    return nbformat.v4.new_code_cell(
        split_source(cell.source, solution=solution), id=cell.id, metadata=metadata
    )


def render_notebook(spec: NotebookSpec, *, solution: bool) -> str:
    """The notebook as the exact text written to disk (nbformat 4.5, validated)."""
    ids = [cell.id for cell in spec.cells]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{spec.filename}: duplicate cell ids")
    nb = nbformat.v4.new_notebook(
        cells=[render_cell(cell, solution=solution) for cell in spec.cells],
        metadata={
            "kernelspec": dict(KERNELSPEC),
            "language_info": {"name": "python"},
            "dlgrader": {"question": spec.question},
        },
    )
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def render_all() -> dict[str, str]:
    """Every generated file: path relative to the repository root -> its exact text."""
    files: dict[str, str] = {}
    for spec in question_specs():
        template = render_notebook(spec, solution=False)
        solution = render_notebook(spec, solution=True)
        for folder in TEMPLATE_DIRS:
            files[f"{folder}/{spec.filename}"] = template
        for folder in SOLUTION_DIRS:
            files[f"{folder}/{spec.filename}"] = solution
    return files


def stale_files(root: Path) -> list[str]:
    """Generated files under ``root`` that are missing or differ from this script's output."""
    stale = []
    for relative, text in render_all().items():
        path = root / relative
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            stale.append(relative)
    return stale


def write_all(root: Path) -> list[Path]:
    written = []
    for relative, text in render_all().items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help="repository root to write")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if any notebook is stale"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.root)
        for relative in stale:
            print(f"stale: {relative} (run python tools/make_notebooks.py)", file=sys.stderr)
        return 1 if stale else 0
    for path in write_all(args.root):
        print(path)
    return 0
