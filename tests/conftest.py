"""Fixtures for real services: a fresh PostgreSQL database, a Redis db index, Celery worker processes.

Locally, tests needing a server that is absent are skipped; in CI (CI set) they fail instead.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
PG_SERVER = os.environ.get("AUTOMATION_TEST_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("AUTOMATION_TEST_REDIS", "redis://127.0.0.1:6379/5")
DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "redis": 6379}
TEST_DB = f"automation_test_{os.getpid()}"
STATE_DIR = Path(tempfile.mkdtemp(prefix="automation-test-"))

# Everything below reads these when Django and Celery load; worker subprocesses inherit them.
os.environ["DATABASE_URL"] = f"{PG_SERVER}/{TEST_DB}"
os.environ["AUTOMATION_BROKER_URL"] = REDIS_URL
os.environ["AUTOMATION_VISIBILITY_TIMEOUT"] = "1000"
os.environ["AUTOMATION_STATE_DIR"] = str(STATE_DIR)
os.environ["AUTOMATION_HOME"] = str(ROOT)
os.environ["DJANGO_SETTINGS_MODULE"] = "automation.settings"
os.environ.pop("AUTOMATION_API_TOKENS", None)
# The local provider's services file: tests write it, workers re-read it on every call.
SERVICES_FILE = STATE_DIR / "services.yml"
os.environ["AUTOMATION_SERVICES_FILE"] = str(SERVICES_FILE)
# A secret of the test deployment's own: acknowledgement links are off with the public development key.
os.environ.setdefault("AUTOMATION_ACK_SECRET", f"test-ack-secret-{uuid.uuid4().hex}")
ECHO_SERVICE = ROOT / "automation" / "demo" / "echo_service.py"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(url: str, what: str) -> None:
    """Skip (locally) or fail (in CI) unless the server at `url` accepts connections."""
    parsed = urlsplit(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or DEFAULT_PORTS[parsed.scheme]
    if not _reachable(host, port):
        if os.environ.get("CI"):
            pytest.fail(f"{what} is not reachable on {host}:{port} (CI requires it)")
        pytest.skip(f"{what} is not running on {host}:{port}")


#: Fixtures that talk to real services; every test using one (directly or through `engine`, `worker`,
#: `api`...) is marked `integration`, so `pytest -m "not integration"` needs no server.
SERVICE_FIXTURES = frozenset({"database", "redis_coordinator"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def collect_garbage_after_integration_tests(request: pytest.FixtureRequest) -> Iterator[None]:
    """A client socket a test left to the garbage collector is finalized, and reported, in that test's
    teardown rather than during whichever later test the collector happens to run in."""
    yield
    if request.node.get_closest_marker("integration"):
        gc.collect()


@pytest.fixture(scope="session")
def database() -> Iterator[None]:
    """A fresh PostgreSQL database, migrated, dropped at the end of the session."""
    require(PG_SERVER, "PostgreSQL")
    require(REDIS_URL, "Redis")
    import psycopg2
    import redis

    admin = psycopg2.connect(f"{PG_SERVER}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}"')
        cur.execute(f'CREATE DATABASE "{TEST_DB}"')
    redis.Redis.from_url(REDIS_URL).flushdb()
    from automation.bootstrap import migrate, setup

    setup()
    migrate(verbosity=0)
    yield
    from django.db import connections

    connections.close_all()
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def engine(database: None) -> Any:
    from automation import AutomationConfig, AutomationEngine

    return AutomationEngine(
        AutomationConfig(
            timeout_seconds=30, retry_attempts=2, retry_backoff_seconds=0.2, max_concurrent_actions=50
        )
    )


class Worker:
    """A real `celery -A automation worker` in its own process group."""

    def __init__(
        self, *, queues: str, name: str, concurrency: int = 2, env: dict[str, str] | None = None
    ) -> None:
        self.name = f"{name}-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        self.log_path = STATE_DIR / f"{self.name}.log"
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
            str(concurrency),
            "-Q",
            queues,
            "-n",
            self.name,
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--include",
            "tests.slow_actions",
        ]
        self._log = open(self.log_path, "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.stop()  # a worker that never became ready must not outlive the test, nor its log file
            raise

    def wait_ready(self, timeout: float = 60.0) -> None:
        from automation.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            if app.control.ping(destination=[self.name], timeout=0.5):
                return
        raise RuntimeError(f"worker not ready: {self.log_path.read_text()[-3000:]}")

    def kill_group(self) -> None:
        """SIGKILL the worker's whole process group: the main process and every pool child."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text()

    def outcome(self, task_id: str) -> str | None:
        """How this worker last settled message `task_id`, from its log ("succeeded", "ignored" by the
        engine, "revoked" and discarded, "failed"); None while none is logged (a retry is not an outcome).
        """
        outcomes = {
            "succeeded in": "succeeded",
            "] ignored": "ignored",
            "Discarding revoked task": "revoked",
            "] raised": "failed",
        }
        found = None
        for line in self.log().splitlines():
            if task_id in line:
                found = next((outcome for words, outcome in outcomes.items() if words in line), found)
        return found


