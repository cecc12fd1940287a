"""Celery processes of a drill, started with the README's commands, each in its own process group, plus a
supervisor that restarts an exited worker the way systemd's `Restart=always` would (and records the exit)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: The README's worker command consumes every queue: the priorities and the intake queue `celery`.
ALL_QUEUES = "critical,high,default,low,celery"
#: Celery's log line prefix: `[2025-01-31 12:00:00,123: INFO/MainProcess] ...` (local time).
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}): (\w+)/([^\]]+)\] (.*)$")


class ProcessError(RuntimeError):
    """A Celery process did not become ready, or exited when it should not have."""


@dataclass(frozen=True)
class LogLine:
    at: float
    level: str
    text: str


def parse_log(text: str) -> list[LogLine]:
    """Celery's timestamped lines (continuation lines, such as tracebacks, are folded into their line)."""
    lines: list[LogLine] = []
    for raw in text.splitlines():
        match = _STAMP.match(raw)
        if match:
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
            at = stamp.timestamp() + int(match.group(2)) / 1000
            lines.append(LogLine(at=at, level=match.group(3), text=match.group(5)))
        elif lines and raw.strip():
            last = lines[-1]
            lines[-1] = LogLine(at=last.at, level=last.level, text=f"{last.text}\n{raw}")
    return lines


class CeleryProcess:
    """`celery -A automation worker|beat ...` with its output in a log file of its own."""

    def __init__(
        self, kind: str, args: list[str], *, name: str, log_dir: Path, env: dict[str, str],
        on_spawn: Callable[[int], None] | None = None,
    ) -> None:  # fmt: skip
        self.kind = kind
        self.on_spawn = on_spawn
        self.args = args
        self.name = name
        self.log_dir = log_dir
        self.env = env
        self.generation = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir / f"{name}.log"
        self.previous_logs: list[Path] = []
        self.stopping = False

    @classmethod
    def worker(cls, *, name: str, concurrency: int, **options: Any) -> CeleryProcess:
        node = f"{name}@{socket.gethostname()}"
        args = ["worker", "-Q", ALL_QUEUES, "-c", str(concurrency), "-n", node, "-l", "INFO"]
        return cls("worker", args, name=name, **options)

    @classmethod
    def beat(cls, *, name: str, **options: Any) -> CeleryProcess:
        return cls("beat", ["beat", "-l", "INFO"], name=name, **options)

    def start(self, *, ready_timeout: float = 90.0, abort: threading.Event | None = None) -> None:
        if self.generation:
            self.previous_logs.append(self.log_path)
            self.log_path = self.log_dir / f"{self.name}.{self.generation}.log"
        self.generation += 1
        self.stopping = False
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "automation", *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.on_spawn is not None:
            self.on_spawn(self.process.pid)
        self.wait_ready(ready_timeout, abort)

    def wait_ready(self, timeout: float, abort: threading.Event | None = None) -> None:
        marker = " ready." if self.kind == "worker" else "beat: Starting..."
        deadline = time.monotonic() + timeout
        while marker not in self.log_path.read_text(errors="replace"):
            if not self.alive:
                raise ProcessError(f"{self.name} exited at start: {self.tail()}")
            if abort is not None and abort.is_set():
                raise ProcessError(f"{self.name}: start abandoned (the drill is ending)")
            if time.monotonic() > deadline:
                raise ProcessError(f"{self.name} not ready after {timeout} s: {self.tail()}")
            time.sleep(0.1)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the whole process group (the main process and every pool child)."""
        self.stopping = True
        os.killpg(self.pid, signum)

    def wait_exit(self, timeout: float) -> int | None:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if not self.alive:
            return
        self.signal_group(signal.SIGTERM)
        if self.wait_exit(20) is None:
            self.kill_group()

    def kill_group(self) -> None:
        self.stopping = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.wait_exit(10)

    def logs(self) -> list[Path]:
        return [*self.previous_logs, self.log_path]

    def lines(self) -> list[LogLine]:
        found: list[LogLine] = []
        for path in self.logs():
            if path.exists():
                found.extend(parse_log(path.read_text(errors="replace")))
        return found

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@dataclass(frozen=True)
class Exit:
    """A supervised process that exited on its own: when it was seen gone, its code, its last words."""

    name: str
    at: float
    code: int | None
    last_error: str
    #: Stopped cleanly by a signal the drill did not send (another program on the machine): a disturbance
    #: of the drill, not a fault of the engine.
    outside_stop: bool = False


class Supervisor:
    """Restarts supervised processes that exit unasked, one second later (systemd's `RestartSec=1`)."""

    def __init__(self, *, max_restarts: int = 20) -> None:
        self.watched: list[CeleryProcess] = []
        self.exits: list[Exit] = []
        self.max_restarts = max_restarts
        self.restart_errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="drill-supervisor", daemon=True)
        self._thread.start()

    def watch(self, process: CeleryProcess) -> None:
        self.watched.append(process)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            for process in list(self.watched):
                if process.alive or process.stopping or process.process is None:
                    continue
                code = process.process.returncode
                said = last_error(process)
                clean = code in (0, -signal.SIGTERM, -signal.SIGINT) and not said.startswith("CRITICAL")
                self.exits.append(Exit(process.name, time.time(), code, said, outside_stop=clean))
                if len(self.exits) > self.max_restarts:
                    process.stopping = True  # give up: the drill reports it
                    continue
                if self._stop.wait(1.0):
                    return
                try:
                    process.start(abort=self._stop)
                except ProcessError as exc:
                    self.restart_errors.append(str(exc)[:500])
                    process.stopping = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def last_error(process: CeleryProcess) -> str:
    """The last CRITICAL line of a process's current log, else its last ERROR line (first line of it)."""
    lines = parse_log(process.tail(200_000))
    for level in ("CRITICAL", "ERROR"):
        for line in reversed(lines):
            if line.level == level:
                return f"{line.level} {line.text.splitlines()[0][:300]}"
    tail = process.tail(300).strip()
    return tail.splitlines()[-1][:300] if tail else ""
