"""The `stub` provider: in-memory services with fake PIDs, for users' own tests; it records every call."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from automation.providers.base import (
    ProviderError,
    ReplicaRestart,
    ReplicaStatus,
    RestartResult,
    ScaleResult,
    ServiceProvider,
    ServiceStatus,
    StartedReplica,
    StartResult,
    StoppedReplica,
    StopResult,
    register_provider,
)


@dataclass(frozen=True)
class StubCall:
    operation: str
    service: str
    options: dict[str, Any]


@dataclass
class StubService:
    port: int | None
    pids: dict[int, int] = field(default_factory=dict)  # replica index -> fake PID of a running replica
    desired: int = 1


@register_provider
class StubProvider(ServiceProvider):
    """Acts on nothing: services are dict entries, PIDs come from a counter.

    `calls` lists every call in order; `fail(service, operation, error)` makes the next such call raise.
    """

    name: ClassVar[str] = "stub"

    def __init__(self, *, services: Mapping[str, int] | Iterable[str] = (), first_pid: int = 10_000) -> None:
        self.services: dict[str, StubService] = {}
        self.calls: list[StubCall] = []
        self._pids = itertools.count(first_pid)
        self._failures: dict[tuple[str, str], list[Exception]] = {}
        self._recorded: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        declared = services.items() if isinstance(services, Mapping) else ((name, 1) for name in services)
        for name, replicas in declared:
            self.add_service(name, replicas=replicas)

    def add_service(
        self, name: str, *, replicas: int = 1, port: int | None = None, running: bool = True
    ) -> None:
        """Declare `name`; when `running`, its replicas already have PIDs."""
        self.services[name] = service = StubService(port=port, desired=replicas)
        if running:
            service.pids = {index: next(self._pids) for index in range(replicas)}

    def fail(self, service: str, operation: str, error: Exception | None = None) -> None:
        """Make the next `operation` on `service` raise `error` (by default a retryable ProviderError)."""
        failure = error or ProviderError(f"stub failure of {operation} on '{service}'", service=service)
        self._failures.setdefault((service, operation), []).append(failure)

    def pid(self, service: str, replica: int = 0) -> int | None:
        return self._service(service).pids.get(replica)

    # -- the contract

    def restart(
        self,
        service: str,
        *,
        graceful: bool = True,
        grace_period: float | None = None,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        options = {
            "graceful": graceful,
            "grace_period": grace_period,
            "wait_for_health": wait_for_health,
            "health_timeout": health_timeout,
            "idempotency_key": idempotency_key,
        }
        stub = self._begin("restart", service, options)
        recorded = self._recall(service, "restart", idempotency_key)
        if recorded is not None:
            return recorded
        replicas = []
        for index in sorted(set(range(stub.desired)) | set(stub.pids)):
            old_pid = stub.pids.get(index)
            stub.pids[index] = next(self._pids)
            healthy = True if wait_for_health else None
            killed = old_pid is not None and not graceful
            replicas.append(
                ReplicaRestart(index, self._port(stub, index), old_pid, stub.pids[index], healthy, killed)
            )
        result = RestartResult(
            service=service,
            replicas=replicas,
            pid=replicas[0].pid if replicas else None,
            old_pid=replicas[0].old_pid if replicas else None,
            graceful=graceful,
            killed=any(replica.killed for replica in replicas),
        ).to_dict()
        return self._remember(service, "restart", idempotency_key, result)

    def scale(
        self,
        service: str,
        *,
        replicas: int,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        options = {
            "replicas": replicas,
            "wait_for_health": wait_for_health,
            "health_timeout": health_timeout,
            "idempotency_key": idempotency_key,
        }
        stub = self._begin("scale", service, options)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ProviderError(
                "replicas must be a non-negative integer", retryable=False, service=service, field="replicas"
            )
        recorded = self._recall(service, "scale", idempotency_key)
        if recorded is not None:
            return recorded
        previous = len(stub.pids)
        stub.desired = replicas
        stopped = [
            self._stop_replica(stub, index) for index in sorted(stub.pids, reverse=True) if index >= replicas
        ]
        result = ScaleResult(
            service=service,
            previous_replicas=previous,
            replicas=replicas,
            started=self._start_missing(stub, wait_for_health),
            stopped=stopped,
            pids=[stub.pids[index] for index in sorted(stub.pids)],
        ).to_dict()
        return self._remember(service, "scale", idempotency_key, result)

    def status(self, service: str) -> dict[str, Any]:
        stub = self._begin("status", service, {})
        replicas = [
            ReplicaStatus(
                index, self._port(stub, index), stub.pids.get(index), index in stub.pids, index in stub.pids
            )
            for index in sorted(set(range(stub.desired)) | set(stub.pids))
        ]
        return ServiceStatus(service, stub.desired, len(stub.pids), replicas).to_dict()

    def start(self, service: str, *, wait_for_health: bool = True) -> dict[str, Any]:
        stub = self._begin("start", service, {"wait_for_health": wait_for_health})
        started = self._start_missing(stub, wait_for_health)
        return StartResult(
            service, stub.desired, started, [stub.pids[i] for i in sorted(stub.pids)]
        ).to_dict()

    def stop(self, service: str, *, grace_period: float | None = None) -> dict[str, Any]:
        stub = self._begin("stop", service, {"grace_period": grace_period})
        stopped = [self._stop_replica(stub, index) for index in sorted(stub.pids, reverse=True)]
        return StopResult(service, stopped, killed=False).to_dict()

    # -- internals

    def _service(self, service: str) -> StubService:
        stub = self.services.get(service)
        if stub is None:
            raise ProviderError(
                f"unknown service '{service}'; the stub provider declares: "
                f"{', '.join(sorted(self.services)) or 'none'}",
                retryable=False,
                service=service,
                field="service",
            )
        return stub

    def _begin(self, operation: str, service: str, options: dict[str, Any]) -> StubService:
        self.calls.append(StubCall(operation, service, options))
        stub = self._service(service)
        queued = self._failures.get((service, operation))
        if queued:
            raise queued.pop(0)
        return stub

    def _recall(self, service: str, operation: str, key: str | None) -> dict[str, Any] | None:
        if key is None or (service, key) not in self._recorded:
            return None
        recorded_operation, result = self._recorded[(service, key)]
        if recorded_operation != operation:
            raise ProviderError(
                f"idempotency key was already used for '{recorded_operation}' of service '{service}'",
                retryable=False,
                service=service,
                field="idempotency_key",
            )
        return {**result, "deduplicated": True}

    def _remember(
        self, service: str, operation: str, key: str | None, result: dict[str, Any]
    ) -> dict[str, Any]:
        if key is not None:
            self._recorded[(service, key)] = (operation, result)
        return result

    def _port(self, stub: StubService, index: int) -> int | None:
        return None if stub.port is None else stub.port + index

    def _start_missing(self, stub: StubService, wait_for_health: bool) -> list[StartedReplica]:
        started = []
        for index in range(stub.desired):
            if index not in stub.pids:
                stub.pids[index] = next(self._pids)
                healthy = True if wait_for_health else None
                started.append(StartedReplica(index, self._port(stub, index), stub.pids[index], healthy))
        return started

    def _stop_replica(self, stub: StubService, index: int) -> StoppedReplica:
        return StoppedReplica(index, self._port(stub, index), stub.pids.pop(index), killed=False)
