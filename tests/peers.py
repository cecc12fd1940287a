"""A real HTTP peer on loopback for tests: records every request, answers by script, dedups by key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=lambda: {"ok": True})
    delay: float = 0.0


class HttpPeer:
    """Answers with `responder(request) -> Answer` (default 200 {"ok": true}); keeps what it received.

    `deliveries` counts the successful requests per Idempotency-Key; `effects` holds the keys whose
    effect was applied (once each), as a receiver that deduplicates by key would.
    """

    def __init__(self, responder: Callable[[Received], Answer] | None = None) -> None:
        self.responder = responder or (lambda _: Answer())
        self.received: list[Received] = []
        self.effects: dict[str, int] = {}
        self.deliveries: dict[str, int] = {}
        self._lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                request = Received(self.command, self.path, dict(self.headers.items()), body, time.time())
                with peer._lock:
                    peer.received.append(request)
                answer = peer.responder(request)
                if answer.delay:
                    time.sleep(answer.delay)
                key = request.headers.get("Idempotency-Key")
                if key and 200 <= answer.status < 300:
                    with peer._lock:
                        peer.deliveries[key] = peer.deliveries.get(key, 0) + 1
                        peer.effects.setdefault(key, 1)  # applied once, whatever the deliveries
                payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def paths(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
