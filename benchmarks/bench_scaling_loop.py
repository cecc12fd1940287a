"""The scaling loop's tick for many targets, through Celery, as Beat runs it: can it keep within one
`monitoring_interval` (60 s), refits on their cadence included?

Setup: N targets (default 500), each reading its own push-store series of one week at 5-minute steps (a
daily cycle with its own level, phase and noise), policy `hybrid`, hourly refits, the `stub` provider.
One worker, `celery -A automation worker -c 2 -Q monitoring` (the machine's two cores). Ticks are sent as
Beat's `automation.scaling.evaluate` sends them (one `evaluate_targets` message per batch of 20, all with
the tick's time), at simulated times one interval apart starting from the end of the data, one new sample
per series every five ticks. A tick's time is from its first message sent to its last batch done (the
results' date_done).

Reported: every tick's wall time (the first ones fit forecasters: at most each batch's share of twice the
steady refit rate, the others decide reactively meanwhile), the largest, the median of the ticks after
every target has a forecaster (continuing it: the steady tick), the worker CPU per target, and the ticks
until every target had a forecaster. Target: every tick <= 60 s.

Usage: python benchmarks/bench_scaling_loop.py [--quick] [--targets N] [--ticks T]
Writes benchmarks/results/scaling_loop.json (not with --quick).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_engine  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scaling_loop.json"
STEP = 300.0
INTERVAL = 60.0


def store_history(targets: int, days: float, end: float) -> None:
    from automation.alerting.exposition import PushedSample
    from automation.alerting.services.samples import ingest

    rng = np.random.default_rng(20261129)
    points = int(days * 86400 / STEP)
    times = end - STEP * np.arange(points)[::-1]
    chunk: list[Any] = []
    for i in range(targets):
        level, phase = rng.uniform(100, 2000), rng.uniform(0, 2 * math.pi)
        shape = 1 + 0.5 * np.sin(2 * math.pi * times / 86400 + phase)
        values = level * shape * (1 + rng.normal(0, 0.05, points))
        labels = {"service": f"t{i:04d}"}
        chunk.extend(
            PushedSample("bench_load", labels, float(v), float(t)) for t, v in zip(times, values, strict=True)
        )
        if len(chunk) >= 50_000:
            ingest(chunk)
            chunk = []
    ingest(chunk)


def new_samples(targets: int, at: float) -> None:
    from automation.alerting.exposition import PushedSample
    from automation.alerting.services.samples import ingest

    rng = np.random.default_rng(int(at))
    ingest(
        [
            PushedSample("bench_load", {"service": f"t{i:04d}"}, float(rng.uniform(100, 3000)), at)
            for i in range(targets)
        ]
    )


def store_targets(targets: int, days: float) -> list[str]:
    from automation.scaling.services.targets import save_targets

    names = [f"bench-{i:04d}" for i in range(targets)]
    save_targets(
        [
            {
                "name": name,
                "service": f"t{i:04d}",
                "provider": "stub",
                "load": {
                    "metric": "bench_load",
                    "matchers": {"service": f"t{i:04d}"},
                    "step": "5m",
                    "history": f"{int(days * 24)}h",
                    "unit": "req/s",
                },
                "capacity_per_replica": 200,
                "min_replicas": 1,
                "max_replicas": 40,
                "policy": "hybrid",
                "provisioning_delay": "5m",
                "forecast": {"refit_every": "1h", "min_history": "1d", "fit_timeout": "30s"},
            }
            for i, name in enumerate(names)
        ]
    )
    return names


class Worker:
    def __init__(self) -> None:
        from automation.delivery import MONITORING_QUEUE

        self.name = f"bench-loop-{uuid.uuid4().hex[:6]}@localhost"
        self.log = (bench_engine.STATE_DIR / "worker-loop.log").open("a")
        command = [sys.executable, "-m", "celery", "-A", "automation", "worker", "-P", "prefork"]
        command += ["-c", "2", "-Q", MONITORING_QUEUE, "-n", self.name, "-l", "WARNING"]
        command += ["--without-gossip", "--without-mingle"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        from automation.celery import app

        deadline = time.monotonic() + 90
        while not app.control.ping(destination=[self.name], timeout=0.5):
            if time.monotonic() > deadline:
                raise RuntimeError("the loop worker did not start (see its log)")

    def cpu_seconds(self) -> float:
        """User + system CPU of the worker and its pool processes, from /proc."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for pid in [self.process.pid, *self._children()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError, ValueError):
                pass
        return total

    def _children(self) -> list[int]:
        try:
            text = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def stop(self) -> None:
        import signal

        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


