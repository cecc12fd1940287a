"""The run page's pure parts: the DAG layout, its SVG, and the diff of two definition versions."""

from __future__ import annotations

import re

import pytest

from automation.secrets import MASK
from automation.webui.dag import LayoutError, layers_of, layout_dag
from automation.webui.diff import definition_diff
from automation.webui.svg import STATUS_COLOURS, render_svg

DIAMOND = (
    ["fetch", "left", "right", "merge"],
    {"left": ["fetch"], "right": ["fetch"], "merge": ["left", "right"]},
)


def test_layers_follow_the_longest_path_from_a_root() -> None:
    steps = ["a", "b", "c", "d"]
    # d depends on a directly and through b -> c: it sits after c, not beside b
    assert layers_of(steps, {"b": ["a"], "c": ["b"], "d": ["a", "c"]}) == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_a_diamond_is_three_columns_with_every_edge_left_to_right() -> None:
    layout = layout_dag(*DIAMOND)
    columns = {n.name: n.layer for n in layout.nodes}
    assert columns == {"fetch": 0, "left": 1, "right": 1, "merge": 2}
    assert len(layout.edges) == 4
    for edge in layout.edges:
        assert edge.x1 < edge.x2
        assert edge.x1 == layout.node(edge.source).x + layout.node(edge.source).width
    left, right = layout.node("left"), layout.node("right")
    assert left.x == right.x and left.y < right.y
    # the lone nodes of a column are centred on the two of the middle one
    assert layout.node("fetch").y + layout.node("fetch").height // 2 == (left.y + right.y + left.height) // 2


def test_no_two_boxes_overlap_and_all_fit_in_the_drawing() -> None:
    steps = [f"s{i}" for i in range(12)]
    deps = {f"s{i}": [f"s{i // 3}"] for i in range(1, 12)}
    layout = layout_dag(steps, deps)
    for node in layout.nodes:
        assert 0 <= node.x and node.x + node.width <= layout.width
        assert 0 <= node.y and node.y + node.height <= layout.height
    for a in layout.nodes:
        for b in layout.nodes:
            if a is not b:
                apart_x = a.x + a.width <= b.x or b.x + b.width <= a.x
                apart = apart_x or a.y + a.height <= b.y or b.y + b.height <= a.y
                assert apart, (a, b)


def test_children_are_ordered_by_where_their_parents_sit() -> None:
    # declared crosswise: y2 depends on the upper root, y1 on the lower one; the layout uncrosses them
    layout = layout_dag(["x1", "x2", "y1", "y2"], {"y1": ["x2"], "y2": ["x1"]})
    assert layout.node("y2").y < layout.node("y1").y


def test_cycles_and_unknown_dependencies_are_refused() -> None:
    with pytest.raises(LayoutError, match="cycle"):
        layout_dag(["a", "b"], {"a": ["b"], "b": ["a"]})
    with pytest.raises(LayoutError, match="unknown step 'zz'"):
        layout_dag(["a"], {"a": ["zz"]})


def test_the_svg_colours_each_step_by_status_and_escapes_names() -> None:
    steps = ["fetch", "<b>left</b>", "right", "merge"]
    deps = {"<b>left</b>": ["fetch"], "right": ["fetch"], "merge": ["<b>left</b>", "right"]}
    statuses = {"fetch": "succeeded", "<b>left</b>": "failed", "right": "succeeded", "merge": "skipped"}
    svg = render_svg(layout_dag(steps, deps), statuses, {"fetch": 1, "<b>left</b>": 3})
    assert "<b>" not in svg and "&lt;b&gt;left&lt;/b&gt;" in svg
    fills = re.findall(r'<rect [^>]*fill="(#[0-9a-f]{6})"', svg)
    assert sorted(fills) == sorted(STATUS_COLOURS[s] for s in statuses.values())
    assert "failed · 3 attempts" in svg and "succeeded · 1 attempt<" in svg
    assert svg.count('class="edge"') == 4
    assert "http://" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_diff_shows_what_changed_and_never_a_secret() -> None:
    old = {"name": "w", "actions": [{"name": "a", "action_type": "http.get", "parameters": {"timeout": 5}}]}
    new = {
        "name": "w",
        "actions": [
            {"name": "a", "action_type": "http.get", "parameters": {"timeout": 9, "api_key": "sekrit-1"}},
        ],
    }
    lines = definition_diff(old, new, old_label="v1", new_label="v2")
    added = [line.text for line in lines if line.kind == "added"]
    removed = [line.text for line in lines if line.kind == "removed"]
    assert any('"timeout": 9' in t for t in added) and any('"timeout": 5' in t for t in removed)
    assert any(MASK in t for t in added)
    assert not any("sekrit" in line.text for line in lines)
    assert lines[0].kind == "hunk"
    assert definition_diff(old, dict(old), old_label="v1", new_label="v2") == []
