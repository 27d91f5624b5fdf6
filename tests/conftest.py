"""Shared fixtures: where the repository, the sample submissions and the shipped profiles are,
and the two fixture submissions graded for real once per session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from graders import sandbox
from graders.config import FIXTURE_DATA_ROOT, Limits, Profile, load_profiles
from graders.models import GradeReport
from graders.questions import load_questions
from graders.questions.api import QuestionSpec

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def fixture_submissions(repo_root: Path) -> Path:
    """``fixtures/submissions``: one folder per scenario (all_correct, blank, ...)."""
    return repo_root / "fixtures" / "submissions"


@pytest.fixture(scope="session")
def quick_profile() -> Profile:
    """The shipped ``quick`` profile (committed data slices, one epoch)."""
    return load_profiles().get("quick")


@pytest.fixture(scope="session")
def questions() -> tuple[QuestionSpec, ...]:
    """Every question of the assignment, in order."""
    return load_questions()


GradedSubmission = Callable[[str], tuple[GradeReport, Path]]
"""A fixture submission's name -> its report and the output folder holding its result folder."""


@pytest.fixture(scope="session")
def graded_submission(
    fixture_submissions: Path, tmp_path_factory: pytest.TempPathFactory
) -> GradedSubmission:
    """Grades ``fixtures/submissions/<name>`` with the quick profile and real kernels, once per
    session: the end-to-end and golden tests read the same run (all_correct trains Q3 and Q4,
    ~20 s here) instead of each paying for their own. Readers must not change its folder."""
    from graders.config import GradeOptions
    from graders.pipeline import grade

    done: dict[str, tuple[GradeReport, Path]] = {}

    def graded(name: str) -> tuple[GradeReport, Path]:
        if name not in done:
            out = tmp_path_factory.mktemp(f"graded-{name}")
            done[name] = grade(fixture_submissions / name, out, GradeOptions(profile="quick")), out
        return done[name]

    return graded


GradedScenario = Callable[[str, tuple[str, ...]], GradeReport]
"""A scenario's name and the questions to grade -> the full grader's quick-profile report."""


@pytest.fixture(scope="session")
def graded_scenario(
    fixture_submissions: Path, tmp_path_factory: pytest.TempPathFactory
) -> GradedScenario:
    """Grades ``fixtures/submissions/<name>`` (only the questions given) once per session: the
    scenario tests and the student kit's parity tests read the same run."""
    from graders.config import GradeOptions
    from graders.pipeline import grade

    done: dict[tuple[str, tuple[str, ...]], GradeReport] = {}

    def graded(name: str, only: tuple[str, ...]) -> GradeReport:
        if (name, only) not in done:
            out = tmp_path_factory.mktemp(f"scenario-{name}")
            options = GradeOptions(profile="quick", only=only)
            done[name, only] = grade(fixture_submissions / name, out, options)
        return done[name, only]

    return graded


@pytest.fixture(scope="session")
def student_kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The student kit, built as a zip and unpacked as a student gets it (once per session)."""
    import zipfile

    from graders.kit.build import FOLDER, build_kit

    folder = tmp_path_factory.mktemp("kit")
    archive = folder / "kit.zip"
    build_kit(archive, say=lambda _message: None)
    with zipfile.ZipFile(archive) as kit:
        kit.extractall(folder / "unpacked")
    return folder / "unpacked" / FOLDER


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-goldens``: rewrite tests/goldens/* instead of comparing with them."""
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/goldens/* from the current renderers instead of comparing with them",
    )


_PREPARED: list[sandbox.Sandbox] = []


def kernel_sandbox(scratch: Path, limits: Limits, *, device: str = "cpu") -> sandbox.Sandbox:
    """One kernel's sandbox as the pipeline makes it, in this machine's mode, on the slices;
    removed after the test that made it (``_prepared_sandboxes_removed``)."""
    plan = sandbox.choose(data_root=FIXTURE_DATA_ROOT)
    scratch.mkdir(parents=True, exist_ok=True)
    box = sandbox.prepare(
        plan=plan,
        question="qx",
        scratch=scratch,
        limits=limits,
        threads=1,
        device=device,
        data_root=FIXTURE_DATA_ROOT,
    )
    _PREPARED.append(box)
    return box


@pytest.fixture(autouse=True)
def _prepared_sandboxes_removed() -> Iterator[None]:
    """What ``kernel_sandbox`` made is cleaned up as the pipeline does it: pytest removes
    tmp_path but not a socket folder that a long tmp_path put in /tmp, nor a kernel uid's lock."""
    yield
    while _PREPARED:
        sandbox.cleanup(_PREPARED.pop())
