"""Templating substitutes references (typed when whole), never evaluates them."""

from __future__ import annotations

import pytest

from automation.templating import TemplateError, iter_references, parse_reference, render


def test_whole_reference_keeps_type() -> None:
    assert render("${count}", {"count": 3}, {}) == 3
    assert render({"a": ["${flag}"]}, {"flag": True}, {}) == {"a": [True]}


def test_interpolation_and_step_outputs() -> None:
    outputs = {"probe": {"json": {"pid": 42, "items": ["x", "y"]}}}
    assert render("pid=${steps.probe.output.json.pid}", {}, outputs) == "pid=42"
    assert render("${steps.probe.output.json.items.1}", {}, outputs) == "y"
    assert render("${steps.probe.output}", {}, outputs) == outputs["probe"]


def test_escape_writes_a_literal() -> None:
    assert render("cost $${HOME}", {}, {}) == "cost ${HOME}"


def test_text_is_never_evaluated() -> None:
    with pytest.raises(TemplateError):
        render("${__import__('os').system('true')}", {}, {})
    assert render("${x}", {"x": "__import__('os')"}, {}) == "__import__('os')"


def test_missing_references_fail_clearly() -> None:
    with pytest.raises(TemplateError, match="input 'nope' was not given"):
        render("${nope}", {}, {})
    with pytest.raises(TemplateError, match="has no field 'json.missing'"):
        render("${steps.a.output.json.missing}", {}, {"a": {"json": {}}})


def test_iter_references_reports_paths() -> None:
    found = list(iter_references({"url": "http://${host}/x", "list": ["${steps.a.output.b}"]}))
    assert [(path, ref.input or ref.step) for path, ref in found] == [(".url", "host"), (".list[0]", "a")]


def test_malformed_step_reference() -> None:
    with pytest.raises(TemplateError, match="steps.STEP.output"):
        parse_reference("steps.a.result")
