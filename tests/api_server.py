"""A real `automation serve` process on a free loopback port, for the tests that talk HTTP to it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port


class ApiServer:
    """`automation serve --bind 127.0.0.1:PORT`; its access log (one line per request) goes to `log_path`."""

    def __init__(self, *, log_path: Path, tokens: str = "", workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if k != "AUTOMATION_API_TOKENS"}
        if tokens:
            env["AUTOMATION_API_TOKENS"] = tokens
        self._log = open(log_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "automation.cli.main", "serve", "--bind", f"127.0.0.1:{self.port}"]
            + ["--workers", str(workers)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"API server did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text()
