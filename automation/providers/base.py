"""The service provider contract: the `ServiceProvider` base, its result shapes and the registry by name."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, TypeVar

from automation.errors import ActionError


class ProviderError(ActionError):
    """A provider could not act on a service; `service` and `field` name what was at fault, when known."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = True,
        service: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message, retryable=retryable)
        self.service = service
        self.field = field


@dataclass(frozen=True)
class ProviderResult:
    """Base of the result shapes; `to_dict()` gives the JSON-serialisable step output."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReplicaRestart(ProviderResult):
    replica: int
    port: int | None
    old_pid: int | None
    pid: int
    healthy: bool | None  # None when the caller did not wait for health
    killed: bool


@dataclass(frozen=True)
class RestartResult(ProviderResult):
    service: str
    replicas: list[ReplicaRestart]
    pid: int | None  # replica 0's new PID
    old_pid: int | None
    graceful: bool
    killed: bool  # True when any replica had to be SIGKILLed
    deduplicated: bool = False


@dataclass(frozen=True)
class StartedReplica(ProviderResult):
    replica: int
    port: int | None
    pid: int
    healthy: bool | None


@dataclass(frozen=True)
class StoppedReplica(ProviderResult):
    replica: int
    port: int | None
    pid: int
    killed: bool


@dataclass(frozen=True)
class ScaleResult(ProviderResult):
    service: str
    previous_replicas: int  # replicas running before the call
    replicas: int
    started: list[StartedReplica]
    stopped: list[StoppedReplica]
    pids: list[int]
    deduplicated: bool = False


@dataclass(frozen=True)
class StartResult(ProviderResult):
    service: str
    replicas: int
    started: list[StartedReplica]  # only the replicas this call had to start
    pids: list[int]


@dataclass(frozen=True)
class StopResult(ProviderResult):
    service: str
    stopped: list[StoppedReplica]
    killed: bool


@dataclass(frozen=True)
class ReplicaStatus(ProviderResult):
    replica: int
    port: int | None
    pid: int | None
    running: bool
    healthy: bool | None  # None when the service declares no health check
    version: str | None = None  # the release version the replica runs, when the service has versions


@dataclass(frozen=True)
class ServiceStatus(ProviderResult):
    service: str
    desired_replicas: int
    running_replicas: int
    replicas: list[ReplicaStatus]
    stable_version: str | None = None
    canary_version: str | None = None  # while a canary runs beside the stable release


@dataclass(frozen=True)
class ReleaseResult(ProviderResult):
    """What `deploy`, `promote` or `rollback` did: the versions after it, and the replicas it replaced."""

    service: str
    operation: str
    version: str | None  # the version acted on: deployed, promoted or rolled back
    stable_version: str | None
    canary_version: str | None
    canary_replicas: list[int]  # indices running the canary after the call
    replicas: list[ReplicaRestart]  # replicas this call replaced, one at a time
    deduplicated: bool = False


class ServiceProvider(ABC):
    """Restarts, scales, starts and stops named services; every method returns a JSON-serialisable dict.

    An operation given an `idempotency_key` that already completed returns the recorded result with
    `"deduplicated": true` instead of acting again, so a step re-run after a worker crash is safe.
    """

    name: ClassVar[str]

    @abstractmethod
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
        """Replace every replica's process (one at a time); a service that is not running is started."""

    @abstractmethod
    def scale(
        self,
        service: str,
        *,
        replicas: int,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Run exactly `replicas` replicas: start the missing indices, stop the highest ones."""

    @abstractmethod
    def status(self, service: str) -> dict[str, Any]:
        """Describe the desired and running replicas, without changing anything."""

    @abstractmethod
    def start(self, service: str, *, wait_for_health: bool = True) -> dict[str, Any]:
        """Ensure the service runs at its desired replica count."""

    @abstractmethod
    def stop(self, service: str, *, grace_period: float | None = None) -> dict[str, Any]:
        """Stop every replica (SIGTERM, then SIGKILL after the grace period)."""

    # Releases: a version (with the environment that selects it) on a share of the replicas beside the
    # stable one, then on all of them or on none. Optional: a provider without them refuses.

    def deploy(
        self,
        service: str,
        *,
        version: str,
        env: dict[str, str] | None = None,
        percent: float = 100.0,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Run `version` on `percent` of the replicas as a canary beside the stable release (100: on all,
        as the new stable release)."""
        raise self._no_releases(service)

    def promote(
        self,
        service: str,
        *,
        version: str | None = None,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Make the canary (`version`, when given, must be it) the stable release on every replica."""
        raise self._no_releases(service)

    def rollback(
        self,
        service: str,
        *,
        version: str | None = None,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Put the canary's replicas back on the stable release (`version`, if given, must be the canary)."""
        raise self._no_releases(service)

    def _no_releases(self, service: str) -> ProviderError:
        return ProviderError(
            f"service provider '{self.name}' does not support releases (deploy, promote, rollback)",
            retryable=False,
            service=service,
            field="provider",
        )


ProviderClass = TypeVar("ProviderClass", bound=type[ServiceProvider])

_PROVIDERS: dict[str, type[ServiceProvider]] = {}


def register_provider(cls: ProviderClass) -> ProviderClass:
    """Class decorator adding a provider under its `name`; a second provider with that name is refused."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"{cls.__qualname__} must set a non-empty class attribute `name`")
    existing = _PROVIDERS.get(name)
    if existing is not None:
        raise ValueError(
            f"A service provider named '{name}' is already registered "
            f"({existing.__module__}.{existing.__qualname__})"
        )
    _PROVIDERS[name] = cls
    return cls


def provider_names() -> list[str]:
    return sorted(_PROVIDERS)


def get_provider(name: str, **options: Any) -> ServiceProvider:
    """Build the provider registered as `name`; an unknown name or option is an error, never ignored."""
    cls = _PROVIDERS.get(name)
    if cls is None:
        raise ProviderError(
            f"unknown service provider '{name}'; known providers: {', '.join(provider_names()) or 'none'}",
            retryable=False,
            field="provider",
        )
    parameters = inspect.signature(cls).parameters.values()
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        accepted = {p.name for p in parameters if p.kind is not inspect.Parameter.VAR_POSITIONAL}
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise ProviderError(
                f"unknown option(s) {', '.join(unknown)} for service provider '{name}'; "
                f"accepted: {', '.join(sorted(accepted)) or 'none'}",
                retryable=False,
                field=unknown[0],
            )
    return cls(**options)
