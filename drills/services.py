"""The drills' own Redis and PostgreSQL servers, on free loopback ports, that a drill can stop and restart."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis


class ServiceError(RuntimeError):
    """A server did not start or stop as asked."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise ServiceError(f"{what} not reached within {timeout} s")
        time.sleep(0.05)


class RedisServer:
    """redis-server on 127.0.0.1:`port`, without persistence or with AOF (fsync every second).

    No RDB snapshots in either mode: without AOF a restart starts empty, as a cache-configured Redis does.
    """

    def __init__(self, directory: Path, *, aof: bool, on_spawn: Callable[[int], None] | None = None) -> None:
        self.directory = directory
        self.on_spawn = on_spawn
        self.directory.mkdir(parents=True, exist_ok=True)
        self.aof = aof
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceError("redis-server is not installed")
        command = [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.aof else "no",
            "--appendfsync", "everysec",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.starts += 1
        self.process = subprocess.Popen(command, start_new_session=True)
        if self.on_spawn is not None:
            self.on_spawn(self.process.pid)
        _wait(self.ping, 20, f"redis-server on port {self.port} answering PING")

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def shutdown(self, *, nosave: bool = True) -> None:
        """`redis-cli shutdown [nosave]` (AOF, when on, is still flushed), then wait for the exit."""
        subprocess.run(
            ["redis-cli", "-p", str(self.port), "shutdown", "nosave" if nosave else "save"],
            capture_output=True,
            timeout=20,
        )
        if self.process is not None:
            self.process.wait(20)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise ServiceError(f"PostgreSQL's {name} is not installed (looked in /usr/lib/postgresql/*/bin)")
    return on_path


class PostgresServer:
    """A PostgreSQL instance of its own (initdb into `directory`), trust auth, on 127.0.0.1:`port`.

    As root, the server binaries run as the `postgres` user, which PostgreSQL requires.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.started = False

    def _as_owner(self, *command: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *command]
        return list(command)

    def _run(self, *command: str) -> None:
        done = subprocess.run(self._as_owner(*command), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ServiceError(f"{' '.join(command[:2])} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self._run(_postgres_bin("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")  # fmt: skip
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory}"
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, "start")  # fmt: skip
        self.started = True

    def restart_fast(self) -> None:
        """`pg_ctl restart -m fast`: connections are terminated; the server is back when this returns."""
        # -l again: without it the restarted server would write to (and hold open) our captured stdout.
        self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-m", "fast", "restart")  # fmt: skip

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.started:
            self.started = False
            try:
                self._run(_postgres_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", "immediate", "stop")
            except ServiceError:
                if (self.data / "postmaster.pid").exists():
                    raise  # still running: say so; a server already gone is what we wanted
