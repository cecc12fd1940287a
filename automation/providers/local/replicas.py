"""Replica-level steps the `local` provider composes: find the running, spawn and record, wait for
health, start the missing, stop one, and report each replica's status.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from automation.providers.base import ReplicaStatus, StartedReplica, StoppedReplica
from automation.providers.local.health import PROBE_TIMEOUT, await_health, probe_health
from automation.providers.local.processes import ReleaseEnv, ReplicaProcess, spawn_replica
from automation.providers.local.releases import load_plan
from automation.providers.local.services_file import ServiceSpec
from automation.providers.local.state import ServiceState


def running_replicas(state: ServiceState) -> dict[int, ReplicaProcess]:
    """The recorded replicas whose process is still alive, by replica index."""
    running = {}
    for index in state.recorded_replicas():
        process = state.replica_process(index)
        if process is not None and process.is_running():
            running[index] = process
    return running


def spawn_and_record(
    spec: ServiceSpec, state: ServiceState, replica: int, *, base_dir: Path, release: ReleaseEnv | None = None
) -> ReplicaProcess:
    """Start one replica on its release (`release`, else the one the service's plan gives its index) and
    write its PID file."""
    if release is None:
        release = load_plan(spec, state).release_for(replica)
    process = spawn_replica(
        spec,
        replica,
        service=state.service,
        base_dir=base_dir,
        log_path=state.log_path(replica),
        release=release,
    )
    state.save_replica(process)
    return process


def wait_healthy(
    spec: ServiceSpec, state: ServiceState, process: ReplicaProcess, timeout: float | None
) -> bool:
    """Wait for one replica's health (see `await_health`), naming its service and log in any error."""
    return await_health(
        spec, process, service=state.service, log_path=state.log_path(process.replica), timeout=timeout
    )


def start_missing(
    spec: ServiceSpec,
    state: ServiceState,
    replicas: int,
    wait_for_health: bool,
    health_timeout: float | None,
    *,
    base_dir: Path,
) -> list[StartedReplica]:
    """Start each of replicas 0..`replicas`-1 that is not running."""
    running = running_replicas(state)
    # Spawn every missing replica first, then wait: they warm up in parallel.
    spawned = [
        spawn_and_record(spec, state, index, base_dir=base_dir)
        for index in range(replicas)
        if index not in running
    ]
    return [
        StartedReplica(
            replica=process.replica,
            port=process.port,
            pid=process.pid,
            healthy=wait_healthy(spec, state, process, health_timeout) if wait_for_health else None,
        )
        for process in spawned
    ]


def stop_replica(
    spec: ServiceSpec,
    state: ServiceState,
    process: ReplicaProcess,
    *,
    graceful: bool,
    grace_period: float | None,
) -> StoppedReplica:
    """Terminate one replica (the spec's grace period unless given) and remove its PID file."""
    grace = spec.grace_period if grace_period is None else grace_period
    killed = process.terminate(graceful=graceful, grace_period=grace)
    state.forget_replica(process.replica)
    return StoppedReplica(replica=process.replica, port=process.port, pid=process.pid, killed=killed)


def stop_replicas(
    spec: ServiceSpec,
    state: ServiceState,
    processes: list[ReplicaProcess],
    *,
    graceful: bool,
    grace_period: float | None,
) -> list[StoppedReplica]:
    """Terminate several replicas at once: SIGTERM to all first, then each waited for within the same
    grace period, so stopping N replicas that each finish their work takes one grace period, not N."""
    grace = spec.grace_period if grace_period is None else grace_period
    if graceful:
        for process in processes:
            if process.is_running():
                process.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    return [
        stop_replica(
            spec,
            state,
            process,
            graceful=graceful,
            grace_period=max(0.0, deadline - time.monotonic()),
        )
        for process in processes
    ]


def replica_statuses(spec: ServiceSpec, state: ServiceState, desired: int) -> list[ReplicaStatus]:
    """Running and healthy, for each desired or recorded replica; takes no lock."""
    replicas = []
    with httpx.Client(trust_env=False, timeout=PROBE_TIMEOUT) as client:
        for index in sorted(set(range(desired)) | set(state.recorded_replicas())):
            process = state.replica_process(index)
            running = process is not None and process.is_running()
            healthy: bool | None = None
            if spec.health_url is not None:
                healthy = running and probe_health(client, spec, index)
            replicas.append(
                ReplicaStatus(
                    replica=index,
                    port=spec.port_of(index),
                    pid=process.pid if running and process is not None else None,
                    running=running,
                    healthy=healthy,
                    version=_version(spec, process) if running and process is not None else None,
                )
            )
    return replicas


def _version(spec: ServiceSpec, process: ReplicaProcess) -> str | None:
    # A record from before releases has no version: it ran the declared command.
    return process.version if process.release is not None else spec.version
