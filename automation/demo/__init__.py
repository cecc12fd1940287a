"""`make demo`: a fan-out and a join that restarts a real local service, printing every step's result."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click
import yaml

ECHO_SERVICE = Path(__file__).with_name("echo_service.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _ChatSink(BaseHTTPRequestHandler):
    """Stands in for a Slack incoming webhook: prints the message it receives."""

    received: list[str] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        _ChatSink.received.append(str(body.get("text")))
        click.echo(f"  [chat] {body.get('text')}  (Idempotency-Key {self.headers.get('Idempotency-Key')})")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def demo_workflow(health_url: str, chat_url: str) -> Any:
    from automation import ActionDefinition, Priority, WorkflowDefinition

    return WorkflowDefinition(
        name="demo_restart",
        description="Probe, then restart and notify in parallel, then verify and report",
        priority=Priority.HIGH,
        actions=[
            ActionDefinition(name="probe", action_type="http.request", parameters={"url": health_url}),
            ActionDefinition(
                name="restart_service",
                action_type="infrastructure",
                depends_on=["probe"],
                parameters={"service_name": "${service}", "graceful": True, "wait_for_health": True},
            ),
            ActionDefinition(
                name="notify_oncall",
                action_type="notification.webhook",
                depends_on=["probe"],
                parameters={
                    "url": chat_url,
                    "text": "restarting ${service} (pid ${steps.probe.output.json.pid})",
                },
            ),
            ActionDefinition(
                name="drain_wait",
                action_type="control.wait",
                depends_on=["probe"],
                parameters={"seconds": 0.5},
            ),
            ActionDefinition(
                name="verify",
                action_type="http.request",
                depends_on=["restart_service", "notify_oncall", "drain_wait"],
                parameters={
                    "url": health_url,
                    "headers": {"X-Expected-Pid": "${steps.restart_service.output.pid}"},
                },
            ),
            ActionDefinition(
                name="report",
                action_type="notification.webhook",
                parameters={
                    "url": chat_url,
                    "text": "${service} restarted: pid "
                    "${steps.probe.output.json.pid} -> ${steps.verify.output.json.pid}",
                },
            ),
        ],
    )


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "automation",
        "worker",
        "-P",
        "prefork",
        "-c",
        "2",
        "-l",
        "WARNING",
        "-n",
        f"demo-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    return subprocess.Popen(command, env=env, start_new_session=True)


def _alerting_part(engine: Any, chat_url: str) -> int:
    import time

    from automation.cli.follow import follow
    from automation.demo.alerting import apply_demo_rules, run_alerting_demo

    apply_demo_rules(chat_url)
    if run_alerting_demo(engine, lambda run_id: follow(run_id, timeout=120)) != 0:
        return 1
    deadline = time.monotonic() + 60
    while not any("[FIRING:2]" in text for text in _ChatSink.received):
        if time.monotonic() > deadline:
            click.echo("the grouped notification did not arrive")
            return 1
        time.sleep(0.1)
    click.echo("one chat message for the group of two alerts; the alert started the restart workflow once")
    return 0


def run_demo(*, services_file: Path | None = None) -> int:
    from django.conf import settings

    from automation import AutomationConfig, AutomationEngine, AutomationLevel
    from automation.cli.follow import follow
    from automation.providers import get_provider

    if not settings.EMBEDDED:
        from automation.bootstrap import migrate

        migrate(verbosity=0)
    port = _free_port()
    if services_file is None:
        services_file = settings.STATE_DIR / "demo-services.yml"
        services_file.parent.mkdir(parents=True, exist_ok=True)
        services_file.write_text(
            yaml.safe_dump(
                {
                    "services": {
                        "spotify-api": {
                            "command": ["{python}", str(ECHO_SERVICE), "--port", "{port}", "--drain", "0.2"],
                            "port": port,
                            "health_url": "http://127.0.0.1:{port}/health",
                            "grace_period": 5,
                        }
                    }
                }
            )
        )
    os.environ["AUTOMATION_SERVICES_FILE"] = str(services_file)
    provider = get_provider("local", services_file=str(services_file))
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _ChatSink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    worker = None
    mode = "embedded (SQLite, in-process broker and worker)" if settings.EMBEDDED else "PostgreSQL and Redis"
    click.echo(f"automation demo on {mode}")
    try:
        started = provider.start("spotify-api")
        service = provider.status("spotify-api")
        health_url = f"http://127.0.0.1:{service['replicas'][0]['port']}/health"
        click.echo(f"service spotify-api running, pid {started['pids'][0]} at {health_url}")
        engine = AutomationEngine(
            AutomationConfig(level=AutomationLevel.AUTONOMOUS, timeout_seconds=60, retry_attempts=2)
        )
        version = engine.register_workflow(
            demo_workflow(health_url, f"http://127.0.0.1:{sink.server_port}/hook")
        )
        click.echo(f"workflow demo_restart registered (version {version})")
        if not settings.EMBEDDED:
            worker = _start_worker(dict(os.environ))
        run = engine.run_workflow("demo_restart", {"service": "spotify-api"})
        click.echo(f"run {run.id}:")
        status = follow(run.id, timeout=120)
        if status != "succeeded":
            return 1
        old, new = run.step("probe").output["json"]["pid"], run.step("restart_service").output["pid"]
        click.echo(f"spotify-api was restarted for real: pid {old} -> {new}")
        if old == new:
            return 1
        return _alerting_part(engine, f"http://127.0.0.1:{sink.server_port}/hook")
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(30)
        provider.stop("spotify-api")
        sink.shutdown()
