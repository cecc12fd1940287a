"""The `local` provider's state directory: atomic JSON writes, PID files, desired replica counts,
idempotency records, and the per-service `fcntl` lock every change is made under.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from automation.providers.base import ProviderError
from automation.providers.local.processes import POLL_INTERVAL, ReplicaProcess

STATE_DIR_ENV = "AUTOMATION_STATE_DIR"
DEFAULT_STATE_DIR = ".automation/local"


def atomic_write_json(path: Path, document: Any) -> None:
    """Write via a temporary file and rename, so a reader (or a crash) never sees half a file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


class ServiceState:
    """One service's corner of the state directory: lock, PID files, logs, desired count, idempotency."""

    def __init__(self, root: Path, service: str) -> None:
        self.service = service
        self.root = root / service
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def pid_path(self, replica: int) -> Path:
        return self.root / f"replica-{replica}.pid"

    def log_path(self, replica: int) -> Path:
        return self.root / f"replica-{replica}.log"

    @contextlib.contextmanager
    def locked(self, timeout: float) -> Iterator[None]:
        """Hold the service's exclusive lock; the kernel releases it if this process dies."""
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ProviderError(
                            f"service '{self.service}' is busy: another operation held its lock "
                            f"for more than {timeout:g}s",
                            retryable=True,
                            service=self.service,
                        ) from None
                    time.sleep(POLL_INTERVAL)
            yield
        finally:
            os.close(fd)

    def replica_process(self, replica: int) -> ReplicaProcess | None:
        record = read_json(self.pid_path(replica))
        try:
            return ReplicaProcess(**record) if isinstance(record, dict) else None
        except TypeError:
            return None

    def recorded_replicas(self) -> list[int]:
        indices = []
        for path in self.root.glob("replica-*.pid"):
            suffix = path.stem.removeprefix("replica-")
            if suffix.isdigit():
                indices.append(int(suffix))
        return sorted(indices)

    def save_replica(self, process: ReplicaProcess) -> None:
        atomic_write_json(self.pid_path(process.replica), asdict(process))

    def forget_replica(self, replica: int) -> None:
        self.pid_path(replica).unlink(missing_ok=True)

    def desired_replicas(self, declared: int) -> int:
        record = read_json(self.root / "desired.json")
        replicas = record.get("replicas") if isinstance(record, dict) else None
        return replicas if isinstance(replicas, int) and replicas >= 0 else declared

    def save_desired_replicas(self, replicas: int) -> None:
        atomic_write_json(self.root / "desired.json", {"replicas": replicas, "updated_at": time.time()})

    def _idempotency_path(self, key: str) -> Path:
        return self.root / "idempotency" / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.json"

    def recall(self, key: str, operation: str, ttl: float) -> dict[str, Any] | None:
        record = read_json(self._idempotency_path(key))
        if not isinstance(record, dict) or time.time() - record.get("recorded_at", 0) > ttl:
            return None
        if record.get("operation") != operation:
            raise ProviderError(
                f"idempotency key was already used for '{record.get('operation')}' of service "
                f"'{self.service}', not '{operation}'",
                retryable=False,
                service=self.service,
                field="idempotency_key",
            )
        return {**record["result"], "deduplicated": True}

    def remember(self, key: str, operation: str, result: dict[str, Any], ttl: float) -> None:
        path = self._idempotency_path(key)
        path.parent.mkdir(exist_ok=True, mode=0o700)
        now = time.time()
        for old in path.parent.glob("*.json"):
            with contextlib.suppress(FileNotFoundError):
                if now - old.stat().st_mtime > ttl:
                    old.unlink()
        atomic_write_json(path, {"operation": operation, "recorded_at": now, "result": result})
