"""The exception tree: one exit code per kind, drawn completely, every kernel failure mapped."""

from __future__ import annotations

import inspect

import nbclient.exceptions

from graders import errors, execute

KINDS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.GraderError)
]


def test_every_kind_of_error_has_its_own_exit_code():
    kinds = [cls for cls in KINDS if cls.__bases__ == (errors.GraderError,)]
    codes = [cls.exit_code for cls in kinds]
    assert len(set(codes)) == len(codes), {cls.__name__: cls.exit_code for cls in kinds}
    # 0 is success, 1 the root's own code, 2 argparse's usage error: no kind may reuse them.
    assert not {0, 1, 2} & set(codes)
    for cls in KINDS:  # a subclass exits as its kind does
        assert cls.exit_code in (*codes, 1)


def test_the_docstring_draws_every_error_class():
    doc = errors.__doc__ or ""
    missing = [cls.__name__ for cls in KINDS if cls.__name__ not in doc]
    assert not missing, f"add to the tree in graders/errors.py: {missing}"


def test_every_nbclient_failure_is_handled_by_the_executor():
    """nbclient's exceptions that end a cell or the kernel must each be caught by name in
    execute.py, so a kernel failure is a recorded outcome and never a grader traceback.
    CellExecutionError is only raised with allow_errors=False, which the grader never uses;
    CellControlSignal and CellExecutionComplete are nbclient's internal signals."""
    internal = {"CellControlSignal", "CellExecutionComplete"}
    never_raised = {"CellExecutionError"}
    failures = {
        name
        for name, cls in inspect.getmembers(nbclient.exceptions, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__ == nbclient.exceptions.__name__
    }
    source = inspect.getsource(execute)
    for name in sorted(failures - internal - never_raised):
        assert f"except {name}" in source or f"{name}," in source, name
    assert "allow_errors=True" in source
