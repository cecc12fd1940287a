"""Bad and repeated messages: poison on the intake and priority queues, a step message delivered twice."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from celery import Celery

from drills.accounting import DrillResult
from drills.harness import Harness
from drills.receiver import Reply
from drills.scenarios.common import http_chain, http_fanout

POISONED_QUEUES = ("celery", "default")
#: Keys any Celery-on-Redis deployment has; anything else left after the drill may be where poison went.
_ORDINARY = ("celery-task-meta-", "_kombu.binding", "unacked", "automation:actions:")


def _envelope(body: str, *, queue: str, task: str) -> str:
    """A kombu message as the Redis transport stores it, with `body` as given (base64 expected)."""
    task_id = str(uuid.uuid4())
    return json.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "retries": 0},
            "properties": {
                "correlation_id": task_id,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def poison(h: Harness, result: DrillResult) -> None:
    """On `celery` and on `default`: text that is not JSON, an envelope whose body is not base64, an
    unknown task name, and `automation.run_workflow` with inputs that are a string. Then two good runs
    (one enqueued through the engine, one by name on the intake queue) must run on the same worker."""
    h.engine()
    worker = h.worker(concurrency=2)
    h.respond(lambda _path: Reply())
    steps = http_chain(h, "drill-healthy", 3, prefix="healthy")
    client = h.redis.client()
    by_name = Celery(broker=h.redis.url)
    injected = time.time()
    for queue in POISONED_QUEUES:
        client.lpush(queue, "this is not json {{{")
        client.lpush(queue, _envelope("%%% not base64 %%%", queue=queue, task="automation.run_workflow"))
        by_name.send_task("automation.no_such_task", kwargs={}, queue=queue)
        by_name.send_task(
            "automation.run_workflow",
            kwargs={"workflow": "drill-healthy", "inputs": "not a mapping"},
            queue=queue,
        )
    result.notes.append(f"8 poison messages pushed; worker pid {worker.pid} before")
    run_ids = [h.run("drill-healthy")]
    by_name.send_task(
        "automation.run_workflow",
        kwargs={"workflow": "drill-healthy", "inputs": {}, "idempotency_key": "drill-intake"},
        queue="celery",
    )
    until = injected + h.deadline
    if h.wait_until(lambda: bool(h.runs_with_key("drill-intake")), until=until):
        run_ids.append(h.runs_with_key("drill-intake")[0].id)
    else:
        result.runs_accepted += 1
        result.runs_lost += 1
        result.notes.append("the run sent by name on the intake queue was never created")
    h.wait_terminal(run_ids, until=until)
    rows = h.measure_runs(result, run_ids, http_steps={r: steps for r in run_ids})
    finished = [r.finished_at for r in rows.values() if r.finished_at is not None]
    result.recovery_point = "both good runs finished, from the poison's injection"
    if len(finished) == 2:
        result.recovery_seconds = max(finished) - injected
    stored = h.query("SELECT id::text FROM automation_workflowrun") or []
    stray = [row[0] for row in stored if row[0] not in run_ids]
    if stray:
        result.misses.append(f"{len(stray)} run(s) created from a poison message")
    result.notes.append(f"worker pid {worker.pid} after, alive: {worker.alive}")
    result.notes.append(f"where the poison went: {_leftovers(h)}")


def _leftovers(h: Harness) -> str:
    client = h.redis.client()
    found: list[str] = []
    for raw in sorted(client.scan_iter(count=1000)):
        key = _text(raw)
        if key.startswith(_ORDINARY) and key != "unacked":
            continue
        kind = _text(client.type(raw))
        size: Any = {"list": client.llen, "hash": client.hlen, "zset": client.zcard, "set": client.scard}.get(
            kind, lambda _k: "-"
        )(raw)
        found.append(f"{key} ({kind}, {size})")
    # A table an engine keeps set-aside messages in, whatever it calls it.
    tables = h.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND ("
        "table_name LIKE '%%dead%%' OR table_name LIKE '%%poison%%' OR table_name LIKE '%%quarantin%%')"
    )
    for (table,) in tables or []:
        counted = h.query(f'SELECT count(*) FROM "{table}"')  # noqa: S608 - a name PostgreSQL gave us
        found.append(f"table {table} ({counted[0][0] if counted else '?'} rows)")
    return ", ".join(found) or "no key left in Redis, no dead-letter table: dropped"


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def duplicate_delivery(h: Harness, result: DrillResult) -> None:
    """Runs enqueued with no worker up (a 5-step chain, a 3-way fan-out with join); every message in the
    `default` queue is then copied (same ids, same body) before a worker starts: each effect once."""
    h.engine()
    h.respond(lambda _path: Reply(delay=0.2))
    chain = http_chain(h, "drill-twice-chain", 5, prefix="twice-chain")
    fan = http_fanout(h, "drill-twice-fan", 3, prefix="twice-fan")
    run_ids = [h.run("drill-twice-chain"), h.run("drill-twice-fan")]
    client = h.redis.client()
    if not h.wait_until(lambda: client.llen("default") >= 2, until=time.time() + 30):
        result.notes.append(f"only {client.llen('default')} message(s) in `default` to copy")
    messages = client.lrange("default", 0, -1)
    for message in reversed(messages):
        client.lpush("default", message)
    result.notes.append(f"{len(messages)} message(s) in `default`, each pushed a second time")
    h.worker(concurrency=4)
    h.wait_terminal(run_ids, until=time.time() + h.deadline)
    h.measure_runs(result, run_ids, http_steps={run_ids[0]: chain, run_ids[1]: fan})
    attempts = {s.name: s.attempts for r in run_ids for s in h.steps(r) if s.attempts != 1}
    if attempts:
        result.notes.append(f"steps with attempts other than 1: {attempts}")
