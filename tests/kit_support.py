"""Running the student kit as a student would: in a Python that sees the kit and nothing else.

The test environment's site-packages hold an editable install of the whole grader (and so of
``reference/``); a kit run there could import what the kit lacks and still pass. So the kit
runs with ``python -S -P`` (no site-packages processing, hence no editable finder; no current
folder on the path) and a ``PYTHONPATH`` of the kit folder and the plain site-packages
directory (numpy, nbclient, ...). Whatever the kit imports must come from the kit.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

SITE_PACKAGES = sysconfig.get_paths()["purelib"]


def kit_env(kit: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLGRADE")}
    env["PYTHONPATH"] = os.pathsep.join((str(kit), SITE_PACKAGES))
    return env


@functools.cache
def offline_prefix() -> tuple[str, ...] | None:
    """A command prefix that runs a process without any network (a network namespace of its
    own, only a loopback that is down), or None where this machine cannot make one."""
    binary = shutil.which("unshare")
    if binary is None:
        return None
    prefix = (binary, "-n") if os.geteuid() == 0 else (binary, "-rn")
    works = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if works.returncode == 0 else None


def run_kit(
    kit: Path, *args: str, cwd: Path | None = None, timeout: float = 900, offline: bool = False
) -> subprocess.CompletedProcess[str]:
    """``dlgrade-check ARGS`` from the kit, isolated from the checkout (and, ``offline``, from
    the network: the caller skips where ``offline_prefix()`` is None)."""
    prefix = offline_prefix() if offline else ()
    assert prefix is not None, "no network namespace here"
    return subprocess.run(
        [*prefix, sys.executable, "-S", "-P", "-m", "graders.selfcheck", *args],
        env=kit_env(kit),
        cwd=cwd or kit,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def kit_python(kit: Path, code: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``code`` run in the kit's isolated Python."""
    return subprocess.run(
        [sys.executable, "-S", "-P", "-c", code],
        env=kit_env(kit),
        cwd=kit,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


PublicResults = dict[str, tuple[str, float, float]]
"""Test id -> (status, score, max score) of the visible tests."""


def public_results(report: dict[str, Any], questions: tuple[str, ...]) -> PublicResults:
    """The visible tests of ``questions`` in a result.json (or a report made plain)."""
    return {
        c["id"]: (c["status"], c["score"], c["max_score"])
        for q in report["questions"]
        if q["question"] in questions
        for c in q["checks"]
        if c["visibility"] == "visible"
    }


def kit_report(kit: Path, submission: Path, questions: tuple[str, ...], out: Path) -> Any:
    """The kit's result.json for ``submission``, checking only ``questions``."""
    args = [str(submission), "--out", str(out)]
    for q in questions:
        args += ["--question", q]
    done = run_kit(kit, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / submission.name / "result.json").read_text(encoding="utf-8"))
