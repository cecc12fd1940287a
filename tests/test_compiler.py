"""The canvas compiler: chains, groups and chords, inspected without a broker."""

from __future__ import annotations

from typing import Any

from celery import chord, group
from celery.canvas import Signature
from celery.canvas import _chain as chain

from automation.compiler import compile_workflow, plan_canvas, step_task_id


def act(
    name: str, depends_on: list[str], timeout: int = 30, action_type: str = "control.wait"
) -> dict[str, Any]:
    return {
        "name": name,
        "action_type": action_type,
        "parameters": {},
        "timeout_seconds": timeout,
        "retry_attempts": 1,
        "depends_on": depends_on,
    }


def names(sig: Signature) -> Any:
    if isinstance(sig, chord):
        return ("chord", [names(s) for s in sig.tasks], names(sig.body))
    if isinstance(sig, chain):
        return ("chain", [names(s) for s in sig.tasks])
    if isinstance(sig, group):
        return ("group", [names(s) for s in sig.tasks])
    return sig.options["task_id"].partition(":")[2]


def test_sequence_compiles_to_a_chain() -> None:
    doc = {"actions": [act("a", []), act("b", ["a"]), act("c", ["b"])]}
    sig = compile_workflow(doc, run_id="r1", queue="high")
    assert names(sig) == ("chain", ["a", "b", "c"])
    first = sig.tasks[0]
    assert first.task == "automation.action.control.wait"
    assert first.options["queue"] == "high"
    assert first.options["task_id"] == step_task_id("r1", "a") == "r1:a"
    assert first.options["time_limit"] == 30
    assert 20 <= first.options["soft_time_limit"] < 30


def test_a_step_with_the_default_time_limit_leaves_it_to_its_task_class() -> None:
    from automation.actions.task import ActionTask

    doc = {"actions": [act("a", [], timeout=300), act("b", ["a"], timeout=600)]}
    sig = compile_workflow(doc, run_id="r1", queue="default")
    first, second = sig.tasks
    assert "time_limit" not in first.options and "soft_time_limit" not in first.options
    # What the worker applies to the first (every action task class derives from ActionTask).
    assert (ActionTask.time_limit, ActionTask.soft_time_limit) == (300, 285)
    assert (second.options["time_limit"], second.options["soft_time_limit"]) == (600, 585)


def test_diamond_compiles_to_chain_with_a_chord() -> None:
    doc = {"actions": [act("a", []), act("b", ["a"]), act("c", ["a"]), act("d", ["b", "c"])]}
    sig = compile_workflow(doc, run_id="r1", queue="default")
    assert isinstance(sig, chain)
    assert names(sig) == ("chain", ["a", ("chord", ["b", "c"], "d")])
    join = sig.tasks[1]
    assert isinstance(join, chord)
    assert join.body.options["task_id"] == step_task_id("r1", "d")


def test_independent_roots_form_a_group() -> None:
    doc = {"actions": [act("x", []), act("y", [])]}
    assert names(compile_workflow(doc, run_id="r", queue="default")) == ("group", ["x", "y"])


def test_parallel_chains_joined() -> None:
    doc = {
        "actions": [
            act("a1", []),
            act("a2", ["a1"]),
            act("b1", []),
            act("b2", ["b1"]),
            act("j", ["a2", "b2"]),
        ]
    }
    assert plan_canvas(doc["actions"]) == (
        "chain",
        [("group", [("chain", ["a1", "a2"]), ("chain", ["b1", "b2"])]), "j"],
    )


def test_non_series_parallel_dag_keeps_every_dependency() -> None:
    # a->c, a->d, b->d : not series-parallel; every step must still come after its dependencies.
    doc = {"actions": [act("a", []), act("b", []), act("c", ["a"]), act("d", ["a", "b"])]}
    shape = plan_canvas(doc["actions"])

    order: list[set[str]] = []

    def levels(node: Any) -> list[set[str]]:
        if isinstance(node, str):
            return [{node}]
        kind, items = node
        if kind == "chain":
            return [s for item in items for s in levels(item)]
        merged: set[str] = set()
        for item in items:
            merged |= {n for s in levels(item) for n in s}
        return [merged]

    order = levels(shape)
    position = {n: i for i, level in enumerate(order) for n in level}
    for a in doc["actions"]:
        for dep in a["depends_on"]:
            assert position[dep] < position[a["name"]], (shape, a["name"], dep)


