"""Where student code runs: a default-deny bubblewrap sandbox per kernel, or a stated fallback.

``confinement.choose`` decides once per process which mode this machine allows (bubblewrap for
root and ordinary users alike; an unprivileged sandbox user; or, only when told, nothing;
``choose_ahead`` lets kernels launch while bubblewrap's self-test runs),
``workspace.prepare`` makes one kernel's folders and launch plan, ``layout`` lists what the
kernel's file system holds, ``cgroups`` caps the whole kernel tree, ``results_file`` is how
the grader reads what the kernel wrote, ``users`` gives a root grader's kernels their own
uids, and ``launch.py`` (run as a script) starts the kernel.
``docs/security.md`` maps each attack to the mechanism that stops it and the test that shows it.
"""

import argparse

from graders.sandbox.confinement import PlanChoice, choose, choose_ahead, describe
from graders.sandbox.results_file import ResultsFile
from graders.sandbox.workspace import (
    KernelPaths,
    Sandbox,
    SandboxPlan,
    cleanup,
    deliver,
    prepare,
    thread_share,
)

__all__ = [
    "KernelPaths",
    "PlanChoice",
    "ResultsFile",
    "Sandbox",
    "SandboxPlan",
    "add_arguments",
    "choose",
    "choose_ahead",
    "cleanup",
    "deliver",
    "describe",
    "prepare",
    "thread_share",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--sandbox`` and ``--allow-unconfined``, the same for every command that runs notebooks."""
    parser.add_argument(
        "--sandbox",
        default=None,
        choices=["auto", "bubblewrap", "user", "unconfined"],
        help="how student code is confined (default auto: bubblewrap, else the sandbox user; "
        "also $DLGRADE_SANDBOX)",
    )
    parser.add_argument(
        "--allow-unconfined",
        action="store_true",
        help="run student code even where nothing can confine it (trusted notebooks only)",
    )
