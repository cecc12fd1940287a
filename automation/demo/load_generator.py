"""Traffic for the demo model service, and the live metrics a canary analysis reads.

Labelled rows are sent to every replica of a service (one sender per replica); every `interval` seconds,
per replica and per version that answered, these samples are pushed: `model_latency_seconds` (the mean
time to an answer), `model_error_ratio` (answers that were errors) and `model_accuracy` (predictions equal
to the label), and the counts behind the error ratio, `model_requests` (answers) and `model_errors` (a
canary analysis judges the error rate on these counts, as a proportion), labelled `service`, `version`
(what the replica answered with) and `replica` (its port).
A replica that does not answer at all (it is being replaced) is not counted for any version.

Run it against a `local` service and the engine's push API:
`python -m automation.demo.load_generator --service recommender --dataset live.csv
 --push-url http://localhost:8000/api/v1/metrics` (the services file as the provider finds it).
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from automation.alerting.exposition import PushedSample

LATENCY = "model_latency_seconds"
ERRORS = "model_error_ratio"
ACCURACY = "model_accuracy"
REQUESTS = "model_requests"
ERROR_COUNT = "model_errors"


@dataclass
class Tally:
    answers: int = 0
    errors: int = 0
    correct: int = 0
    seconds: float = 0.0


class LoadGenerator:
    """Sends `rows` (with `labels`) to the ports `ports()` names, and pushes the tallies with `push`."""

    def __init__(
        self,
        *,
        ports: Callable[[], Sequence[int]],
        rows: Sequence[Sequence[float]],
        labels: Sequence[Any],
        push: Callable[[list[PushedSample]], Any],
        service: str,
        columns: Sequence[str] | None = None,
        interval: float = 0.5,
        pause: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.ports = ports
        self.rows = [list(map(float, row)) for row in rows]
        self.labels = list(labels)
        self.push = push
        self.service = service
        self.columns = list(columns) if columns is not None else None
        self.interval = interval
        self.pause = pause
        self.seed = seed
        self.pushed = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._tallies: dict[tuple[int, str], Tally] = {}
        self._senders: dict[int, threading.Thread] = {}
        self._flusher = threading.Thread(target=self._flush_loop, name="load-flush", daemon=True)

    def start(self) -> LoadGenerator:
        self._flusher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in [*self._senders.values(), self._flusher]:
            thread.join(10)

    def _flush_loop(self) -> None:
        try:
            while not self._stop.is_set():
                self._spawn_senders()
                self._stop.wait(self.interval)
                self.flush()
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who decides
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _spawn_senders(self) -> None:
        for port in self.ports():
            if port not in self._senders:
                thread = threading.Thread(
                    target=self._send_loop, args=(port,), name=f"load-{port}", daemon=True
                )
                self._senders[port] = thread
                thread.start()

    def _send_loop(self, port: int) -> None:
        pick = random.Random(self.seed + port)
        url = f"http://127.0.0.1:{port}/predict"
        with httpx.Client(trust_env=False, timeout=5.0) as client:
            while not self._stop.is_set():
                index = pick.randrange(len(self.rows))
                body: dict[str, Any] = {"rows": [self.rows[index]]}
                if self.columns is not None:
                    body["columns"] = self.columns
                started = time.perf_counter()
                try:
                    response = client.post(url, json=body)
                    answer = response.json()
                except (httpx.HTTPError, ValueError):
                    self._stop.wait(0.05)  # not answering: being replaced, counted for no version
                    continue
                elapsed = time.perf_counter() - started
                version = str(answer.get("version") or "")
                with self._lock:
                    tally = self._tallies.setdefault((port, version), Tally())
                    tally.answers += 1
                    if response.status_code != 200:
                        tally.errors += 1
                    else:
                        tally.seconds += elapsed
                        tally.correct += int(answer["predictions"][0] == self.labels[index])
                if self.pause:
                    self._stop.wait(self.pause)

    def flush(self) -> None:
        """Push what was counted since the last flush, at the current time."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
        now = time.time()
        samples: list[PushedSample] = []
        for (port, version), tally in sorted(tallies.items()):
            if not version or not tally.answers:
                continue
            labels = {"service": self.service, "version": version, "replica": str(port)}
            served = tally.answers - tally.errors
            samples.append(PushedSample(ERRORS, labels, tally.errors / tally.answers, now))
            samples.append(PushedSample(REQUESTS, labels, float(tally.answers), now))
            samples.append(PushedSample(ERROR_COUNT, labels, float(tally.errors), now))
            if served:
                samples.append(PushedSample(LATENCY, labels, tally.seconds / served, now))
                samples.append(PushedSample(ACCURACY, labels, tally.correct / served, now))
        if samples:
            self.push(samples)
            self.pushed += len(samples)


def http_push(url: str, token: str | None = None) -> Callable[[list[PushedSample]], Any]:
    """A `push` sending samples to the engine's push API (`POST /api/v1/metrics`, JSON)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def push(samples: list[PushedSample]) -> None:
        document = {
            "samples": [
                {"metric": s.metric, "labels": s.labels, "value": s.value, "timestamp": s.at} for s in samples
            ]
        }
        httpx.post(url, json=document, headers=headers, timeout=10.0, trust_env=False).raise_for_status()

    return push


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", required=True)
    parser.add_argument("--dataset", required=True, help="CSV or Parquet rows with a label column")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--push-url", required=True)
    parser.add_argument("--token", default=None)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=300.0, help="how long to send traffic")
    args = parser.parse_args()

    from automation.ml.datasets import read_dataset
    from automation.providers import LocalProvider

    dataset = read_dataset(args.dataset, label_column=args.label_column)
    provider = LocalProvider()

    def ports() -> list[int]:
        replicas = provider.status(args.service)["replicas"]
        return [int(r["port"]) for r in replicas if r["running"] and r["port"] is not None]

    generator = LoadGenerator(
        ports=ports,
        rows=dataset.numeric_features(field="dataset").tolist(),
        labels=dataset.labels.tolist(),
        columns=list(dataset.features.columns),
        push=http_push(args.push_url, args.token),
        service=args.service,
        interval=args.interval,
    ).start()
    try:
        time.sleep(args.seconds)
    finally:
        generator.stop()
    print(
        f"pushed {generator.pushed} samples" + (f"; errors: {generator.errors}" if generator.errors else "")
    )


if __name__ == "__main__":
    main()
