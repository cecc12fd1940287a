"""One drill's world: its own Redis and PostgreSQL, the schema, real Celery workers and Beats, the receiver,
and the readings a drill takes (runs and steps from PostgreSQL, effects from the receiver); all torn down
at the end, failure or not."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg2

from drills.accounting import DrillResult, Fault, count_effects, seconds_after
from drills.processes import ROOT, CeleryProcess, Supervisor
from drills.receiver import Receiver, Reply
from drills.services import PostgresServer, RedisServer

DATABASE = "automation"
PIDS_FILE = "pids"
TERMINAL = ("succeeded", "failed", "cancelled", "skipped")
#: Log lines worth a maintainer's look; `Task ... received` and the like are not.
_NOTABLE = re.compile(r"Unrecoverable|CRITICAL|Traceback|Error|error|refused|Giving up|lost", re.ASCII)
#: Variable parts of log lines (ids, numbers), blanked to group the same message.
_VARIABLE = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27,}|\d+(\.\d+)?")


@dataclass(frozen=True)
class RunRow:
    id: str
    status: str
    error: str
    finished_at: float | None


@dataclass(frozen=True)
class StepRow:
    name: str
    status: str
    attempts: int
    started_at: float | None
    finished_at: float | None


def _epoch(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class Harness:
    """Use as a context manager; everything started through it is stopped on exit."""

    def __init__(self, name: str, *, workdir: Path, deadline: float, redis_aof: bool = False) -> None:
        self.name = name
        self.workdir = workdir
        self.deadline = deadline
        self.redis = RedisServer(workdir / "redis", aof=redis_aof, on_spawn=self._record_pid)
        self.postgres = PostgresServer(workdir / "postgres")
        self.logs = workdir / "logs"
        self.faults: list[Fault] = []
        self.processes: list[CeleryProcess] = []
        self.env: dict[str, str] = {}
        self._stack = ExitStack()
        self._db: Any = None
        self._engine: Any = None
        self.receiver: Receiver
        self.supervisor: Supervisor

    # --- life cycle -------------------------------------------------------------------------------

    def __enter__(self) -> Harness:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def _start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis.start()
        self._stack.callback(self.redis.stop)
        self.postgres.start()
        self._stack.callback(self.postgres.stop)
        admin = psycopg2.connect(self.postgres.url("postgres"))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE}")
        admin.close()
        self.env = _clean_environment() | {
            "DATABASE_URL": self.postgres.url(DATABASE),
            "AUTOMATION_BROKER_URL": self.redis.url,
            "AUTOMATION_STATE_DIR": str(self.workdir / "state"),
            "AUTOMATION_HOME": str(ROOT),
            "AUTOMATION_SERVICES_FILE": str(self.workdir / "services.yml"),
            "DJANGO_SETTINGS_MODULE": "automation.settings",
            "PYTHONUNBUFFERED": "1",
        }
        # This process talks to the engine too (register, enqueue): it reads the same environment.
        for key in [k for k in os.environ if k.startswith("AUTOMATION_") or k == "DATABASE_URL"]:
            del os.environ[key]
        os.environ.update(self.env)
        self._migrate()
        self.receiver = Receiver()
        self._stack.callback(self.receiver.close)
        self.supervisor = Supervisor()
        # Callbacks run last first: stop restarting processes before stopping them.
        self._stack.callback(self._stop_processes)
        self._stack.callback(self.supervisor.close)
        self._stack.callback(self._close_db)

    def _migrate(self) -> None:
        cli = Path(sys.executable).with_name("automation")
        command = [str(cli)] if cli.exists() else [sys.executable, "-m", "automation.cli.main"]
        done = subprocess.run(
            [*command, "migrate"], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"automation migrate failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def _record_pid(self, pid: int) -> None:
        """Each process group started, so the suite can sweep up after a drill that was itself killed."""
        with open(self.workdir / PIDS_FILE, "a") as pids:
            pids.write(f"{pid}\n")

    def _stop_processes(self) -> None:
        for process in self.processes:
            process.kill_group()

    def _close_db(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except psycopg2.Error:
                pass

    # --- processes --------------------------------------------------------------------------------

    def worker(self, name: str = "worker", *, concurrency: int = 4, supervised: bool = True) -> CeleryProcess:
        process = CeleryProcess.worker(
            name=name, concurrency=concurrency, log_dir=self.logs, env=self.env, on_spawn=self._record_pid
        )
        self.processes.append(process)
        process.start()
        if supervised:
            self.supervisor.watch(process)
        return process

    def beat(self, name: str = "beat") -> CeleryProcess:
        process = CeleryProcess.beat(name=name, log_dir=self.logs, env=self.env, on_spawn=self._record_pid)
        self.processes.append(process)
        process.start()
        self.supervisor.watch(process)
        return process

    # --- the engine, through its public API -------------------------------------------------------

    def engine(self, **config: Any) -> Any:
        """Apply an AutomationConfig (defaults, with `config` over them) as an operator would."""
        import logging

        from automation import AutomationConfig, AutomationEngine

        self._engine = AutomationEngine(AutomationConfig(**config))
        logging.getLogger("automation").setLevel(logging.WARNING)
        return self._engine

    def http_step(self, name: str, path: str, **options: Any) -> Any:
        from automation import ActionDefinition

        return ActionDefinition(
            name=name,
            action_type="http.request",
            parameters={"url": f"{self.receiver.url}/{path}", "method": "POST"},
            **options,
        )

    def register(self, name: str, actions: list[Any], **options: Any) -> str:
        from automation import WorkflowDefinition

        if self._engine is None:
            self.engine()
        self._engine.register_workflow(WorkflowDefinition(name=name, actions=actions, **options))
        return name

    def run(self, workflow: str, *, key: str | None = None) -> str:
        return str(self._engine.run_workflow(workflow, {}, idempotency_key=key).id)

    def respond(self, respond: Callable[[str], Reply]) -> None:
        self.receiver.respond = respond

    # --- faults -----------------------------------------------------------------------------------

    def fault(self, what: str, start: float, end: float) -> Fault:
        found = Fault(what, start, end)
        self.faults.append(found)
        return found

    def restart_redis(self, *, outage: float, nosave: bool = True) -> Fault:
        """SHUTDOWN [NOSAVE], `outage` seconds down, start again: the fault ends when Redis answers."""
        start = time.time()
        self.redis.shutdown(nosave=nosave)
        time.sleep(outage)  # the outage's length is the fault itself, not a wait for something to happen
        self.redis.start()
        return self.fault("redis restart", start, time.time())

    # --- readings from PostgreSQL -----------------------------------------------------------------

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]] | None:
        """Rows, or None while the database cannot be reached (a drill may be restarting it)."""
        try:
            if self._db is None or self._db.closed:
                self._db = psycopg2.connect(self.postgres.url(DATABASE), connect_timeout=2)
                self._db.autocommit = True
            with self._db.cursor() as cur:
                cur.execute(sql, params)
                return list(cur.fetchall())
        except psycopg2.Error:
            self._close_db()
            self._db = None
            return None

    def runs(self, run_ids: Iterable[str]) -> dict[str, RunRow] | None:
        rows = self.query(
            "SELECT id::text, status, error, finished_at FROM automation_workflowrun "
            "WHERE id::text = ANY(%s)",
            (list(run_ids),),
        )
        if rows is None:
            return None
        return {r[0]: RunRow(r[0], r[1], r[2], _epoch(r[3])) for r in rows}

    def runs_with_key(self, key: str) -> list[RunRow]:
        rows = self.query(
            "SELECT id::text, status, error, finished_at FROM automation_workflowrun "
            "WHERE idempotency_key = %s",
            (key,),
        )
        return [RunRow(r[0], r[1], r[2], _epoch(r[3])) for r in rows or []]

    def steps(self, run_id: str) -> list[StepRow]:
        rows = self.query(
            "SELECT name, status, attempts, started_at, finished_at FROM automation_steprun "
            "WHERE run_id::text = %s ORDER BY position",
            (run_id,),
        )
        return [StepRow(r[0], r[1], int(r[2]), _epoch(r[3]), _epoch(r[4])) for r in rows or []]

    def step_moves(self, run_ids: Iterable[str]) -> list[float]:
        """Every recorded start and finish of the runs' steps, as epoch seconds."""
        moves: list[float] = []
        for run_id in run_ids:
            for step in self.steps(run_id):
                moves.extend(t for t in (step.started_at, step.finished_at) if t is not None)
        return moves

    # --- waiting ------------------------------------------------------------------------------------

    def wait_until(self, predicate: Callable[[], bool], *, until: float) -> bool:
        """Poll `predicate` until it holds (True) or the epoch time `until` passes (False)."""
        while True:
            if predicate():
                return True
            if time.time() > until:
                return False
            time.sleep(0.1)

    def wait_terminal(self, run_ids: list[str], *, until: float) -> bool:
        def done() -> bool:
            rows = self.runs(run_ids)
            return (
                rows is not None
                and len(rows) == len(run_ids)
                and all(r.status in TERMINAL for r in rows.values())
            )

        return self.wait_until(done, until=until)

    def wait_arrival(self, path_part: str, *, until: float) -> bool:
        return self.wait_until(lambda: bool(self.receiver.arrived(path_part)), until=until)

    # --- measuring --------------------------------------------------------------------------------

    def measure_runs(
        self,
        result: DrillResult,
        run_ids: list[str],
        *,
        expected: str = "succeeded",
        http_steps: dict[str, list[str]] | None = None,
    ) -> dict[str, RunRow]:
        """Count lost runs (not finished, or finished with an http step whose effect never arrived) and
        the runs that ended otherwise than `expected`; `http_steps` maps a run to its http steps."""
        rows = self.runs(run_ids) or {}
        keys = {d.key for d in self.receiver.snapshot() if d.applied}
        result.runs_accepted += len(run_ids)
        for run_id in run_ids:
            row = rows.get(run_id)
            if row is None or row.status not in TERMINAL:
                result.runs_lost += 1
                states = Counter(s.status for s in self.steps(run_id))
                result.notes.append(
                    f"run {run_id[:8]} still {row.status if row else 'missing'} at the deadline "
                    f"(steps: {dict(states)})"
                )
                continue
            missing = [s for s in (http_steps or {}).get(run_id, []) if f"{run_id}:{s}" not in keys]
            if row.status == "succeeded" and missing:
                result.runs_lost += 1
                result.notes.append(f"run {run_id[:8]} succeeded but steps never ran: {missing[:5]}")
            if row.status != expected:
                result.misses.append(f"run {run_id[:8]} ended {row.status}, expected {expected}")
                if row.error:
                    result.notes.append(f"run {run_id[:8]} error: {row.error[:200]}")
        return rows

    def measure_effects(self, result: DrillResult) -> None:
        faults = [*self.faults, *(Fault("process exit", e.at - 1.0, e.at) for e in self.supervisor.exits)]
        counted = count_effects(self.receiver.snapshot(), faults)
        result.effects_applied += counted.applied_keys
        result.effects_duplicated += counted.duplicated
        result.resent_in_flight += counted.resent_in_flight
        if counted.duplicated_keys:
            result.notes.append(f"keys applied more than once: {counted.duplicated_keys[:3]}")

    def first_progress_after(self, moment: float, run_ids: list[str]) -> float | None:
        """Seconds from `moment` to the first sign of work after it: a request at the receiver, or a
        step starting or finishing in PostgreSQL."""
        arrivals = [d.arrived for d in self.receiver.snapshot()]
        return seconds_after([*arrivals, *self.step_moves(run_ids)], moment)

    def observe(self, result: DrillResult) -> None:
        """Record the processes' exits and their notable log lines (grouped, most frequent first)."""
        crashes = [e for e in self.supervisor.exits if not e.outside_stop]
        grouped = Counter((e.name, e.code, e.last_error) for e in crashes)
        for (name, code, said), count in grouped.items():
            result.observations.append(f"{name} exited {count}x (code {code}), restarted: {said}")
        if crashes:
            result.misses.append(f"{len(crashes)} unexpected process exit(s)")
        for exit_ in self.supervisor.exits:
            if exit_.outside_stop:
                result.disturbances.append(
                    f"{exit_.name} stopped cleanly (code {exit_.code}, no error logged) without the drill "
                    "asking: a signal from another program on the machine"
                )
        for error in self.supervisor.restart_errors:
            result.observations.append(f"restart failed: {error}")
        notable: Counter[str] = Counter()
        example: dict[str, str] = {}
        for process in self.processes:
            for line in process.lines():
                first = line.text.splitlines()[0]
                serious = line.level in ("ERROR", "CRITICAL")
                if (serious or (line.level == "WARNING" and _NOTABLE.search(line.text))) and (
                    "DeprecationWarning" not in first
                ):
                    shape = f"{process.kind}: {line.level} {_VARIABLE.sub('N', first)[:160]}"
                    notable[shape] += 1
                    example.setdefault(shape, f"{process.kind}: {line.level} {first[:240]}")
        for shape, count in notable.most_common(8):
            result.observations.append(f"{count}x {example[shape]}")


def _clean_environment() -> dict[str, str]:
    """This environment without the engine's variables: a drill runs with the engine's defaults."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AUTOMATION_") and key not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
