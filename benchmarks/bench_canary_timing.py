"""Time from canary start to verdict, and to rollback completion (issue 11), on real local processes.

A `local` service of three demo model servers (`automation.demo.model_service`) runs v1 under live traffic
from the demo load generator (its samples stored in the push store as `POST /api/v1/metrics` stores them);
a real worker runs the seed's Example 1 as the e2e test registers it (validate -> deploy a 10% canary ->
canary analysis -> promote / rollback -> notify a webhook on a loopback HTTP peer) for a model as accurate
as v1 but several times slower, which is rolled back. Per trial, from the moment the canary serves (the
deploy step's end):
  - to the verdict: the analysis step's end (its warm-up and window, then reading and judging);
  - to rollback completion: the rollback step's end (the canary replica replaced by v1 and healthy);
  - to the notification at the peer.
The analysis waits `--warmup` + `--window` seconds by design: the overhead is what is on top of that.

Usage, from the repository root (about 30 s a trial):
  python benchmarks/bench_canary_timing.py [--trials 5] [--warmup 2] [--window 8]
It creates its own PostgreSQL database (dropped at the end), flushes Redis db 6 (AUTOMATION_BENCH_REDIS)
around the run, and writes benchmarks/results/canary_timing.json.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results" / "canary_timing.json"
QUEUES = "critical,high,default,low,celery"
REPLICAS = 3


def start_worker(state_dir: Path) -> tuple[subprocess.Popen[bytes], Any]:
    from automation.celery import app

    node = f"bench-canary-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
    log = (state_dir / "worker.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "automation", "worker", "-P", "prefork", "-c", "2"]
        + ["-Q", QUEUES, "-n", node, "--without-gossip", "--without-mingle", "-l", "WARNING"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[node], timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start: see {state_dir / 'worker.log'}")
    return process, log


def stop_worker(process: subprocess.Popen[bytes], log: Any) -> None:
    import signal

    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    log.close()


def push_to_store(samples: list[Any]) -> None:
    from django.db import connection

    from automation.alerting.services.samples import ingest

    try:
        ingest(samples)
    finally:
        connection.close()


def workflow(name: str, service: str, warmup: float, window: float) -> Any:
    from automation.demo.ml_example import ml_model_deployment

    return ml_model_deployment(service, name=name, warmup=warmup, window=window)


def run(args: argparse.Namespace, state_dir: Path) -> dict[str, Any]:
    import yaml

    from automation import AutomationConfig, AutomationEngine
    from automation.demo.load_generator import LoadGenerator
    from automation.providers import get_provider
    from tests.ml.conftest import build_ml_files  # the e2e test's models, built from a shipped dataset
    from tests.peers import HttpPeer

    files = build_ml_files(state_dir / "ml")
    services_file = Path(os.environ["AUTOMATION_SERVICES_FILE"])
    service = f"recommender-{uuid.uuid4().hex[:6]}"
    with socket.socket() as probe:  # a free block of ports is likely above a free ephemeral one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1] // 10 * 10 + 10
    services_file.write_text(
        yaml.safe_dump(
            {
                "services": {
                    service: {
                        "command": ["{python}", "-m", "automation.demo.model_service", "--port", "{port}"],
                        "cwd": str(ROOT),
                        "port": port,
                        "replicas": REPLICAS,
                        "version": "v1",
                        "env": {"MODEL_PATH": str(files.v1), "MODEL_VERSION": "{version}"},
                        "health_url": "http://127.0.0.1:{port}/health",
                        "grace_period": 5,
                        "health_timeout": 60,
                    }
                }
            }
        )
    )
    engine = AutomationEngine(AutomationConfig(timeout_seconds=60, retry_attempts=2))
    provider = get_provider("local", services_file=str(services_file))
    provider.start(service)
    load = LoadGenerator(
        ports=lambda: [port + i for i in range(REPLICAS)],
        rows=files.live_rows,
        labels=files.live_labels,
        columns=files.columns,
        push=push_to_store,
        service=service,
        interval=0.5,
        pause=0.01,
    ).start()
    peer = HttpPeer()
    worker, log = start_worker(state_dir)
    trials = []
    try:
        time.sleep(3)  # traffic on v1 before the first canary
        for trial in range(args.trials):
            definition = workflow(
                f"ml_model_deployment_{uuid.uuid4().hex[:6]}", service, args.warmup, args.window
            )
            engine.workflow_manager.register_workflow(definition)
            handle = engine.run_workflow(
                definition.name,
                {
                    "model_path": str(files.slow),
                    "validation_dataset": str(files.validation_csv),
                    "model_version": f"v3-{trial}",
                    "notify_url": peer.url,
                },
            ).wait(300)
            steps = {step.name: step for step in handle.steps}
            if handle.status != "succeeded" or not steps["rollback"].output.get("acted"):
                raise RuntimeError(
                    f"trial {trial}: {handle.status}: {[(s.name, s.status, s.error) for s in handle.steps]}"
                )
            serving = steps["deploy_model"].finished_at.timestamp()
            received = [
                r.at for r in peer.received if r.headers.get("Idempotency-Key") == f"{handle.id}:notify"
            ]
            trials.append(
                {
                    "verdict": steps["canary_analysis"].output["verdict"],
                    "to_verdict": steps["canary_analysis"].finished_at.timestamp() - serving,
                    "to_rollback": steps["rollback"].finished_at.timestamp() - serving,
                    "to_notification": received[0] - serving,
                    "notifications": len(received),
                    "deploy": (
                        steps["deploy_model"].finished_at - steps["deploy_model"].started_at
                    ).total_seconds(),
                }
            )
            print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in trials[-1].items()}))
            time.sleep(2)  # the rolled-back replica's traffic settles before the next canary
    finally:
        stop_worker(worker, log)
        load.stop()
        peer.close()
        provider.stop(service, grace_period=1)

    def spread(key: str) -> dict[str, float]:
        values = [t[key] for t in trials]
        return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)}

    return {
        "settings": {
            "trials": args.trials,
            "warmup": args.warmup,
            "window": args.window,
            "replicas": REPLICAS,
        },
        "to_verdict": spread("to_verdict"),
        "to_rollback": spread("to_rollback"),
        "to_notification": spread("to_notification"),
        "deploy": spread("deploy"),
        "trials": trials,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--window", type=float, default=8.0)
    args = parser.parse_args()
    from benchmarks import bench_engine  # its database and environment set-up, not a copy

    bench_engine.configure_environment()
    os.environ["AUTOMATION_SERVICES_FILE"] = str(bench_engine.STATE_DIR / "services.yml")
    with bench_engine.benchmark_database():
        answer = run(args, bench_engine.STATE_DIR)
    answer["command"] = "python benchmarks/bench_canary_timing.py " + " ".join(sys.argv[1:])
    print(json.dumps({k: v for k, v in answer.items() if k != "trials"}, indent=2))
    RESULTS.write_text(json.dumps(answer, indent=2) + "\n")


if __name__ == "__main__":
    main()
