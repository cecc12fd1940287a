"""A tiny HTTP service for the demo and tests: `GET /health` answers 200 with its PID; SIGTERM drains.

Flags: --port; --drain SECONDS waited after SIGTERM before exiting; --ignore-sigterm so only SIGKILL stops
it; --unhealthy to answer 503; --startup-delay SECONDS before listening. `ECHO_MESSAGE` is echoed back.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HealthHandler(BaseHTTPRequestHandler):
    unhealthy = False

    def do_GET(self) -> None:
        if self.path != "/health":
            self.send_error(404)
            return
        body = json.dumps(
            {
                "pid": os.getpid(),
                "port": self.server.server_port,  # type: ignore[attr-defined]
                "message": os.environ.get("ECHO_MESSAGE"),
            }
        ).encode()
        self.send_response(503 if self.unhealthy else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the replica log to lifecycle lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--drain", type=float, default=0.0)
    parser.add_argument("--ignore-sigterm", action="store_true")
    parser.add_argument("--unhealthy", action="store_true")
    parser.add_argument("--startup-delay", type=float, default=0.0)
    args = parser.parse_args()

    # A flag, not a threading.Event: the handler runs in the main thread, and setting an Event there can
    # deadlock when the signal lands while that thread holds the Event's lock inside `wait()` (a replica
    # stopped just after it started then ignored SIGTERM until its grace period ran out).
    terminating: list[int] = []
    if args.ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda signum, frame: terminating.append(signum))

    time.sleep(args.startup_delay)
    HealthHandler.unhealthy = args.unhealthy
    server = ThreadingHTTPServer(("127.0.0.1", args.port), HealthHandler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    print(f"echo_service pid {os.getpid()} listening on {args.port}", flush=True)

    while not terminating:
        time.sleep(0.05)
    print(f"echo_service pid {os.getpid()} got SIGTERM, draining {args.drain}s", flush=True)
    time.sleep(args.drain)
    server.shutdown()
    server.server_close()
    print(f"echo_service pid {os.getpid()} stopped", flush=True)


if __name__ == "__main__":
    main()
