"""Fixtures of real metric peers: an exporter, Prometheus scraping it, Alertmanager calling a webhook.

Tests using them are marked `integration`. Prometheus and Alertmanager are started from the Debian
packages' binaries (`bash scripts/ensure-services.sh` installs them); absent, the test is skipped locally
and fails in CI.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest

from tests.alerting.peers import AlertmanagerServer, Exporter, PrometheusServer

PEER_FIXTURES = frozenset({"exporter", "prometheus_server", "start_prometheus", "alertmanager_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PEER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def exporter() -> Iterator[Exporter]:
    """One exporter for the session: tests name their metrics uniquely (`exporter.gauge("x_test_...")`)."""
    server = Exporter()
    yield server
    server.close()


@pytest.fixture(scope="session")
def prometheus_server(exporter: Exporter) -> Iterator[PrometheusServer]:
    """Prometheus for the session, scraping `exporter` every second as job `exporter`, without rules."""
    server = PrometheusServer([exporter.target])
    yield server
    server.stop()


@pytest.fixture
def start_prometheus(exporter: Exporter) -> Iterator[Callable[..., PrometheusServer]]:
    """`start_prometheus(rule_files=(...), alertmanagers=(url,), targets=None)`: a Prometheus of the
    test's own (rules, alerting), scraping `exporter` unless `targets` says otherwise; stopped after."""
    started: list[PrometheusServer] = []

    def start(
        *,
        rule_files: Sequence[str | Mapping[str, Any]] = (),
        alertmanagers: Sequence[str] = (),
        targets: Sequence[str] | None = None,
    ) -> PrometheusServer:
        server = PrometheusServer(
            [exporter.target] if targets is None else targets,
            rule_files=rule_files,
            alertmanagers=alertmanagers,
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def alertmanager_server() -> Iterator[Callable[..., str]]:
    """`alertmanager_server(webhook_url, group_by=("alertname",), group_wait="1s", group_interval="1s",
    repeat_interval="1h", send_resolved=True, bearer_token=None) -> base URL`: a real Alertmanager routing
    every alert to a webhook at `webhook_url` (with `Authorization: Bearer <bearer_token>` when given);
    stopped after the test. Post alerts with `tests.alerting.peers.post_alerts`."""
    started: list[AlertmanagerServer] = []

    def start(webhook_url: str, **options: Any) -> str:
        server = AlertmanagerServer(webhook_url, **options)
        started.append(server)
        return server.url

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def level(engine: Any) -> Iterator[Any]:
    """Set the automation level for one test (this process reads it at once), restored afterwards."""
    from automation import AutomationConfig
    from automation.config.apply import apply_config

    original = engine.config

    def set_level(value: str) -> None:
        apply_config(AutomationConfig(**{**original.model_dump(), "level": value}))

    yield set_level
    apply_config(original)
