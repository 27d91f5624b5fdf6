"""Shared fixtures: where the repository, the sample submissions and the shipped profiles are."""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.config import Profile, load_profiles
from graders.questions import QuestionSpec, load_questions

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


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-goldens``: rewrite tests/goldens/* instead of comparing with them."""
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite tests/goldens/* from the current renderers instead of comparing with them",
    )
