"""Releases of a `local` service: which version (and environment) each replica index should run.

The plan is `<state_dir>/<service>/release.json`: the stable release (none recorded: the services file's
declared `version` and `env`) and, while a canary runs, the canary release and the replica indices it
runs on. Every spawn of a replica reads it (so a restart or a scale keeps each replica on its release),
and `converge` replaces, one at a time, each replica whose recorded release is not the one planned.
Deploy, promote and rollback each write the plan first and then converge: interrupted, the next call
(or a redelivered step) converges on the same plan.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from automation.providers.base import ProviderError, ReplicaRestart
from automation.providers.local.processes import ReleaseEnv
from automation.providers.local.services_file import VERSION_PATTERN, ServiceSpec
from automation.providers.local.state import ServiceState, atomic_write_json, read_json

RELEASE_FILE = "release.json"
_VERSION = re.compile(VERSION_PATTERN)
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def release_env(version: str | None, env: dict[str, str]) -> ReleaseEnv:
    digest = hashlib.sha256(json.dumps([version, sorted(env.items())]).encode()).hexdigest()[:16]
    return ReleaseEnv(version=version, env=dict(env), digest=digest)


@dataclass(frozen=True)
class Canary:
    release: ReleaseEnv
    replicas: tuple[int, ...]


@dataclass(frozen=True)
class ReleasePlan:
    stable: ReleaseEnv
    canary: Canary | None = None
    #: Whether the stable release was deployed (False: the services file's declared one).
    recorded: bool = field(default=False, compare=False)

    def release_for(self, replica: int) -> ReleaseEnv:
        if self.canary is not None and replica in self.canary.replicas:
            return self.canary.release
        return self.stable


def declared_release(spec: ServiceSpec) -> ReleaseEnv:
    return release_env(spec.version, {})


def load_plan(spec: ServiceSpec, state: ServiceState) -> ReleasePlan:
    """The recorded plan; the declared release when none is (or the record is unreadable)."""
    document = read_json(_path(state))
    stable = declared_release(spec)
    if not isinstance(document, dict):
        return ReleasePlan(stable)
    recorded = _release(document.get("stable"))
    canary_document = document.get("canary")
    canary_release = _release(canary_document)
    canary = None
    if canary_release is not None and isinstance(canary_document, dict):
        indices = canary_document.get("replicas")
        if isinstance(indices, list) and all(isinstance(i, int) for i in indices):
            canary = Canary(canary_release, tuple(sorted(indices)))
    return ReleasePlan(recorded or stable, canary, recorded=recorded is not None)


def save_plan(state: ServiceState, plan: ReleasePlan) -> None:
    document: dict[str, Any] = {
        "stable": _document(plan.stable) if plan.recorded else None,
        "canary": None,
        "updated_at": time.time(),
    }
    if plan.canary is not None:
        document["canary"] = {**_document(plan.canary.release), "replicas": list(plan.canary.replicas)}
    atomic_write_json(_path(state), document)


def check_release(service: str, version: Any, env: Any) -> None:
    """Refuse a version or environment that cannot be a release, naming the field."""
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ProviderError(
            "version must be 1-100 letters, digits, '.', '_', '+' or '-', starting with a letter or digit",
            retryable=False,
            service=service,
            field="version",
        )
    if not isinstance(env, dict):
        raise ProviderError("env must be a mapping of strings", retryable=False, service=service, field="env")
    for key, value in env.items():
        # Values are never quoted: they may be secrets.
        if not isinstance(key, str) or not _ENV_NAME.match(key):
            raise ProviderError(
                "env names must be letters, digits and '_'", retryable=False, service=service, field="env"
            )
        if not isinstance(value, str) or "\x00" in value:
            raise ProviderError(
                f"env.{key} must be a string without NUL",
                retryable=False,
                service=service,
                field=f"env.{key}",
            )


def canary_replicas(service: str, desired: int, percent: float) -> tuple[int, ...]:
    """The indices a canary of `percent` runs on: the highest `round(desired * percent / 100)` (at least
    one), leaving at least one replica on the stable release to compare it with."""
    count = max(1, round(desired * percent / 100))
    if desired < 2 or count >= desired:
        raise ProviderError(
            f"service '{service}' runs {desired} replica(s): a canary on {percent:g}% of them would leave "
            "none on the stable release to compare it with; scale it up first (or deploy to 100%)",
            retryable=False,
            service=service,
            field="percent",
        )
    return tuple(range(desired - count, desired))


def check_percent(service: str, percent: Any) -> None:
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not math.isfinite(percent):
        raise ProviderError("percent must be a number", retryable=False, service=service, field="percent")
    if not 0 < percent <= 100:
        raise ProviderError("percent must be in (0, 100]", retryable=False, service=service, field="percent")


def replica_release(spec: ServiceSpec, digest: str | None) -> str:
    """A recorded replica's release digest; a record from before releases ran the declared command."""
    return digest if digest is not None else declared_release(spec).digest


def converge(
    spec: ServiceSpec,
    state: ServiceState,
    plan: ReleasePlan,
    replicas: int,
    *,
    wait_for_health: bool,
    health_timeout: float | None,
    base_dir: Path,
) -> list[ReplicaRestart]:
    """Replace, one at a time, each of replicas 0..`replicas`-1 that does not run its planned release
    (or does not run): the others keep serving meanwhile."""
    from automation.providers.local.replicas import spawn_and_record, wait_healthy

    replaced = []
    for index in range(replicas):
        want = plan.release_for(index)
        process = state.replica_process(index)
        running = process is not None and process.is_running()
        if running and process is not None and replica_release(spec, process.release) == want.digest:
            continue
        old_pid = process.pid if running and process is not None else None
        killed = (
            process.terminate(graceful=True, grace_period=spec.grace_period) if process is not None else False
        )
        state.forget_replica(index)
        new = spawn_and_record(spec, state, index, base_dir=base_dir, release=want)
        healthy = wait_healthy(spec, state, new, health_timeout) if wait_for_health else None
        replaced.append(ReplicaRestart(index, new.port, old_pid, new.pid, healthy, killed))
    return replaced


def _path(state: ServiceState) -> Path:
    return state.root / RELEASE_FILE


def _document(release: ReleaseEnv) -> dict[str, Any]:
    return {"version": release.version, "env": release.env}


def _release(document: Any) -> ReleaseEnv | None:
    if not isinstance(document, dict):
        return None
    version, env = document.get("version"), document.get("env")
    if not (version is None or isinstance(version, str)) or not isinstance(env, dict):
        return None
    return release_env(version, {str(k): str(v) for k, v in env.items()})
