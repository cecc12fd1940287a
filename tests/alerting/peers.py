"""Real metric peers on loopback for the alerting tests: an exporter, Prometheus, Alertmanager.

Prometheus and Alertmanager are the Debian packages' binaries (`scripts/ensure-services.sh` installs
them), each started on free ports with a config and a data directory of its own, never the packages'
services.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from tests.conftest import answers_ok, free_port

PROMETHEUS_BINARY = "prometheus"
ALERTMANAGER_BINARY = "prometheus-alertmanager"


def require_binary(name: str) -> str:
    """The path of executable `name`; skips the test locally, fails it in CI, when it is absent."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (bash scripts/ensure-services.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI requires it)")
        pytest.skip(message)
    return path


class Exporter:
    """A prometheus_client HTTP server on loopback with a registry of its own; tests make metrics on it
    with `gauge` and `counter` and set them. `target` is what a scrape config names."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.port = free_port()
        self._server, self._thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self.target = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.target}/metrics"
        self._metrics: dict[str, Any] = {}

    def gauge(self, name: str, labelnames: Sequence[str] = (), documentation: str = "a test gauge") -> Gauge:
        """The gauge `name` (made on first use; asking again returns the same one)."""
        if name not in self._metrics:
            self._metrics[name] = Gauge(name, documentation, labelnames, registry=self.registry)
        found: Gauge = self._metrics[name]
        return found

    def counter(
        self, name: str, labelnames: Sequence[str] = (), documentation: str = "a test counter"
    ) -> Counter:
        """The counter `name` (exposed as `name_total`; made on first use)."""
        if name not in self._metrics:
            self._metrics[name] = Counter(name, documentation, labelnames, registry=self.registry)
        found: Counter = self._metrics[name]
        return found

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class ServerProcess:
    """A server binary in its own process group, with a temporary directory for its config, data and log;
    started by the subclass, ready when `ready_url` answers 200."""

    def __init__(self, name: str, command: Sequence[str], ready_url: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(
            list(command), cwd=workdir, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        if not answers_ok(ready_url, self.process, timeout=60):
            log = self.log()[-3000:]
            self.stop()
            raise RuntimeError(f"{name} did not become ready: {log}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


class PrometheusServer(ServerProcess):
    """The real Prometheus on a free loopback port, scraping `targets` every second (job `exporter`),
    evaluating `rule_files` (YAML texts or mappings) every second and sending alerts to `alertmanagers`
    (base URLs). Ready once `/-/ready` answers and every target has been scraped once."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        rule_files: Sequence[str | Mapping[str, Any]] = (),
        alertmanagers: Sequence[str] = (),
        job: str = "exporter",
    ) -> None:
        binary = require_binary(PROMETHEUS_BINARY)
        workdir = Path(tempfile.mkdtemp(prefix="prometheus-test-"))
        rule_paths = []
        for index, rules in enumerate(rule_files):
            path = workdir / f"rules-{index}.yml"
            path.write_text(rules if isinstance(rules, str) else yaml.safe_dump(dict(rules)))
            rule_paths.append(str(path))
        config: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
            "rule_files": rule_paths,
        }
        if alertmanagers:
            config["alerting"] = {
                "alertmanagers": [
                    {
                        "static_configs": [
                            {"targets": [httpx.URL(url).netloc.decode() for url in alertmanagers]}
                        ]
                    }
                ]
            }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.job = job
        command = [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        super().__init__("prometheus", command, f"{self.url}/-/ready", workdir)
        try:
            self.wait_scraped(len(targets))
        except BaseException:
            self.stop()
            raise

    def wait_scraped(self, count: int, timeout: float = 30.0) -> None:
        """Until `up` of this job is 1 for `count` targets: each has been scraped once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = httpx.get(f"{self.url}/api/v1/query", params={"query": f'up{{job="{self.job}"}} == 1'})
            if answer.status_code == 200 and len(answer.json()["data"]["result"]) >= count:
                return
            time.sleep(0.2)
        raise RuntimeError(f"prometheus scraped no target in {timeout} s: {self.log()[-3000:]}")

    def instant(self, promql: str) -> list[dict[str, Any]]:
        """The raw `result` of an instant query now (for a test's waits, not the code under test)."""
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": promql})
        answer.raise_for_status()
        result: list[dict[str, Any]] = answer.json()["data"]["result"]
        return result


class AlertmanagerServer(ServerProcess):
    """The real Alertmanager on a free loopback port, clustering off, routing every alert to one webhook
    receiver (`webhook`) at `webhook_url`, sending `Authorization: Bearer <bearer_token>` when given."""

    def __init__(
        self,
        webhook_url: str,
        *,
        group_by: Sequence[str] = ("alertname",),
        group_wait: str = "1s",
        group_interval: str = "1s",
        repeat_interval: str = "1h",
        send_resolved: bool = True,
        bearer_token: str | None = None,
    ) -> None:
        binary = require_binary(ALERTMANAGER_BINARY)
        workdir = Path(tempfile.mkdtemp(prefix="alertmanager-test-"))
        webhook: dict[str, Any] = {"url": webhook_url, "send_resolved": send_resolved}
        if bearer_token is not None:
            webhook["http_config"] = {"authorization": {"type": "Bearer", "credentials": bearer_token}}
        config = {
            "route": {
                "receiver": "webhook",
                "group_by": list(group_by),
                "group_wait": group_wait,
                "group_interval": group_interval,
                "repeat_interval": repeat_interval,
            },
            "receivers": [{"name": "webhook", "webhook_configs": [webhook]}],
        }
        (workdir / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            binary,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        super().__init__("alertmanager", command, f"{self.url}/-/ready", workdir)


def post_alerts(alertmanager_url: str, alerts: Sequence[Mapping[str, Any]]) -> None:
    """POST `alerts` to Alertmanager's v2 API, as Prometheus does: each a mapping with `labels` and
    optionally `annotations`, `startsAt`, `endsAt`, `generatorURL`. Raises unless Alertmanager accepts."""
    answer = httpx.post(f"{alertmanager_url}/api/v2/alerts", json=list(alerts), timeout=10)
    if answer.status_code != 200:
        raise AssertionError(f"alertmanager refused the alerts: {answer.status_code} {answer.text}")


def alertmanager_alerts(alertmanager_url: str) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds now (its v2 API), each with its `fingerprint`, `labels`, `status`."""
    answer = httpx.get(f"{alertmanager_url}/api/v2/alerts", timeout=10)
    answer.raise_for_status()
    found: list[dict[str, Any]] = answer.json()
    return found
