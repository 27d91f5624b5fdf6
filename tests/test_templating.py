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
