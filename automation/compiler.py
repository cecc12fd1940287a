"""Compiling a stored workflow document into a Celery canvas: chains, groups and chords.

A sequence becomes a chain, independent branches a group, and a group followed by a step a chord. A DAG
that is not series-parallel is peeled level by level: every dependency still holds, a step may only
wait a little longer than strictly needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import chain, chord, group
from celery.backends.redis import RedisBackend
from celery.canvas import Signature, _chain

from automation.celery import app
from automation.delivery import (
    DEFAULT_QUEUE,
    TASK_TIME_LIMIT,
    action_task_name,
    soft_time_limit,
    step_task_id,
)


def _components(nodes: set[str], deps: Mapping[str, list[str]]) -> list[set[str]]:
    neighbours: dict[str, set[str]] = {n: set() for n in nodes}
    for node in nodes:
        for dep in deps[node]:
            if dep in nodes:
                neighbours[node].add(dep)
                neighbours[dep].add(node)
    seen: set[str] = set()
    found = []
    for start in nodes:
        if start in seen:
            continue
        component = {start}
        frontier = [start]
        while frontier:
            for other in neighbours[frontier.pop()]:
                if other not in component:
                    component.add(other)
                    frontier.append(other)
        seen |= component
        found.append(component)
    return found


def plan_canvas(actions: list[Mapping[str, Any]]) -> Any:
    """The canvas shape as nested tuples: ("chain", [...]), ("group", [...]) or a step name."""
    position = {a["name"]: i for i, a in enumerate(actions)}
    deps = {a["name"]: list(a["depends_on"]) for a in actions}
    dependents: dict[str, list[str]] = {name: [] for name in position}
    for name, needs in deps.items():
        for dep in needs:
            if dep in dependents:
                dependents[dep].append(name)

    def ordered(names: list[str]) -> list[str]:
        return sorted(names, key=position.__getitem__)

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
                # While the one source has one dependent, what remains once it is peeled is still one
                # component (the source was a leaf of it) whose one source is that dependent (nothing
                # else could have waited for the source only): the general case would find exactly
                # that again. A chain costs linear time, not quadratic.
                current = sources[0]
                while True:
                    head.append(current)
                    nodes.discard(current)
                    after = [m for m in dependents[current] if m in nodes]
                    if len(after) != 1 or len(nodes) == 1:
                        break
                    current = after[0]
                continue
            sinks = [n for n in nodes if not any(n in deps[m] for m in nodes)]
            if len(sinks) == 1:
                tail.append(sinks[0])
                nodes.discard(sinks[0])
                continue
            head.append(build(set(ordered(sources))))
            nodes -= set(sources)
        items = head + tail[::-1]
        return items[0] if len(items) == 1 else ("chain", items)

    return build(set(position))


def _ends_in_group(sig: Signature) -> bool:
    if isinstance(sig, group):
        return True
    if isinstance(sig, chord):  # a chord stands for its body: a group body freezes to a GroupResult
        return _ends_in_group(sig.body)
    return isinstance(sig, _chain) and _ends_in_group(sig.tasks[-1])


def _keep_results(sig: Signature) -> None:
    """Step tasks are `ignore_result`; these steps' results are stored after all (see `compile_workflow`)."""
    if isinstance(sig, chord):
        for part in (*sig.tasks, sig.body):
            _keep_results(part)
    elif isinstance(sig, group | _chain):
        for part in sig.tasks:
            _keep_results(part)
    else:
        sig.options["ignore_result"] = False


def _joined_from_results(header: group) -> bool:
    """Whether Celery joins this chord header by reading its tasks' results from the result backend; its
    steps then store their results, or the join waits until the soft time limit. The Redis backend joins
    from a list the header tasks append to, except a header holding a group (a branch ending in parallel
    steps: RedisBackend.apply_chord saves it as a GroupResult and joins it from the results); every other
    backend (the embedded store's cache, a database) always joins from the results."""
    if not isinstance(app.backend, RedisBackend):
        return True
    return any(_ends_in_group(task) for task in header.tasks)


def compile_workflow(
    document: Mapping[str, Any], *, run_id: str, queue: str, generation: int = 0
) -> Signature:
    """Build the Celery signature that runs every step of `document` for run `run_id` on `queue`.

    `generation` counts the times recovery sent the run again; a step's guard retires messages of an
    older generation than its run's.
    """
    by_name = {a["name"]: a for a in document["actions"]}

    def step_signature(name: str) -> Signature:
        act = by_name[name]
        timeout = act["timeout_seconds"]
        # Every hop of a chain re-sends the rest of it: a signature carries only what the task id (run and
        # step), the task class and Celery's default queue do not already say.
        options: dict[str, Any] = {"task_id": step_task_id(run_id, name)}
        if timeout != TASK_TIME_LIMIT:  # the task class's own limits otherwise (automation/actions/task.py)
            options.update(soft_time_limit=soft_time_limit(timeout), time_limit=timeout)
        if queue != DEFAULT_QUEUE:
            options["queue"] = queue
        return Signature(
            action_task_name(act["action_type"]),
            app=app,
            kwargs={"gen": generation} if generation else {},
            options=options,
        )

    def to_canvas(shape: Any) -> Signature:
        if isinstance(shape, str):
            return step_signature(shape)
        kind, items = shape
        if kind == "group":
            return group([to_canvas(item) for item in items], app=app)
        parts = [to_canvas(item) for item in items]
        merged: list[Signature] = []
        i = 0
        while i < len(parts):
            part = parts[i]
            if isinstance(part, group) and i + 1 < len(parts):
                if _joined_from_results(part):
                    _keep_results(part)
                merged.append(chord(part, parts[i + 1], app=app))
                i += 2
            else:
                merged.append(part)
                i += 1
        return merged[0] if len(merged) == 1 else chain(*merged, app=app)

    return to_canvas(plan_canvas(list(document["actions"])))
