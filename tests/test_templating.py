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


def test_the_renderers_are_imported_while_the_kernels_boot_not_before() -> None:
    """``dlgrade grade`` starts its kernels before it imports Jinja and the renderers
    (``graders.render.warm`` does, on a thread, while the kernels boot): a fresh process that
    imports the command has neither, and the warm-up brings both."""
    import subprocess
    import sys

    script = (
        "import sys, graders.cli\n"
        "from graders.render import warm\n"
        "early = [m for m in ('jinja2', 'markdown_it', 'graders.render.templating') "
        "if m in sys.modules]\n"
        "warm.in_background(); warm._thread.join()\n"
        "from graders.render import templating\n"
        "templating._finish_precompiling()\n"
        "print(repr(early), 'graders.render.write' in sys.modules, len(templating._COMPILED._code))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    early, write, compiled = done.stdout.strip().rsplit(" ", 2)
    assert early == "[]", f"imported before any kernel started: {early}"
    assert write == "True" and int(compiled) > 5
