"""The peer the drills' workflows call: a threaded HTTP server on loopback that records every request
(path, Idempotency-Key, when it arrived and when it was answered) and answers by path after a delay."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    delay: float = 0.0


@dataclass
class Delivery:
    """One request as the receiver saw it; `answered` stays None while it is being answered."""

    path: str
    key: str
    arrived: float
    status: int
    answered: float | None = None
    client_gone: bool = False

    @property
    def applied(self) -> bool:
        """A 2xx answer means the receiver applied the effect (it does so on arrival)."""
        return 200 <= self.status < 300


class Receiver:
    """Answers `respond(path) -> Reply`; keeps every delivery and the peak of requests in flight at once."""

    def __init__(self, respond: Callable[[str], Reply] | None = None) -> None:
        self.respond: Callable[[str], Reply] = respond or (lambda _path: Reply())
        self.deliveries: list[Delivery] = []
        self._in_flight = 0
        #: (time, requests in flight just after it): every change, to find the peak within any window.
        self.concurrency: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                reply = receiver.respond(self.path)
                delivery = Delivery(
                    path=self.path,
                    key=self.headers.get("Idempotency-Key", ""),
                    arrived=time.time(),
                    status=reply.status,
                )
                receiver._enter(delivery)
                try:
                    if reply.delay:
                        time.sleep(reply.delay)
                    payload = json.dumps({"ok": 200 <= reply.status < 300}).encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    delivery.client_gone = True  # the caller died or gave up mid-request
                finally:
                    receiver._leave(delivery)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, name="drill-receiver", daemon=True)
        self._thread.start()

    def _enter(self, delivery: Delivery) -> None:
        with self._lock:
            self.deliveries.append(delivery)
            self._in_flight += 1
            self.concurrency.append((delivery.arrived, self._in_flight))

    def _leave(self, delivery: Delivery) -> None:
        with self._lock:
            delivery.answered = time.time()
            self._in_flight -= 1
            self.concurrency.append((delivery.answered, self._in_flight))

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def arrived(self, path_part: str) -> list[Delivery]:
        return [d for d in self.snapshot() if path_part in d.path]

    def peak_in_flight(self, since: float = 0.0) -> int:
        with self._lock:
            return max((count for at, count in self.concurrency if at >= since), default=0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
