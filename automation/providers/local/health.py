"""Health checks of `local` replicas: one probe of the health URL, and the wait until it answers 200."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from automation.providers.base import ProviderError
from automation.providers.local.processes import POLL_INTERVAL, ReplicaProcess, exit_code, expand_template
from automation.providers.local.services_file import ServiceSpec

PROBE_TIMEOUT = 2.0


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0]


def probe_health(client: httpx.Client, spec: ServiceSpec, replica: int) -> bool:
    """One GET of the replica's health URL: True on 200, False on any other answer or none."""
    assert spec.health_url is not None
    url = expand_template(spec.health_url, port=spec.port_of(replica), replica=replica)
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def await_health(
    spec: ServiceSpec, process: ReplicaProcess, *, service: str, log_path: Path, timeout: float | None
) -> bool:
    """Poll the health URL until it answers 200; without a health URL, running counts as healthy."""
    if spec.health_url is None:
        return process.is_running()
    limit = spec.health_timeout if timeout is None else timeout
    deadline = time.monotonic() + limit
    url = expand_template(spec.health_url, port=process.port, replica=process.replica)
    where = f"service '{service}' replica {process.replica} (pid {process.pid})"
    with httpx.Client(trust_env=False) as client:  # a proxy from the environment must not see these
        while True:
            if not process.is_running():
                code = exit_code(process.pid)
                raise ProviderError(
                    f"{where} exited{'' if code is None else f' with code {code}'} before becoming "
                    f"healthy; see {log_path}",
                    retryable=True,
                    service=service,
                )
            remaining = deadline - time.monotonic()
            try:
                response = client.get(url, timeout=max(0.1, min(PROBE_TIMEOUT, remaining)))
                if response.status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            if time.monotonic() >= deadline:
                raise ProviderError(
                    f"{where} did not answer 200 at {_strip_query(url)} within {limit:g}s; see {log_path}",
                    retryable=True,
                    service=service,
                )
            time.sleep(POLL_INTERVAL * 2)
