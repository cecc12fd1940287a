"""A small model server for the demo and tests: `POST /predict` answers a model's predictions, `GET /health`
its version, `GET /metrics` per-version Prometheus metrics; SIGTERM stops it.

The model is `MODEL_PATH` (or --model): a skops or ONNX file, loaded as `ml.validate_model` loads it, so
never a pickle. Its version is `MODEL_VERSION` (or --version). `ml.deploy_model` sets both on the replicas
of a release. Run it as `python -m automation.demo.model_service --port 8500`.

`POST /predict` takes `{"rows": [[...], ...]}` (features in the model's order), or with `"columns": [...]`
for a scikit-learn model fitted on named columns; it answers `{"predictions": [...], "version": ...}`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

#: Largest request body read.
MAX_BODY = 1 << 20


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, predictor: Any, version: str) -> None:
        super().__init__(("127.0.0.1", port), ModelHandler)
        self.predictor = predictor
        self.version = version
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "model_requests", "Predict requests answered", ["version"], registry=self.registry
        )
        self.errors = Counter(
            "model_request_errors", "Predict requests that failed", ["version"], registry=self.registry
        )
        self.latency = Histogram(
            "model_predict_seconds", "Time to predict one request", ["version"], registry=self.registry
        )


class ModelHandler(BaseHTTPRequestHandler):
    server: ModelServer

    def do_GET(self) -> None:
        if self.path == "/health":
            self._json(
                200, {"pid": os.getpid(), "port": self.server.server_port, "version": self.server.version}
            )
        elif self.path == "/metrics":
            body = generate_latest(self.server.registry)
            self._send(200, body, "text/plain; version=0.0.4")
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        if self.path != "/predict":
            self._json(404, {"error": "not found"})
            return
        server = self.server
        started = time.perf_counter()
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                raise ValueError(f"body must be 1 to {MAX_BODY} bytes")
            request = json.loads(self.rfile.read(length))
            predictions = server.predictor.predict(_features(request))
        except Exception as exc:  # noqa: BLE001 - any fault of one request is that request's answer
            server.errors.labels(server.version).inc()
            self._json(400, {"error": f"{type(exc).__name__}: {exc}", "version": server.version})
            return
        server.latency.labels(server.version).observe(time.perf_counter() - started)
        server.requests.labels(server.version).inc()
        self._json(200, {"predictions": predictions.tolist(), "version": server.version})

    def _json(self, status: int, document: dict[str, Any]) -> None:
        self._send(status, json.dumps(document).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the replica log to lifecycle lines


def _features(request: Any) -> Any:
    if not isinstance(request, dict) or not isinstance(request.get("rows"), list):
        raise ValueError('expected {"rows": [[...], ...]}')
    columns = request.get("columns")
    if columns is not None:
        import pandas as pd

        return pd.DataFrame(request["rows"], columns=columns)
    return request["rows"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default=os.environ.get("MODEL_PATH"))
    parser.add_argument("--version", default=os.environ.get("MODEL_VERSION", ""))
    args = parser.parse_args()
    if not args.model:
        sys.exit("model_service: give --model or MODEL_PATH")

    from automation.ml.artifacts import load_model
    from automation.ml.errors import ModelError

    try:
        predictor = load_model(args.model)
    except ModelError as exc:
        sys.exit(f"model_service: {exc}")
    server = ModelServer(args.port, predictor, args.version)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.set())
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    print(f"model_service pid {os.getpid()} version {args.version} listening on {args.port}", flush=True)
    stopping.wait()
    server.shutdown()
    server.server_close()
    print(f"model_service pid {os.getpid()} stopped", flush=True)


if __name__ == "__main__":
    main()
