"""`LocalProvider`: the `local` service provider, which supervises the processes of a services file on
this host; each change to a service runs under that service's lock and is deduplicated by idempotency key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from automation.providers.base import (
    ProviderError,
    ReleaseResult,
    ReplicaRestart,
    RestartResult,
    ScaleResult,
    ServiceProvider,
    ServiceStatus,
    StartResult,
    StopResult,
    register_provider,
)
from automation.providers.local.processes import reap_children
from automation.providers.local.releases import (
    Canary,
    ReleasePlan,
    canary_replicas,
    check_percent,
    check_release,
    converge,
    load_plan,
    release_env,
    save_plan,
)
from automation.providers.local.replicas import (
    replica_statuses,
    running_replicas,
    spawn_and_record,
    start_missing,
    stop_replicas,
    wait_healthy,
)
from automation.providers.local.services_file import (
    DEFAULT_SERVICES_FILE,
    SERVICES_FILE_ENV,
    ServicesFile,
    ServiceSpec,
    load_services_file,
)
from automation.providers.local.state import DEFAULT_STATE_DIR, STATE_DIR_ENV, ServiceState


@register_provider
class LocalProvider(ServiceProvider):
    """Supervises the processes of a services file on this host."""

    name: ClassVar[str] = "local"

    def __init__(
        self,
        *,
        services_file: str | os.PathLike[str] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        lock_timeout: float = 300.0,
        idempotency_ttl: float = 7 * 24 * 3600.0,
    ) -> None:
        # Resolved now, so a worker that later changes directory still finds them.
        chosen = services_file or os.environ.get(SERVICES_FILE_ENV) or DEFAULT_SERVICES_FILE
        self.services_file = Path(chosen).resolve()
        state_override = state_dir or os.environ.get(STATE_DIR_ENV)
        self._state_dir_override = Path(state_override).resolve() if state_override else None
        self.lock_timeout = lock_timeout
        self.idempotency_ttl = idempotency_ttl

    # -- public contract

    def services(self) -> list[str]:
        """Names of the declared services (validates the services file)."""
        return sorted(load_services_file(self.services_file).services)

    def state_dir(self) -> Path:
        """Where PID files, logs and idempotency records live (validates the services file)."""
        return self._state_root(load_services_file(self.services_file))

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
        spec, state = self._resolve(service)

        def act() -> dict[str, Any]:
            replicas: list[ReplicaRestart] = []
            grace = spec.grace_period if grace_period is None else grace_period
            indices = sorted(set(range(state.desired_replicas(spec.replicas))) | set(running_replicas(state)))
            # One replica at a time, so the others keep serving during a rolling restart.
            for index in indices:
                old = state.replica_process(index)
                old_pid = old.pid if old is not None and old.is_running() else None
                killed = old.terminate(graceful=graceful, grace_period=grace) if old is not None else False
                state.forget_replica(index)
                new = spawn_and_record(spec, state, index, base_dir=self.services_file.parent)
                healthy = wait_healthy(spec, state, new, health_timeout) if wait_for_health else None
                replicas.append(ReplicaRestart(index, new.port, old_pid, new.pid, healthy, killed))
            first = replicas[0] if replicas else None
            return RestartResult(
                service=service,
                replicas=replicas,
                pid=first.pid if first else None,
                old_pid=first.old_pid if first else None,
                graceful=graceful,
                killed=any(replica.killed for replica in replicas),
            ).to_dict()

        return self._operate(state, "restart", idempotency_key, act)

    def scale(
        self,
        service: str,
        *,
        replicas: int,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            raise ProviderError(
                "replicas must be a non-negative integer", retryable=False, service=service, field="replicas"
            )
        spec, state = self._resolve(service)
        if spec.port is not None and replicas and spec.port + replicas - 1 > 65535:
            raise ProviderError(
                f"service '{service}' cannot run {replicas} replicas from port {spec.port}: "
                "ports would pass 65535",
                retryable=False,
                service=service,
                field="replicas",
            )

        def act() -> dict[str, Any]:
            running = running_replicas(state)
            # Recorded first: a worker dying mid-scale leaves the target for `start` to converge on.
            state.save_desired_replicas(replicas)
            departing = [
                process for index, process in sorted(running.items(), reverse=True) if index >= replicas
            ]
            stopped = stop_replicas(spec, state, departing, graceful=True, grace_period=None)
            started = start_missing(
                spec, state, replicas, wait_for_health, health_timeout, base_dir=self.services_file.parent
            )
            return ScaleResult(
                service=service,
                previous_replicas=len(running),
                replicas=replicas,
                started=started,
                stopped=stopped,
                pids=[process.pid for _, process in sorted(running_replicas(state).items())],
            ).to_dict()

        return self._operate(state, "scale", idempotency_key, act)

    def start(self, service: str, *, wait_for_health: bool = True) -> dict[str, Any]:
        spec, state = self._resolve(service)

        def act() -> dict[str, Any]:
            desired = state.desired_replicas(spec.replicas)
            started = start_missing(
                spec, state, desired, wait_for_health, None, base_dir=self.services_file.parent
            )
            pids = [process.pid for _, process in sorted(running_replicas(state).items())]
            return StartResult(service=service, replicas=desired, started=started, pids=pids).to_dict()

        return self._operate(state, "start", None, act)

    def stop(self, service: str, *, grace_period: float | None = None) -> dict[str, Any]:
        spec, state = self._resolve(service)

        def act() -> dict[str, Any]:
            running = []
            for index in reversed(state.recorded_replicas()):
                process = state.replica_process(index)
                if process is not None and process.is_running():
                    running.append(process)
                else:
                    state.forget_replica(index)
            stopped = stop_replicas(spec, state, running, graceful=True, grace_period=grace_period)
            return StopResult(
                service=service, stopped=stopped, killed=any(replica.killed for replica in stopped)
            ).to_dict()

        return self._operate(state, "stop", None, act)

    def status(self, service: str) -> dict[str, Any]:
        # Lock-free on purpose: status must answer while a long restart holds the lock.
        spec, state = self._resolve(service)
        reap_children()
        desired = state.desired_replicas(spec.replicas)
        replicas = replica_statuses(spec, state, desired)
        plan = load_plan(spec, state)
        return ServiceStatus(
            service=service,
            desired_replicas=desired,
            running_replicas=sum(replica.running for replica in replicas),
            replicas=replicas,
            stable_version=plan.stable.version,
            canary_version=plan.canary.release.version if plan.canary is not None else None,
        ).to_dict()

    # -- releases

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
        env = {} if env is None else env
        check_release(service, version, env)
        check_percent(service, percent)
        spec, state = self._resolve(service)
        release = release_env(version, env)

        def act() -> dict[str, Any]:
            plan = load_plan(spec, state)
            desired = state.desired_replicas(spec.replicas)
            if plan.canary is not None and plan.canary.release.digest != release.digest:
                raise ProviderError(
                    f"service '{service}' already runs canary version {plan.canary.release.version!r}: "
                    "promote it or roll it back first",
                    retryable=False,
                    service=service,
                    field="version",
                )
            if plan.canary is not None and (
                percent >= 100 or len(plan.canary.replicas) != max(1, round(desired * percent / 100))
            ):
                raise ProviderError(
                    f"service '{service}' already runs version {plan.canary.release.version!r} as a canary "
                    f"on {len(plan.canary.replicas)} replica(s), not as {percent:g}% asks: promote it to "
                    "put it on every replica, or roll it back",
                    retryable=False,
                    service=service,
                    field="percent",
                )
            # What a version that does not start healthy is rolled back to (unknown when resuming a full
            # deploy: the release it replaced is no longer recorded).
            previous: ReleasePlan | None = ReleasePlan(plan.stable, recorded=plan.recorded)
            if plan.canary is None and percent >= 100:
                previous = plan if plan.stable.digest != release.digest else None
                plan = ReleasePlan(release, recorded=True)
            elif plan.canary is None:
                plan = ReleasePlan(
                    plan.stable, Canary(release, canary_replicas(service, desired, percent)), plan.recorded
                )
            # Recorded first: a worker dying mid-deploy leaves the plan for the retry to converge on.
            save_plan(state, plan)
            try:
                return self._converge(spec, state, plan, "deploy", version, wait_for_health, health_timeout)
            except ProviderError as exc:
                if previous is None:
                    raise
                save_plan(state, previous)
                self._converge(spec, state, previous, "rollback", version, wait_for_health, health_timeout)
                raise ProviderError(
                    f"version {version!r} of service '{service}' did not start healthy, so it was rolled "
                    f"back: {exc}",
                    retryable=False,
                    service=service,
                    field="version",
                ) from None

        return self._operate(state, "deploy", idempotency_key, act)

    def promote(
        self,
        service: str,
        *,
        version: str | None = None,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        spec, state = self._resolve(service)

        def act() -> dict[str, Any]:
            plan = load_plan(spec, state)
            if plan.canary is None:
                # Nothing to promote, unless it was promoted already (an interrupted call): converge.
                if version is not None and plan.stable.version != version:
                    raise ProviderError(
                        f"service '{service}' runs no canary of version {version!r} to promote "
                        f"(its stable version is {plan.stable.version!r})",
                        retryable=False,
                        service=service,
                        field="version",
                    )
            else:
                self._check_canary(service, plan, version)
                plan = ReleasePlan(plan.canary.release, recorded=True)
                save_plan(state, plan)
            promoted = plan.stable.version
            return self._converge(spec, state, plan, "promote", promoted, wait_for_health, health_timeout)

        return self._operate(state, "promote", idempotency_key, act)

    def rollback(
        self,
        service: str,
        *,
        version: str | None = None,
        wait_for_health: bool = True,
        health_timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        spec, state = self._resolve(service)

        def act() -> dict[str, Any]:
            plan = load_plan(spec, state)
            rolled_back = version
            if plan.canary is None:
                if version is not None and plan.stable.version == version and plan.recorded:
                    raise ProviderError(
                        f"service '{service}' runs version {version!r} as its stable release: it was "
                        "promoted, there is no canary to roll back",
                        retryable=False,
                        service=service,
                        field="version",
                    )
            else:
                self._check_canary(service, plan, version)
                rolled_back = plan.canary.release.version
                plan = ReleasePlan(plan.stable, recorded=plan.recorded)
                save_plan(state, plan)
            return self._converge(spec, state, plan, "rollback", rolled_back, wait_for_health, health_timeout)

        return self._operate(state, "rollback", idempotency_key, act)

    @staticmethod
    def _check_canary(service: str, plan: ReleasePlan, version: str | None) -> None:
        assert plan.canary is not None
        if version is not None and plan.canary.release.version != version:
            raise ProviderError(
                f"service '{service}' runs canary version {plan.canary.release.version!r}, not {version!r}",
                retryable=False,
                service=service,
                field="version",
            )

    def _converge(
        self,
        spec: ServiceSpec,
        state: ServiceState,
        plan: ReleasePlan,
        operation: str,
        version: str | None,
        wait_for_health: bool,
        health_timeout: float | None,
    ) -> dict[str, Any]:
        desired = state.desired_replicas(spec.replicas)
        replaced = converge(
            spec,
            state,
            plan,
            desired,
            wait_for_health=wait_for_health,
            health_timeout=health_timeout,
            base_dir=self.services_file.parent,
        )
        canary = plan.canary
        return ReleaseResult(
            service=state.service,
            operation=operation,
            version=version,
            stable_version=plan.stable.version,
            canary_version=canary.release.version if canary is not None else None,
            canary_replicas=[i for i in canary.replicas if i < desired] if canary is not None else [],
            replicas=replaced,
        ).to_dict()

    # -- internals

    def _resolve(self, service: str) -> tuple[ServiceSpec, ServiceState]:
        config = load_services_file(self.services_file)
        spec = config.services.get(service)
        if spec is None:
            known = ", ".join(sorted(config.services)) or "none"
            raise ProviderError(
                f"unknown service '{service}': not declared in services file {self.services_file} "
                f"(declared: {known})",
                retryable=False,
                service=service,
                field="service",
            )
        return spec, ServiceState(self._state_root(config), service)

    def _state_root(self, config: ServicesFile) -> Path:
        if self._state_dir_override is not None:
            return self._state_dir_override
        return self.services_file.parent / (config.state_dir or DEFAULT_STATE_DIR)

    def _operate(
        self, state: ServiceState, operation: str, key: str | None, act: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        with state.locked(self.lock_timeout):
            reap_children()
            if key is not None:
                recorded = state.recall(key, operation, self.idempotency_ttl)
                if recorded is not None:
                    return recorded
            result = act()
            if key is not None:
                state.remember(key, operation, result, self.idempotency_ttl)
            return result