def test_long_chain_does_not_recurse() -> None:
    actions = [act("s0", [])] + [act(f"s{i}", [f"s{i - 1}"]) for i in range(1, 2000)]
    shape = plan_canvas(actions)
    assert shape[0] == "chain" and len(shape[1]) == 2000


def reference_plan(actions: list[dict[str, Any]]) -> Any:
    """The planner before chains were peeled in linear time: every step of a chain recomputed the
    components and the sources. The fast path must give exactly its shapes."""
    from automation.compiler import _components

    position = {a["name"]: i for i, a in enumerate(actions)}
    deps = {a["name"]: list(a["depends_on"]) for a in actions}

    def build(nodes: set[str]) -> Any:
        head: list[Any] = []
        tail: list[Any] = []
        nodes = set(nodes)
        while nodes:
            if len(nodes) == 1:
                head.append(nodes.pop())
                break
            components = _components(nodes, deps)
            if len(components) > 1:
                components.sort(key=lambda c: min(position[n] for n in c))
                head.append(("group", [build(c) for c in components]))
                break
            sources = [n for n in nodes if not any(d in nodes for d in deps[n])]
            if len(sources) == 1:
                head.append(sources[0])
                nodes.discard(sources[0])
                continue
            sinks = [n for n in nodes if not any(n in deps[m] for m in nodes)]
            if len(sinks) == 1:
                tail.append(sinks[0])
                nodes.discard(sinks[0])
                continue
            head.append(build(set(sorted(sources, key=position.__getitem__))))
            nodes -= set(sources)
        items = head + tail[::-1]
        return items[0] if len(items) == 1 else ("chain", items)

    return build(set(position))


def test_the_planner_gives_the_reference_shapes_on_random_workflows() -> None:
    import random

    rng = random.Random(20261130)
    shapes = set()
    for _ in range(400):
        size = rng.randint(1, 30)
        chainy = rng.random()  # from mostly parallel to mostly sequential
        actions = []
        for i in range(size):
            if i and rng.random() < chainy:
                needs = [f"s{i - 1}"]  # the previous step: long chains
            else:
                needs = [f"s{j}" for j in range(i) if rng.random() < 2 / (i + 1)]
            actions.append(act(f"s{i}", needs))
        shape = plan_canvas(actions)
        assert shape == reference_plan(actions), actions
        shapes.add(repr(shape))
    assert len(shapes) > 100  # the workflows were varied


def test_wide_fan_out_join() -> None:
    actions = (
        [act("start", [])]
        + [act(f"b{i}", ["start"]) for i in range(1000)]
        + [act("join", [f"b{i}" for i in range(1000)])]
    )
    sig = compile_workflow({"actions": actions}, run_id="r", queue="default")
    assert isinstance(sig.tasks[1], chord)
    assert len(sig.tasks[1].tasks) == 1000


def _steps(sig: Signature) -> list[Signature]:
    if isinstance(sig, chord):
        return [s for part in (*sig.tasks, sig.body) for s in _steps(part)]
    if isinstance(sig, chain | group):
        return [s for part in sig.tasks for s in _steps(part)]
    return [sig]


def test_a_chord_header_keeps_results_only_where_celery_joins_it_from_them(monkeypatch: Any) -> None:
    from celery.backends.cache import CacheBackend
    from celery.backends.redis import RedisBackend

    from automation import compiler

    flat = {"actions": [act("a", []), act("b", []), act("j", ["a", "b"])]}
    nested = {
        "actions": [act("a", []), act("b", ["a"]), act("c", ["a"]), act("d", []), act("e", ["b", "c", "d"])]
    }

    def kept(doc: dict[str, Any]) -> set[str]:
        sig = compile_workflow(doc, run_id="r", queue="default")
        steps = _steps(sig)
        return {s.options["task_id"].split(":")[1] for s in steps if s.options.get("ignore_result") is False}

    redis = RedisBackend(app=compiler.app, url="redis://127.0.0.1:6379/0")
    monkeypatch.setattr(type(compiler.app), "backend", property(lambda _: redis))
    assert kept(flat) == set(), "the Redis backend joins a flat header from its own list"
    assert kept(nested) == {"a", "b", "c", "d"}, "a header holding a group is joined from the results"
    cache = CacheBackend(app=compiler.app, backend="memory")
    monkeypatch.setattr(type(compiler.app), "backend", property(lambda _: cache))
    assert kept(flat) == {"a", "b"}, "any other backend joins every header from the results"
