"""Alerting figures, each quoted as a ratio to a baseline measured in the same run (medians of interleaved
repetitions). Prints a table and writes benchmarks/results/alerting.json.

1. tick: one evaluation tick of R threshold rules (`metric{service="svc-j"} > T`, ten metrics, R/10
   services each) over S pushed series (R/S instances per service, 4 samples each 15 s apart inside the
   5-minute lookback, 5% above their threshold), on ONE core. Baseline: the real Prometheus evaluating the
   same rules (one rule group, interval 5 s) over the same series, scraped every 15 s from a
   prometheus_client exposition served by this script: its own `prometheus_rule_group_last_duration_seconds`
   read from its /metrics after each evaluation. Prometheus runs with GOMAXPROCS=1, pinned to one core;
   our tick runs in this process pinned to that same core: `evaluate_all(now, flush=False)`, the
   foreground tick (read the rules, load the samples, evaluate, write alert state; no notifications),
   because it is what Prometheus's figure covers: the evaluation, without scheduling. PostgreSQL serves
   our reads and writes from its own process (not pinned). Each side is paused while the other measures
   (Prometheus with SIGSTOP). Target: <= 1x. Also shown (no baseline of its own): the same tick through
   Celery, one `evaluate_rules` message per batch of rules, a worker with -c 1 pinned to the same core,
   from the first message sent to the last batch done.
2. storm: N alerts (default 1,000; 20 services, 10 alertnames) POSTed at once to a real `automation serve`
   (gunicorn, 2 workers) as Alertmanager's webhook sends them: one payload per group (group_by service),
   4 requests in flight. Reported: seconds until every alert is stored (firing in PostgreSQL), alerts
   lost, notifications after a flush (one per group, `log` receiver), runs started (one per alert whose
   alertname has a handler rule, none twice, also after the whole storm is delivered again). Baseline:
   the real Alertmanager ingesting the same alerts (same payload split, same 4 requests in flight) on its
   /api/v2/alerts, until its API lists them all.
3. first_step: one alert POSTed to the webhook of the API server -> the remediation run's first step
   starts (StepRun.started_at, written by a real worker), against plain Celery: apply_async -> the task
   starts (the time it returns), on the same broker (`benchmarks/plain_celery.py`, task `plain.started`).
   Workers as in bench_engine.py (prefork -c 2 -Q default), one side at a time, order alternating.
   Target: <= 2x.

Usage, from the repository root: python benchmarks/bench_alerting.py [--quick] [--only FIGURE]
It creates its own PostgreSQL database (dropped at the end) and flushes its Redis database (db 7, or
AUTOMATION_BENCH_REDIS) around the run. Needs the `prometheus` and `prometheus-alertmanager` binaries
(scripts/ensure-services.sh installs them).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("AUTOMATION_BENCH_REDIS", "redis://127.0.0.1:6379/7")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402

from benchmarks import bench_engine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "alerting.json"
PROMETHEUS = "prometheus"
ALERTMANAGER = "prometheus-alertmanager"
POLL_SECONDS = 0.02

#: (metric, threshold): the rules are `metric{service="svc-j"} > threshold`.
METRICS = (
    ("cpu_usage_percent", 80.0),
    ("memory_usage_percent", 85.0),
    ("disk_usage_percent", 90.0),
    ("http_errors_percent", 5.0),
    ("http_p99_latency_ms", 500.0),
    ("queue_depth", 1000.0),
    ("gc_pause_ms", 200.0),
    ("db_pool_usage_percent", 80.0),
    ("thread_pool_usage_percent", 80.0),
    ("cache_miss_percent", 40.0),
)
REGIONS = ("eu-west", "us-east", "ap-south")
FIRING_SHARE = 0.05
SAMPLES_PER_SERIES = 4
SAMPLE_SPACING = 15.0
PROMETHEUS_SCRAPE = "15s"
PROMETHEUS_EVALUATION_SECONDS = 5
GROUP = "bench"

ALERTNAMES = (
    "HighCpuUsage",
    "HighMemoryUsage",
    "DiskAlmostFull",
    "HighErrorRate",
    "SlowResponses",
    "QueueBacklog",
    "LongGcPauses",
    "DbPoolExhausted",
    "ThreadPoolSaturated",
    "CacheMissStorm",
)
#: Alertnames with a handler rule (a one-step remediation): each of their alerts starts one run.
HANDLED = ALERTNAMES[:3]
PROBE = "FirstStepProbe"
IN_FLIGHT = 4


@dataclass(frozen=True)
class Plan:
    rules: int
    series: int
    alerts: int
    groups: int
    repeats: int
    ticks: int  # evaluations per side per repetition (figure 1)
    probes: int  # alerts (or tasks) per side per repetition (figure 3)


FULL = Plan(rules=10_000, series=100_000, alerts=1_000, groups=20, repeats=5, ticks=5, probes=15)
QUICK = Plan(rules=1_000, series=10_000, alerts=200, groups=10, repeats=3, ticks=3, probes=3)
FIGURES = ("tick", "storm", "first_step")
#: Probes sent and not counted before each side's measured ones, the same number on both sides: each of
#: the two pool processes and of the API server's two processes connects, loads and caches on its first.
WARM_UPS = 4


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    baseline: str
    target_ratio: float | None
    ours: list[float] = field(default_factory=list)
    base: list[float] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.base or not self.ours:
            return None
        return statistics.median(self.ours) / statistics.median(self.base)

    @property
    def met(self) -> bool | None:
        if self.target_ratio is None or self.ratio is None:
            return None
        return self.ratio <= self.target_ratio

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "baseline": self.baseline,
            "ours": round(statistics.median(self.ours), 4) if self.ours else None,
            "base": round(statistics.median(self.base), 4) if self.base else None,
            "ratio": round(self.ratio, 3) if self.ratio is not None else None,
            "target": f"<= {self.target_ratio}x {self.baseline}" if self.target_ratio is not None else None,
            "met": self.met,
            "ours_samples": [round(v, 4) for v in self.ours],
            "base_samples": [round(v, 4) for v in self.base],
            "checks": self.checks,
            "note": self.note,
        }


class BenchmarkError(RuntimeError):
    """A measurement could not be taken, or its result is wrong: no figure is reported from it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BenchmarkError(f"{name} is not installed (bash scripts/ensure-services.sh installs it)")
    return path


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise BenchmarkError(f"{what}: not after {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Server:
    """A server binary (or our API) in its own process group, its output in the benchmark's state dir."""

    def __init__(
        self, name: str, command: Sequence[str], ready_url: str, *, env: dict[str, str] | None = None
    ):
        self.name = name
        self.log_path = bench_engine.STATE_DIR / f"{name}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(lambda: self.process.poll() is None and answers(ready_url), 120, f"{name} ready")
        except BenchmarkError:
            self.stop()
            raise BenchmarkError(f"{name} did not start: {self.log_path.read_text()[-2000:]}") from None

    def pause(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()


def pinned(core: int | None, command: list[str]) -> list[str]:
    """`command` pinned to `core` with taskset (run unpinned when taskset is missing: said in the results)."""
    if core is None or shutil.which("taskset") is None:
        return command
    return ["taskset", "-c", str(core), *command]


def bench_core() -> int | None:
    """The core both sides of figure 1 run on: the last one this process may use."""
    cores = sorted(os.sched_getaffinity(0))
    return cores[-1] if len(cores) > 1 else None


@contextmanager
def on_core(core: int | None) -> Iterator[None]:
    """Every thread of this process (the main one, the push source's reader, the exposition's) on `core`."""
    everywhere = os.sched_getaffinity(0)
    threads = [t.native_id for t in threading.enumerate() if t.native_id is not None]
    if core is not None:
        for native_id in threads:
            os.sched_setaffinity(native_id, {core})
    try:
        yield
    finally:
        for native_id in threads:
            try:
                os.sched_setaffinity(native_id, everywhere)
            except ProcessLookupError:
                pass
        os.sched_setaffinity(0, everywhere)


# --- figure 1: the evaluation tick ---------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    series: list[tuple[str, dict[str, str], float]]  # metric, labels, value
    rules: list[tuple[str, str]]  # name, condition (also the PromQL expression)
    firing: int  # series above their threshold


def workload(plan: Plan) -> Workload:
    services = plan.rules // len(METRICS)
    instances = plan.series // plan.rules
    rng = random.Random(20261129)
    series, rules, firing = [], [], 0
    for metric, threshold in METRICS:
        for j in range(services):
            service = f"svc-{j:04d}"
            rules.append(
                (f"{metric}_{service}".replace("-", "_"), f'{metric}{{service="{service}"}} > {threshold:g}')
            )
            for i in range(instances):
                high = rng.random() < FIRING_SHARE
                firing += high
                value = threshold * (rng.uniform(1.05, 1.5) if high else rng.uniform(0.0, 0.9))
                # `host`, not `instance`: Prometheus sets `instance` itself (and would rename ours)
                labels = {
                    "service": service,
                    "host": f"{service}-{i}",
                    "region": REGIONS[j % 3],
                    "env": "prod",
                }
                series.append((metric, labels, round(value, 3)))
    return Workload(series, rules, firing)


def store_workload(load: Workload, at: float) -> None:
    """Our side: the samples pushed (`ingest`, as POST /api/v1/metrics does) and the rules stored (validated
    as `save_rule` validates them; written in bulk, as a rule without actions registers no workflow)."""
    from django.db import connection

    from automation.alerting.definitions import RuleDefinition
    from automation.alerting.exposition import PushedSample
    from automation.alerting.rules import parse_rule
    from automation.alerting.services.samples import ingest
    from automation.models import AlertRule

    chunk: list[Any] = []
    for metric, labels, value in load.series:
        for k in range(SAMPLES_PER_SERIES):
            chunk.append(
                PushedSample(metric, labels, value, at - SAMPLE_SPACING * (SAMPLES_PER_SERIES - 1 - k))
            )
        if len(chunk) >= 20_000:
            ingest(chunk)
            chunk = []
    ingest(chunk)
    rows = []
    for name, condition in load.rules:
        definition = RuleDefinition.parse({"name": name, "condition": condition})
        parse_rule(condition)
        rows.append(
            AlertRule(
                name=name,
                source=definition.source,
                severity=definition.severity.value,
                document=definition.as_document(),
                enabled=True,
            )
        )
    AlertRule.objects.bulk_create(rows, batch_size=2000)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum would have done by the time of a steady tick


class Exposition:
    """The series as a prometheus_client exposition (rendered once: the values do not change), served on
    loopback for Prometheus to scrape."""

    def __init__(self, load: Workload) -> None:
        from prometheus_client import CollectorRegistry, Gauge, generate_latest

        registry = CollectorRegistry()
        gauges = {
            m: Gauge(m, "bench series", ["service", "host", "region", "env"], registry=registry)
            for m, _ in METRICS
        }
        for metric, labels, value in load.series:
            gauges[metric].labels(**labels).set(value)
        body = generate_latest(registry)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.target = f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Prometheus(Server):
    """The real Prometheus, GOMAXPROCS=1 and pinned to `core`, scraping the exposition, evaluating the
    rules as one group."""

    def __init__(self, load: Workload, target: str, core: int | None) -> None:
        binary = require_binary(PROMETHEUS)
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-prometheus-", dir=bench_engine.STATE_DIR))
        rules = [{"alert": name, "expr": expr} for name, expr in load.rules]
        group = {"name": GROUP, "interval": f"{PROMETHEUS_EVALUATION_SECONDS}s", "rules": rules}
        (self.workdir / "rules.yml").write_text(yaml.safe_dump({"groups": [group]}))
        config = {
            "global": {
                "scrape_interval": PROMETHEUS_SCRAPE,
                "scrape_timeout": "10s",
                "evaluation_interval": f"{PROMETHEUS_EVALUATION_SECONDS}s",
            },
            "rule_files": [str(self.workdir / "rules.yml")],
            "scrape_configs": [{"job_name": "bench", "static_configs": [{"targets": [target]}]}],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = pinned(
            core,
            [
                binary,
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
        )
        super().__init__("prometheus", command, f"{self.url}/-/ready", env={**os.environ, "GOMAXPROCS": "1"})

    def query(self, promql: str) -> float | None:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=30).json()
        result = answer["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def group_stats(self) -> tuple[float, float, float]:
        """(last evaluation time, its duration, rules) of the group, from Prometheus's own /metrics."""
        found: dict[str, float] = {}
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith("prometheus_rule_group_") and f';{GROUP}"' in line:
                name = line.split("{", 1)[0]
                found[name] = float(line.rsplit(" ", 1)[1])
        return (
            found.get("prometheus_rule_group_last_evaluation_timestamp_seconds", 0.0),
            found.get("prometheus_rule_group_last_duration_seconds", 0.0),
            found.get("prometheus_rule_group_rules", 0.0),
        )

    def durations(self, count: int) -> list[float]:
        """The durations of the next `count` evaluations (the first after a pause left out)."""
        last, _, _ = self.group_stats()
        skip, found = 1, []
        deadline = time.monotonic() + (count + 2) * PROMETHEUS_EVALUATION_SECONDS * 4 + 60
        while len(found) < count:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"prometheus evaluated {len(found)} times, expected {count}")
            time.sleep(0.2)
            at, duration, _ = self.group_stats()
            if at != last:
                last = at
                if skip:
                    skip -= 1
                else:
                    found.append(duration)
        return found

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def our_tick(now: float, plan: Plan) -> float:
    from automation.alerting.services.ticks import evaluate_all

    profile = os.environ.get("AUTOMATION_BENCH_PROFILE")  # a file: cProfile stats of the last tick
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    reports = evaluate_all(now, flush=False)
    elapsed = time.perf_counter() - started
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    errors = [r for r in reports if "error" in r]
    series = sum(r.get("series", 0) for r in reports)
    if len(reports) != plan.rules or errors or series != plan.series:
        raise BenchmarkError(f"tick: {len(reports)} reports, {series} series, errors {errors[:3]}")
    return elapsed


def celery_tick(now: float, plan: Plan) -> float:
    """The tick as Beat's `evaluate` sends it (one `evaluate_rules` per batch), sent from here; from the
    first message to the last batch done (the result's date_done)."""
    from automation.alerting.services.ticks import enabled_rules, tick_batches
    from automation.celery import app
    from automation.delivery import MONITORING_QUEUE

    started = time.time()
    results = [
        app.send_task(
            "automation.alerting.evaluate_rules", ([r.name for r in batch], now), queue=MONITORING_QUEUE
        )
        for batch in tick_batches(enabled_rules())
    ]
    series, ended = 0, 0.0
    for result in results:
        summary = result.get(timeout=600)
        if summary["errors"]:
            raise BenchmarkError(f"celery tick: {summary['errors']}")
        series += summary["series"]
        done = result.date_done
        done = datetime.fromisoformat(done) if isinstance(done, str) else done
        ended = max(ended, (done if done.tzinfo else done.replace(tzinfo=UTC)).timestamp())
    if series != plan.series:
        raise BenchmarkError(f"celery tick read {series} series, expected {plan.series}")
    return ended - started


def measure_tick(plan: Plan, figures: dict[str, Figure]) -> None:
    from automation.alerting.choices import AlertState
    from automation.models import Alert

    tick = figures["tick"]
    celery = figures["tick_celery"]
    load = workload(plan)
    core = bench_core()
    at = float(int(time.time()))
    print(f"  storing {plan.series} series x {SAMPLES_PER_SERIES} samples and {plan.rules} rules", flush=True)
    began = time.perf_counter()
    store_workload(load, at)
    tick.checks["store_seconds"] = round(time.perf_counter() - began, 1)
    counter = iter(range(1_000_000))

    def now() -> float:  # evaluation times inside the samples' freshness, whatever the wall clock says
        return at + 1 + next(counter) / 1000

    with on_core(core):
        began = time.perf_counter()
        our_tick(now(), plan)
        tick.checks["first_tick_seconds (creates the alerts, runs their pipeline)"] = round(
            time.perf_counter() - began, 2
        )
    firing = Alert.objects.filter(state=AlertState.FIRING).count()
    if firing != load.firing:
        raise BenchmarkError(f"{firing} alerts firing after the first tick, expected {load.firing}")
    exposition = Exposition(load)
    prometheus = Prometheus(load, exposition.target, core)
    worker = None
    try:
        print("  prometheus: waiting for its data and rules (3 scrapes)", flush=True)
        wait_until(lambda: prometheus.group_stats()[2] == plan.rules, 120, "prometheus loads the rules")
        wait_until(
            lambda: prometheus.query('count(ALERTS{alertstate="firing"})') == load.firing,
            180,
            "prometheus fires the expected alerts",
        )
        time.sleep(3 * 15)  # a few samples per series inside the lookback, as ours has
        bench_engine.wait_idle = bench_engine.wait_idle  # (the engine benchmark's helpers stay as they are)
        worker = CeleryWorker(core)
        celery_tick(now(), plan)  # warm-up: the pool process loads, compiles and indexes
        worker.pause()
        prometheus.pause()
        for repeat in range(plan.repeats):
            order = ("prometheus", "ours") if repeat % 2 == 0 else ("ours", "prometheus")
            for side in order:
                if side == "prometheus":
                    prometheus.resume()
                    values = prometheus.durations(plan.ticks)
                    prometheus.pause()
                    tick.base.append(statistics.median(values))
                    celery.base.append(statistics.median(values))
                    print(
                        f"  #{repeat + 1} prometheus evaluation: {[round(v, 3) for v in values]} s",
                        flush=True,
                    )
                else:
                    with on_core(core):
                        values = [our_tick(now(), plan) for _ in range(plan.ticks)]
                    tick.ours.append(statistics.median(values))
                    worker.resume()
                    celery_values = [celery_tick(now(), plan) for _ in range(max(1, plan.ticks // 2))]
                    worker.pause()
                    celery.ours.append(statistics.median(celery_values))
                    print(
                        f"  #{repeat + 1} our tick: {[round(v, 3) for v in values]} s, via celery "
                        f"{[round(v, 3) for v in celery_values]} s",
                        flush=True,
                    )
        prometheus.resume()
        time.sleep(PROMETHEUS_EVALUATION_SECONDS + 1)
        tick.checks["prometheus_firing_at_end"] = prometheus.query('count(ALERTS{alertstate="firing"})')
        tick.checks["firing_at_end"] = Alert.objects.filter(state=AlertState.FIRING).count()
        tick.checks["expected_firing"] = load.firing
        if (
            tick.checks["prometheus_firing_at_end"] != load.firing
            or tick.checks["firing_at_end"] != load.firing
        ):
            raise BenchmarkError(f"firing alerts at the end: {tick.checks}")
        tick.checks["pinned_core"] = core if shutil.which("taskset") else None
    finally:
        if worker is not None:
            worker.stop()
        prometheus.stop()
        exposition.close()


class CeleryWorker:
    """`celery -A automation worker -c 1 -Q critical` pinned to the core, for the Celery tick."""

    def __init__(self, core: int | None) -> None:
        self.name = f"bench-tick-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self.log_path = bench_engine.STATE_DIR / "worker-tick.log"
        self._log = self.log_path.open("a")
        command = pinned(
            core,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "automation",
                "worker",
                "-P",
                "prefork",
                "-c",
                "1",
                "-Q",
                "critical",
                "-n",
                self.name,
                "-l",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ],
        )
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        from automation.celery import app

        wait_until(
            lambda: bool(app.control.ping(destination=[self.name], timeout=0.5)), 60, "tick worker ready"
        )

    def pause(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGCONT)
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()


# --- figure 2: the alert storm -------------------------------------------------------------------------


def storm_alerts(plan: Plan, storm: str) -> list[dict[str, Any]]:
    """The storm's alerts as Prometheus sends them: labels (distinct label sets), annotations, startsAt."""
    started = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    alerts = []
    for i in range(plan.alerts):
        service = f"svc-{i % plan.groups:02d}"
        labels = {
            "alertname": ALERTNAMES[(i // plan.groups) % len(ALERTNAMES)],
            "service": service,
            "instance": f"{service}-{i // plan.groups}",
            "severity": "warning",
            "storm": storm,
        }
        alerts.append(
            {
                "labels": labels,
                "annotations": {"summary": f"{labels['alertname']} on {labels['instance']}"},
                "startsAt": started,
                "generatorURL": "http://prometheus.example/graph",
            }
        )
    return alerts


def by_group(alerts: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        groups.setdefault(alert["labels"]["service"], []).append(alert)
    return list(groups.values())


def webhook_payload(group: list[dict[str, Any]]) -> dict[str, Any]:
    """Alertmanager's webhook (version 4) for one group, as it sends it."""
    from automation.alerting.receivers.alertmanager import common, fingerprint

    labels = [a["labels"] for a in group]
    service = labels[0]["service"]
    return {
        "version": "4",
        "groupKey": f'{{}}:{{service="{service}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "automation",
        "groupLabels": {"service": service},
        "commonLabels": common(labels),
        "commonAnnotations": common([a["annotations"] for a in group]),
        "externalURL": "http://alertmanager.example",
        "alerts": [
            {
                **a,
                "status": "firing",
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": fingerprint(a["labels"]),
            }
            for a in group
        ],
    }


def post_in_flight(url: str, bodies: list[Any]) -> float:
    """POST every body, IN_FLIGHT at a time (a client each, connected beforehand); returns the time the
    last answer came back. Any answer but 200 is an error."""
    clients = [httpx.Client(timeout=120) for _ in range(IN_FLIGHT)]
    try:
        lock = threading.Lock()
        pending = list(enumerate(bodies))
        statuses: list[tuple[int, str]] = []

        def send(client: httpx.Client) -> float:
            last = 0.0
            while True:
                with lock:
                    if not pending:
                        return last
                    _, body = pending.pop(0)
                answer = client.post(url, json=body)
                last = time.time()
                if answer.status_code != 200:
                    statuses.append((answer.status_code, answer.text[:300]))

        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            ended = max(pool.map(send, clients))
        if statuses:
            raise BenchmarkError(f"{url}: {len(statuses)} requests refused, e.g. {statuses[0]}")
        return ended
    finally:
        for client in clients:
            client.close()


class ApiServer(Server):
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable,
            "-m",
            "automation.cli.main",
            "serve",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            "2",
        ]
        env = {k: v for k, v in os.environ.items() if k != "AUTOMATION_API_TOKENS"}
        super().__init__("api", command, f"{self.url}/healthz", env=env)


class Alertmanager(Server):
    def __init__(self) -> None:
        binary = require_binary(ALERTMANAGER)
        self.workdir = Path(tempfile.mkdtemp(prefix="bench-alertmanager-", dir=bench_engine.STATE_DIR))
        config = {
            "route": {
                "receiver": "null",
                "group_by": ["service"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            },
            "receivers": [{"name": "null"}],
        }
        (self.workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            binary,
            f"--config.file={self.workdir / 'alertmanager.yml'}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        super().__init__("alertmanager", command, f"{self.url}/-/ready")

    def listed(self, storm: str) -> int:
        answer = httpx.get(f"{self.url}/api/v2/alerts", params={"filter": f'storm="{storm}"'}, timeout=30)
        return len(answer.json())

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def configure_alerting() -> None:
    """Level autonomous (runs start directly); routes group by service (and storm, so each repetition's
    alerts form groups of their own) to the `log` receiver; a handler rule for each of HANDLED and PROBE."""
    from automation import AutomationConfig
    from automation.alerting.services.config import apply_document
    from automation.alerting.services.rules import save_rule
    from automation.config.apply import apply_config

    apply_config(AutomationConfig(level="autonomous"))
    apply_document(
        {
            "route": {
                "receiver": "log",
                "group_by": ["service", "storm"],
                "group_wait": "1s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            }
        }
    )
    for name in (*HANDLED, PROBE):
        save_rule(
            {
                "name": name,
                "severity": "low",
                "actions": [{"type": "control.wait", "parameters": {"seconds": 0}}],
            }
        )


def handled_runs() -> int:
    from automation.alerting.remediation import direct_name
    from automation.models import WorkflowRun

    return WorkflowRun.objects.filter(workflow__name__in=[direct_name(n) for n in HANDLED]).count()


def firing_of(storm: str) -> int:
    from automation.alerting.choices import AlertState
    from automation.models import Alert

    return Alert.objects.filter(state=AlertState.FIRING, labels__storm=storm).count()


def our_storm(api: ApiServer, plan: Plan, storm: str, figure: Figure) -> float:
    from automation.alerting.services.groups import flush_all

    alerts = storm_alerts(plan, storm)
    bodies = [webhook_payload(group) for group in by_group(alerts)]
    flush_all(time.time() + 2)  # what earlier figures left due is sent now, not counted with this storm
    runs_before = handled_runs()
    started = time.time()
    post_in_flight(f"{api.url}/api/v1/alerts/alertmanager", bodies)
    wait_until(lambda: firing_of(storm) == plan.alerts, 120, "all alerts stored")
    stored = time.time() - started
    expected_runs = sum(a["labels"]["alertname"] in HANDLED for a in alerts)
    checks = {
        "lost": plan.alerts - firing_of(storm),
        "notifications": flush_all(time.time() + 2),  # group_wait (1 s) has passed
        "groups": plan.groups,
        "runs": handled_runs() - runs_before,
        "expected_runs": expected_runs,
    }
    post_in_flight(f"{api.url}/api/v1/alerts/alertmanager", bodies)  # delivered again (an HA pair)
    checks["runs_after_redelivery"] = handled_runs() - runs_before
    checks["firing_after_redelivery"] = firing_of(storm)
    if (checks["lost"], checks["notifications"], checks["runs"], checks["runs_after_redelivery"]) != (
        0,
        plan.groups,
        expected_runs,
        expected_runs,
    ) or checks["firing_after_redelivery"] != plan.alerts:
        raise BenchmarkError(f"storm {storm}: {checks}")
    figure.checks.setdefault("repetitions", []).append(checks)
    return stored


def alertmanager_storm(manager: Alertmanager, plan: Plan, storm: str) -> float:
    bodies = by_group(storm_alerts(plan, storm))
    started = time.time()
    post_in_flight(f"{manager.url}/api/v2/alerts", bodies)
    wait_until(lambda: manager.listed(storm) == plan.alerts, 120, "alertmanager lists all alerts")
    return time.time() - started


def measure_storm(plan: Plan, figures: dict[str, Figure], api: ApiServer) -> None:
    figure = figures["storm"]
    manager = Alertmanager()
    try:
        for repeat in range(plan.repeats):
            order = ("alertmanager", "ours") if repeat % 2 == 0 else ("ours", "alertmanager")
            for side in order:
                storm = f"r{repeat}-{uuid.uuid4().hex[:6]}"
                if side == "ours":
                    value = our_storm(api, plan, storm, figure)
                    figure.ours.append(value)
                else:
                    value = alertmanager_storm(manager, plan, storm)
                    figure.base.append(value)
                print(f"  #{repeat + 1} {side}: {plan.alerts} alerts stored in {value:.3f} s", flush=True)
    finally:
        manager.stop()


# --- figure 3: alert to first step ---------------------------------------------------------------------


def engine_probe(api: ApiServer, client: httpx.Client) -> tuple[float, float]:
    """One alert for the PROBE handler: (webhook receipt -> first step starts, client POST -> first step
    starts), in seconds. Receipt is the time the view took the alert in (its `fired` log entry)."""
    from automation.alerting.choices import Decision
    from automation.alerting.receivers.alertmanager import fingerprint
    from automation.models import Alert, AlertLog, StepRun

    labels = {
        "alertname": PROBE,
        "service": "probe",
        "instance": uuid.uuid4().hex[:12],
        "severity": "warning",
    }
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = webhook_payload([{"labels": labels, "annotations": {}, "startsAt": now, "generatorURL": ""}])
    found = fingerprint(labels)
    posted = time.time()
    answer = client.post(f"{api.url}/api/v1/alerts/alertmanager", json=body)
    if answer.status_code != 200:
        raise BenchmarkError(f"probe refused: {answer.status_code} {answer.text[:300]}")
    step_started: list[datetime] = []

    def first_step() -> bool:
        run_id = Alert.objects.filter(fingerprint=found).values_list("last_run_id", flat=True).first()
        if run_id is None:
            return False
        steps = StepRun.objects.filter(run_id=run_id, started_at__isnull=False)
        step_started.extend(steps.values_list("started_at", flat=True))
        return bool(step_started)

    wait_until(first_step, 60, "the probe's first step starts")
    received = AlertLog.objects.get(alert__fingerprint=found, decision=Decision.FIRED).at.timestamp()
    started = min(step_started).timestamp()
    return started - received, started - posted


def plain_probe() -> float:
    from benchmarks.plain_celery import started as started_task

    started = time.time()
    result = started_task.apply_async(queue=bench_engine.QUEUE)
    return float(result.get(timeout=60)) - started


def measure_first_step(plan: Plan, figures: dict[str, Figure], api: ApiServer) -> None:
    figure, posted = figures["first_step"], figures["first_step_http"]
    with httpx.Client(timeout=30) as client:  # made once, as Alertmanager's (making one costs ~20 ms)
        for repeat in range(plan.repeats):
            for side in bench_engine.SIDES if repeat % 2 == 0 else bench_engine.SIDES[::-1]:
                with bench_engine.running_worker(side):
                    for _ in range(WARM_UPS):
                        engine_probe(api, client) if side == "engine" else plain_probe()
                    if side == "engine":
                        pairs = [engine_probe(api, client) for _ in range(plan.probes)]
                        values = [1000 * received for received, _ in pairs]
                        figure.ours.append(statistics.median(values))
                        posted.ours.append(statistics.median([1000 * sent for _, sent in pairs]))
                    else:
                        values = [1000 * plain_probe() for _ in range(plan.probes)]
                        figure.base.append(statistics.median(values))
                        posted.base.append(statistics.median(values))
                    bench_engine.wait_idle()
                print(f"  #{repeat + 1} {side}: {[round(v, 1) for v in values]} ms", flush=True)


# --- report ---------------------------------------------------------------------------------------------


def new_figures(plan: Plan) -> dict[str, Figure]:
    return {
        "tick": Figure(
            "tick",
            f"tick: {plan.rules} rules over {plan.series} series, one core",
            "s",
            "Prometheus",
            1.0,
            note="ours: evaluate_all(now, flush=False) in one process pinned to one core; Prometheus: "
            "prometheus_rule_group_last_duration_seconds, GOMAXPROCS=1, pinned to the same core",
        ),
        "tick_celery": Figure(
            "tick_celery",
            "same tick through Celery (batches, worker -c 1)",
            "s",
            "Prometheus",
            None,
            note="first evaluate_rules message sent -> last batch done; compared with the same Prometheus "
            "figure as the tick above",
        ),
        "storm": Figure(
            "storm",
            f"storm: {plan.alerts} alerts ({plan.groups} groups) until all stored",
            "s",
            "Alertmanager",
            None,
            note="ours: webhook payloads to automation serve (2 gunicorn workers), stored in PostgreSQL "
            "with dedup, routing, grouping and runs; Alertmanager: /api/v2/alerts, in memory",
        ),
        "first_step": Figure(
            "first_step",
            "webhook receipt -> first remediation step starts",
            "ms",
            "plain Celery",
            2.0,
            note="ours: the view takes the alert in (its `fired` log time) -> StepRun.started_at (a real "
            "worker); plain: apply_async -> the task starts",
        ),
        "first_step_http": Figure(
            "first_step_http",
            "webhook POST (client) -> first remediation step starts",
            "ms",
            "plain Celery",
            None,
            note="as first_step, the clock started in the client before the POST (HTTP and parsing included)",
        ),
    }


def print_table(figures: list[Figure]) -> None:
    print(f"\n{'figure':<58} {'ours':>9} {'baseline':>9} {'ratio':>7}  {'target':<22} met")
    for fig in figures:
        if not fig.ours:
            continue
        ours = statistics.median(fig.ours)
        baseline = f"{statistics.median(fig.base):>9.3f}" if fig.base else f"{'-':>9}"
        ratio = f"{fig.ratio:>6.2f}x" if fig.ratio is not None else f"{'-':>7}"
        target = (
            f"<= {fig.target_ratio}x {fig.baseline}" if fig.target_ratio is not None else f"({fig.baseline})"
        )
        met = {True: "yes", False: "NO", None: "-"}[fig.met]
        print(f"{fig.label + ' (' + fig.unit + ')':<58} {ours:>9.3f} {baseline} {ratio}  {target:<22} {met}")
    for fig in figures:
        if fig.checks:
            summary = {k: v for k, v in fig.checks.items() if k != "repetitions"}
            if "repetitions" in fig.checks:
                summary["repetitions (last)"] = fig.checks["repetitions"][-1]
            print(f"  {fig.key} checks: {summary}")


def write_results(figures: list[Figure], plan: Plan, quick: bool, machine: dict[str, Any]) -> None:
    report = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_alerting.py" + (" --quick" if quick else ""),
        "mode": "quick" if quick else "full",
        "method": {
            "statistic": f"median over {plan.repeats} repetitions of the median of each side's window "
            "(order alternating between repetitions)",
            "tick": f"{plan.rules} rules over {plan.series} series, {SAMPLES_PER_SERIES} samples each "
            f"{SAMPLE_SPACING:g} s apart, {FIRING_SHARE:.0%} above threshold; {plan.ticks} ticks or "
            "evaluations per window; Prometheus scrape 15 s, group interval 5 s",
            "storm": f"{plan.alerts} alerts, {plan.groups} groups, {IN_FLIGHT} requests in flight, handler "
            f"rules for {', '.join(HANDLED)}",
            "first_step": f"{plan.probes} probes per side per repetition after {WARM_UPS} warm-ups; workers "
            f"prefork -c {bench_engine.CONCURRENCY} -Q {bench_engine.QUEUE}, one side at a time",
        },
        "machine": machine,
        "figures": {fig.key: fig.as_json() for fig in figures if fig.ours},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    partial = RESULTS.with_suffix(".json.tmp")
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(RESULTS)
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test of the script")
    parser.add_argument(
        "--only",
        choices=FIGURES,
        action="append",
        help="measure only these figures (results are not written)",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    chosen = args.only or list(FIGURES)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    bench_engine.configure_environment()
    machine = bench_engine.machine_info()
    machine["loadavg_at_start"] = [round(v, 2) for v in os.getloadavg()]
    if machine["loadavg_at_start"][0] > 1.0:
        print(
            f"warning: load average {machine['loadavg_at_start']} before starting: other work shares the "
            f"{machine['nproc']} cores, figures will be noisy",
            flush=True,
        )
    where = f"database {bench_engine.BENCH_DB}, broker {bench_engine.REDIS_URL}"
    print(f"{where}, logs in {bench_engine.STATE_DIR}", flush=True)
    figures = new_figures(plan)
    with bench_engine.benchmark_database():
        if "tick" in chosen:
            print("figure 1: evaluation tick", flush=True)
            measure_tick(plan, figures)
        if "storm" in chosen or "first_step" in chosen:
            configure_alerting()
            api = ApiServer()
            try:
                # first_step before storm: the storm's runs stay queued (no worker), and must not delay probes
                if "first_step" in chosen:
                    print("figure 3: alert to first step", flush=True)
                    measure_first_step(plan, figures, api)
                if "storm" in chosen:
                    print("figure 2: alert storm", flush=True)
                    measure_storm(plan, figures, api)
            finally:
                api.stop()
    machine["loadavg_at_end"] = [round(v, 2) for v in os.getloadavg()]
    ordered = [figures[key] for key in ("tick", "tick_celery", "storm", "first_step", "first_step_http")]
    print_table(ordered)
    if not args.only:
        write_results(ordered, plan, args.quick, machine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
