"""Service providers behind `infrastructure.restart_service` and `.scale_service`, chosen by name."""

from automation.providers.base import (
    ProviderError,
    ProviderResult,
    ReleaseResult,
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
    get_provider,
    provider_names,
    register_provider,
)
from automation.providers.local import LocalProvider, ServicesFileError
from automation.providers.stub import StubCall, StubProvider

__all__ = [
    "LocalProvider",
    "ProviderError",
    "ProviderResult",
    "ReleaseResult",
    "ReplicaRestart",
    "ReplicaStatus",
    "RestartResult",
    "ScaleResult",
    "ServiceProvider",
    "ServiceStatus",
    "ServicesFileError",
    "StartResult",
    "StartedReplica",
    "StopResult",
    "StoppedReplica",
    "StubCall",
    "StubProvider",
    "get_provider",
    "provider_names",
    "register_provider",
]
