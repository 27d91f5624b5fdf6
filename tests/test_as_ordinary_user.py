"""The grader run by an ordinary user (a TA on a laptop): the same tests, the same guarantees.

CI runs as root; most TAs do not. So, when this suite runs as root, it creates an unprivileged
account (``dlgrade-ta``) and runs the end-to-end grading tests, the hostile fixtures and the
containment tests again as that account, in a separate pytest (``tests/ordinary_user.py`` makes
this project's Python readable to it). Each group is one test here: it fails with the inner
run's failures, and it checks the inner run really was the account and really graded.
Run as an ordinary user already, these tests skip: the whole suite is then the proof.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from graders.sandbox import layout

pytestmark = [pytest.mark.kernel, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "dlgrade-ta"
GROUPS: dict[str, list[str]] = {
    "grading": [
        "tests/test_grade_e2e.py",
        "tests/test_engine_kernel.py",
        "tests/test_scenarios.py",
        "-k",
        "not test_scenario_scores_and_messages or blank or q1_step_ge or q2_xavier_wrong "
        "or q4_dsigmoid_on_activation",
    ],
    "hostile": ["tests/test_hostile.py"],
    "containment": ["tests/test_containment.py"],
}
"""Inner pytest arguments per group: a few scenarios rather than all (each trains)."""


def _account() -> pwd.struct_passwd:
    """The unprivileged account, created the first time (root only)."""
    try:
        return pwd.getpwnam(ACCOUNT)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/sh", ACCOUNT],
            capture_output=True,
            text=True,
        )
        try:  # another test worker may have made it in the meantime (useradd then fails)
            return pwd.getpwnam(ACCOUNT)
        except KeyError:
            raise AssertionError(f"useradd {ACCOUNT} failed: {made.stderr.strip()}") from None


def _needed_paths() -> list[Path]:
    """What the account must read: the project (tests, fixtures, data) and its Python."""
    data = REPO / "data"
    return [REPO, *([data.resolve()] if data.exists() else []), *layout.python_trees()]


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_the_tests_pass_as_an_ordinary_user(group: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("this suite already runs as an ordinary user")
    entry = _account()
    # pytest's own folders are root's (0700): the account gets one it may write.
    shared = Path(tempfile.mkdtemp(prefix=f"dlgrade-as-user-{group}-"))
    shared.chmod(0o777)
    report = shared / "junit.xml"
    inner = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        *GROUPS[group],
    ]
    env = {
        **os.environ,
        "DLGRADE_EXPOSE": os.pathsep.join(str(p) for p in _needed_paths()),
        "DLGRADE_TEST_EXPECT_UID": str(entry.pw_uid),
    }
    harness = [sys.executable, str(REPO / "tests" / "ordinary_user.py"), ACCOUNT, "--"]
    try:
        done = subprocess.run(
            ["unshare", "--mount", *harness, *inner],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=2400,
        )
        tail = (done.stdout + done.stderr)[-6000:]
        assert done.returncode == 0, f"as {ACCOUNT}, pytest {' '.join(GROUPS[group])}:\n{tail}"
        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        ran = int(suite.get("tests", 0)) - int(suite.get("skipped", 0))
        failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        assert ran > 0 and failed == 0, tail
        assert report.stat().st_uid == entry.pw_uid, "the inner run was not the ordinary account"
    finally:
        shutil.rmtree(shared, ignore_errors=True)
