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


def test_the_kits_hidden_summary_counts_like_hidden_entries(tmp_path: Path) -> None:
    """A ``[q.hidden]`` table (the student kit's rubric) stands for the hidden entries it
    replaces: the same count, points and question total as the grader's own rubric."""
    full = load_rubric()
    path = tmp_path / "rubric.toml"
    path.write_text(
        "[q1.tests]\nstep_function = { points = 0.5 }\n\n[q1.hidden]\ncount = 2\npoints = 3.5\n",
        encoding="utf-8",
    )
    kit = load_rubric(path)
    assert (kit.hidden_tests("q1").count, kit.hidden_tests("q1").points) == (2, 3.5)
    assert kit.question_points("q1") == 4.0
    assert kit.hidden_tests("q2").count == 0
    assert full.hidden_tests("q1").count == 1 and full.hidden_tests("q4").count == 0
    path.write_text("[q1.hidden]\ncount = 'two'\npoints = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rubric\.toml"):
        load_rubric(path)


def test_every_question_is_split_from_its_reference_side() -> None:
    """The grader joins each question's reference side to its public spec (the kit ships the
    spec alone), and a public spec holds nothing of the reference side: no expectations, no
    calibrated thresholds or bands, no part of ``dlgrade reference``."""
    from graders.questions import has_reference_side

    split = {
        q.id
        for q in load_questions()
        if has_reference_side(f"graders.questions.{q.package_dir.name}")
    }
    assert split == {q.id for q in load_questions()} == {"q1", "q2", "q3", "q4"}
    for public in load_questions(with_reference=False):
        assert not (public.expectations or public.thresholds or public.bands), public.id
        assert public.reference_report is None, public.id