@pytest.fixture(scope="session")
def worker(engine: Any) -> Iterator[Worker]:
    """The shared worker: every queue but `low` (tests that need workers of their own use `low`)."""
    started = Worker(queues="critical,high,default,celery", name="shared")
    yield started
    started.stop()


@pytest.fixture
def idle_queue() -> Iterator[str]:
    """A queue no worker consumes: what is sent to it stays there, and is removed afterwards."""
    import redis

    require(REDIS_URL, "Redis")
    name = unique("no-consumer")
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(*[key for key in client.scan_iter(match=f"{name}*")], f"_kombu.binding.{name}")


@pytest.fixture
def peer() -> Iterator[Any]:
    from tests.peers import HttpPeer

    server = HttpPeer()
    yield server
    server.close()


@pytest.fixture
def local_service() -> Iterator[Any]:
    """A real `spotify-api` service (the demo's echo service) declared in the services file and started."""
    import yaml

    from automation.providers import get_provider

    port = free_port()
    SERVICES_FILE.write_text(
        yaml.safe_dump(
            {
                "services": {
                    "spotify-api": {
                        "command": ["{python}", str(ECHO_SERVICE), "--port", "{port}"],
                        "port": port,
                        "health_url": "http://127.0.0.1:{port}/health",
                        "grace_period": 5,
                    }
                }
            }
        )
    )
    provider = get_provider("local", services_file=str(SERVICES_FILE))
    provider.start("spotify-api")
    yield provider
    try:
        # The next test starts from one replica (a test that scaled it would leave its count behind, and
        # extra replicas take ports next to a port chosen free for one).
        provider.scale("spotify-api", replicas=1, wait_for_health=False)
    finally:
        provider.stop("spotify-api", grace_period=1)


def close_thread_clients() -> None:
    """Close what a test's own thread opened: its Django connection and its Celery result backend.

    Celery keeps one result backend per thread, and sending a chord subscribes it to the header's results
    on a pub/sub connection. When the thread ends, the backend and those results are garbage in a cycle;
    the collector then finalized the socket unclosed during whatever test ran next (a ResourceWarning, an
    error under filterwarnings=error).
    """
    from django.db import connection

    from automation.celery import app

    connection.close()
    backend = app.backend
    consumer = getattr(backend, "result_consumer", None)
    if consumer is not None:
        consumer.stop()
        # The results still pending unsubscribe when collected (AsyncResult.__del__); with the pub/sub
        # object kept, that would open a new connection, inside the collector, that nothing closes.
        consumer._pubsub = None
    client = getattr(backend, "client", None)
    if client is not None:
        client.connection_pool.disconnect()


def wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def stored_run(engine: Any, name: str, *actions: Any) -> Any:
    """Register `actions` as workflow `name` and store a run of it without sending it anywhere."""
    from automation import WorkflowDefinition
    from automation.definitions.registry import register_definition
    from automation.runs import services

    version = register_definition(WorkflowDefinition(name=unique(name), actions=list(actions)), engine.config)
    run, _ = services.create_run(
        workflow_id=version.workflow_id,
        version_id=version.id,
        version_number=version.version,
        actions=version.definition["actions"],
        inputs={},
        idempotency_key=None,
        queue="default",
    )
    return run


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def gated_workflow(engine: Any, prefix: str) -> str:
    """A workflow whose run waits at an approval gate: enqueued runs stay put while a test looks."""
    from automation import ActionDefinition, WorkflowDefinition

    name = unique(prefix)
    engine.register_workflow(
        WorkflowDefinition(
            name=name,
            inputs={"who": {"type": "string", "required": False, "default": "nobody"}},
            actions=[
                ActionDefinition(
                    name="gate",
                    action_type="control.approval",
                    parameters={"message": "${who}", "timeout_seconds": 30},
                )
            ],
        )
    )
    return name


def answers_ok(url: str, process: Any, timeout: float = 30.0) -> bool:
    """Wait until `url` answers 200; False when `process` exits or `timeout` passes first."""
    import httpx

    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False

