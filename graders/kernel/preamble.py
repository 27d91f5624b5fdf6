"""The grader's first cell in every kernel: the notebook, seeds, threads, the course's code,
snapshots.

Run as source before the student's first cell (``graders/inject.py`` appends the call with the
grading's values). The student's notebook is copied into the working folder (the kernel was
started before the submission was read, ``sandbox.deliver``); seeds make a rerun probe and
train the same; the thread share keeps two
kernels from fighting over the cores (an oversubscribed torch ran 30x slower); the
compatibility layer (``compat.py``) lets notebooks written for the course's starter code run
here as written; and names such as Q4's ``weights`` are copied the first time a cell defines
them, so the initial values can be checked after training replaced them.
"""

from collections.abc import Mapping, Sequence
from typing import Any


def preamble(
    seed: int,
    threads: int,
    uses_torch: bool,
    names: Sequence[str],
    snapshots_name: str,
    compat: Mapping[str, str] | None = None,
    copies: Mapping[str, Any] | None = None,
) -> None:
    import contextlib
    import copy
    import os
    import random
    import shutil

    if copies is not None:  # the student's notebook, in its working folder as in Jupyter
        for name in copies["names"]:
            shutil.copyfile(os.path.join(copies["from"], name), name)

    import numpy

    random.seed(seed)
    numpy.random.seed(seed)
    if uses_torch:
        import torch

        torch.manual_seed(seed)
        torch.set_num_threads(threads)
    shell = get_ipython()  # type: ignore[name-defined]  # noqa: F821  (IPython's, in the kernel)
    if compat is not None:  # the course's starter code as written (graders/kernel/compat.py)
        layer: dict[str, Any] = {"__name__": "dlgrader_compat"}
        exec(compile(compat["source"], "<dlgrader compat>", "exec"), layer)
        layer["install"](shell, compat["data_root"], compat["device"])
    snapshots: dict[str, Any] = {}

    def keep_first(result: object = None) -> None:
        for name in names:
            if name not in snapshots and name in shell.user_ns:
                with contextlib.suppress(Exception):  # not copyable: no snapshot
                    snapshots[name] = copy.deepcopy(shell.user_ns[name])

    if names:
        shell.events.register("post_run_cell", keep_first)
    shell.user_ns[snapshots_name] = snapshots
