"""The renderers' Jinja set-up."""

from __future__ import annotations

import pytest


def test_templates_compile_once_per_process_and_again_when_their_source_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The renderers' compiled-template cache: a batch renders the same pages for every
    submission, compiled once; a template whose source changed is compiled anew, never served
    stale."""
    import jinja2

    from graders.render import templating

    sources = {"probe.txt.j2": "first {{ 1 + 1 }}"}
    monkeypatch.setattr(templating, "_load", lambda name: (sources[name], name, lambda: True))
    compiled: list[str] = []
    original = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: str, *args: object, **kwargs: object) -> object:
        compiled.append(source)
        return original(self, source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    assert templating.render("probe.txt.j2") == "first 2"
    assert templating.render("probe.txt.j2") == "first 2"
    assert compiled == ["first {{ 1 + 1 }}"]
    sources["probe.txt.j2"] = "second {{ 2 + 2 }}"
    assert templating.render("probe.txt.j2") == "second 4"
    assert compiled == ["first {{ 1 + 1 }}", "second {{ 2 + 2 }}"]


def test_every_report_template_is_compiled_in_the_background_once_grading_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``precompile_in_background`` compiles every template (includes too) off the main
    thread, once; rendering afterwards compiles nothing."""
    import threading

    import jinja2

    from graders.render import templating

    monkeypatch.setattr(templating, "_COMPILED", templating._CompiledOnce())
    monkeypatch.setattr(templating, "_precompiling", None)
    compiled: list[tuple[str | None, str]] = []
    original = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: str, name: str | None = None, *a, **k):  # type: ignore[no-untyped-def]
        compiled.append((name, threading.current_thread().name))
        return original(self, source, name, *a, **k)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    templating.precompile_in_background()
    templating.precompile_in_background()  # once per process
    templating._finish_precompiling()
    names = {name for name, _ in compiled}
    assert {"feedback.html.j2", "feedback.md.j2", "_question.html.j2"} <= names
    assert len(compiled) == len(names), "each template once"
    assert {thread for _, thread in compiled} == {"dlgrade-templates"}
    before = len(compiled)
    environment = templating.environment()
    environment.get_template("feedback.html.j2")
    environment.get_template("_question.html.j2")
    assert len(compiled) == before