def tick(names: list[str], now: float) -> float:
    from automation.celery import app
    from automation.delivery import MONITORING_QUEUE
    from automation.scaling.services.ticks import tick_batches

    started = time.time()
    results = [
        app.send_task("automation.scaling.evaluate_targets", (batch, now, INTERVAL), queue=MONITORING_QUEUE)
        for batch in tick_batches(names)
    ]
    ended = 0.0
    for result in results:
        result.get(timeout=1800)
        done = result.date_done
        done = datetime.fromisoformat(done) if isinstance(done, str) else done
        ended = max(ended, (done if done.tzinfo else done.replace(tzinfo=UTC)).timestamp())
    return ended - started


def fitted(names: list[str]) -> int:
    from automation.models import ScalingState

    return ScalingState.objects.filter(target__name__in=names, forecaster__isnull=False).count()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="60 targets, two days of history, 6 ticks")
    parser.add_argument("--targets", type=int, default=500)
    parser.add_argument("--ticks", type=int, default=None, help="default: until all are fitted, plus 5")
    args = parser.parse_args()
    targets, days = (60, 2.0) if args.quick else (args.targets, 7.0)
    bench_engine.configure_environment()
    print(f"logs in {bench_engine.STATE_DIR}", flush=True)
    with bench_engine.benchmark_database():
        from automation import AutomationConfig
        from automation.config.apply import apply_config

        apply_config(AutomationConfig(enable_predictive_scaling=True, monitoring_interval=int(INTERVAL)))
        end = float(int(time.time() // STEP * STEP))
        began = time.perf_counter()
        store_history(targets, days, end)
        names = store_targets(targets, days)
        print(
            f"stored {targets} targets x {int(days * 86400 / STEP)} samples "
            f"in {time.perf_counter() - began:.0f} s"
        )
        worker = Worker()
        rows: list[dict[str, Any]] = []
        try:
            limit = args.ticks or (6 if args.quick else 10_000)
            all_fitted_at = None
            k = 0
            while k < limit:
                now = end + 1 + INTERVAL * k
                if k and k % 5 == 0:
                    new_samples(targets, end + STEP * (k // 5))
                cpu = worker.cpu_seconds()
                wall = tick(names, now)
                cpu = worker.cpu_seconds() - cpu
                count = fitted(names)
                rows.append(
                    {"tick": k, "seconds": round(wall, 2), "worker_cpu": round(cpu, 2), "fitted": count}
                )
                print(
                    f"  tick {k}: {wall:.1f} s, worker CPU {cpu:.1f} s, {count}/{targets} fitted", flush=True
                )
                if all_fitted_at is None and count == targets:
                    all_fitted_at = k
                    if args.ticks is None and not args.quick:
                        limit = k + 6
                k += 1
        finally:
            worker.stop()
    steady = [r for r in rows if all_fitted_at is not None and r["tick"] > all_fitted_at]
    result = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_scaling_loop.py" + (" --quick" if args.quick else ""),
        "machine": bench_engine.machine_info(),
        "targets": targets,
        "history_days": days,
        "ticks": rows,
        "largest_tick_seconds": max(r["seconds"] for r in rows),
        "steady_tick_seconds": statistics.median(r["seconds"] for r in steady) if steady else None,
        "steady_cpu_per_target_ms": round(
            1000 * statistics.median(r["worker_cpu"] for r in steady) / targets, 1
        )
        if steady
        else None,
        "ticks_until_all_fitted": all_fitted_at,
        "target": "every tick <= 60 s",
        "met": max(r["seconds"] for r in rows) <= INTERVAL,
    }
    print(json.dumps({k: v for k, v in result.items() if k not in ("ticks", "machine")}, indent=1))
    if not args.quick:
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
