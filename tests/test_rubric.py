"""The rubric and the checks the questions declare must agree, and totals come from the rubric."""

from __future__ import annotations

from pathlib import Path

import pytest

from graders.errors import ConfigError
from graders.questions import load_questions
from graders.rubric import load_rubric, validate


def test_every_check_has_points_and_every_entry_a_check() -> None:
    declared = {q.id: tuple(c.id for c in q.checks) for q in load_questions()}
    assert all(declared.values()), f"a question declares no checks: {declared}"
    validate(load_rubric(), declared)


def test_check_ids_are_unique_and_prefixed_by_their_question() -> None:
    for q in load_questions():
        ids = [c.id for c in q.checks]
        assert len(ids) == len(set(ids))
        assert all(i.startswith(q.id + ".") for i in ids), ids


def test_free_response_ids_are_in_the_rubric() -> None:
    rubric = load_rubric()
    for q in load_questions():
        assert {m.id for m in rubric.manual.get(q.id, ())} == set(q.free_response_ids)


def test_a_check_without_points_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "rubric.toml"
    path.write_text("[q1.tests]\nstep_function = { points = 1 }\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"checks without points \['q1\.box_edges'\]"):
        validate(load_rubric(path), {"q1": ("q1.step_function", "q1.box_edges")})


def test_malformed_rubric_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rubric.toml"
    path.write_text("[q1.tests]\nstep_function = { pts = 1 }\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rubric\.toml"):
        load_rubric(path)
