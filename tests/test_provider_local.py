"""The local provider against real processes: the echo fixture service on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from automation.providers import LocalProvider, ProviderError, ServicesFileError

REPO = Path(__file__).resolve().parent.parent
ECHO = str(REPO / "automation" / "demo" / "echo_service.py")
SECRET = "s3cr3t-token-value"


def free_port_block(count: int) -> int:
    """A port p with p .. p+count-1 all free on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no block of free ports")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def health(port: int) -> dict[str, Any]:
    response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2, trust_env=False)
    assert response.status_code == 200
    return response.json()


def echo_service(port: int, *flags: str, **overrides: Any) -> dict[str, Any]:
    return {
        "command": ["{python}", ECHO, "--port", "{port}", *flags],
        "port": port,
        "health_url": "http://127.0.0.1:{port}/health",
        "grace_period": 5,
        "health_timeout": 10,
        "env": {"ECHO_MESSAGE": "replica-{replica}", "API_TOKEN": SECRET},
        **overrides,
    }


MakeProvider = Callable[..., LocalProvider]


@pytest.fixture
def make_provider(tmp_path: Path) -> Iterator[MakeProvider]:
    """Write a services file of the given services; every service is stopped at teardown."""
    made: list[LocalProvider] = []

    def make(**services: dict[str, Any]) -> LocalProvider:
        services_file = tmp_path / "services.yml"
        services_file.write_text(yaml.safe_dump({"services": services}))
        provider = LocalProvider(services_file=services_file, state_dir=tmp_path / "state")
        made.append(provider)
        return provider

    yield make
    for provider in made:
        for service in provider.services():
            provider.stop(service, grace_period=0.5)


def test_start_then_status_reports_healthy_replica(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port))

    started = provider.start("api")

    assert started["replicas"] == 1
    [replica] = started["started"]
    assert replica["port"] == port and replica["healthy"] is True
    assert health(port) == {"pid": replica["pid"], "port": port, "message": "replica-0"}
    status = provider.status("api")
    assert status["running_replicas"] == 1
    assert status["replicas"] == [
        {"replica": 0, "port": port, "pid": replica["pid"], "running": True, "healthy": True, "version": None}
    ]
    assert (status["stable_version"], status["canary_version"]) == (None, None)
    assert provider.start("api")["started"] == []  # already running: nothing to do


def test_graceful_restart_replaces_the_process(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port, "--drain", "0.3"))
    old_pid = provider.start("api")["pids"][0]

    result = provider.restart("api")

    assert result["old_pid"] == old_pid
    assert result["pid"] != old_pid
    assert result["graceful"] is True and result["killed"] is False
    assert result["replicas"] == [
        {
            "replica": 0,
            "port": port,
            "old_pid": old_pid,
            "pid": result["pid"],
            "healthy": True,
            "killed": False,
        }
    ]
    assert not alive(old_pid)
    assert health(port)["pid"] == result["pid"]


def test_service_ignoring_sigterm_is_killed_after_the_grace_period(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port, "--ignore-sigterm", grace_period=0.5))
    old_pid = provider.start("api")["pids"][0]

    began = time.monotonic()
    result = provider.restart("api")

    assert time.monotonic() - began >= 0.5
    assert result["killed"] is True and result["replicas"][0]["killed"] is True
    assert not alive(old_pid)
    assert health(port)["pid"] == result["pid"]


def test_non_graceful_restart_kills_without_waiting(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port, "--ignore-sigterm", grace_period=30))
    old_pid = provider.start("api")["pids"][0]

    began = time.monotonic()
    result = provider.restart("api", graceful=False)

    assert time.monotonic() - began < 10
    assert result["graceful"] is False and result["killed"] is True
    assert not alive(old_pid)


def test_restart_of_a_stopped_service_starts_it(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port))

    result = provider.restart("api")

    assert result["old_pid"] is None and result["killed"] is False
    assert health(port)["pid"] == result["pid"]


def test_same_idempotency_key_returns_the_recorded_result_without_acting(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port))
    provider.start("api")

    first = provider.restart("api", idempotency_key="run-7/step-restart")
    again = provider.restart("api", idempotency_key="run-7/step-restart")

    assert first["deduplicated"] is False
    assert again == {**first, "deduplicated": True}
    assert health(port)["pid"] == first["pid"]
    with pytest.raises(ProviderError) as raised:
        provider.scale("api", replicas=2, idempotency_key="run-7/step-restart")
    assert raised.value.retryable is False and raised.value.field == "idempotency_key"


def test_concurrent_calls_with_one_key_act_once(make_provider: MakeProvider, tmp_path: Path) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port))
    provider.start("api")
    # A second instance stands for a second worker: they share only the state directory.
    other = LocalProvider(services_file=provider.services_file, state_dir=tmp_path / "state")

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda p: p.restart("api", idempotency_key="k"), [provider, other]))

    assert results[0]["pid"] == results[1]["pid"]
    assert sorted(r["deduplicated"] for r in results) == [False, True]
    assert health(port)["pid"] == results[0]["pid"]


def test_scale_up_then_down(make_provider: MakeProvider) -> None:
    port = free_port_block(3)
    provider = make_provider(api=echo_service(port))
    provider.start("api")

    up = provider.scale("api", replicas=3)

    assert (up["previous_replicas"], up["replicas"], up["stopped"]) == (1, 3, [])
    assert [r["port"] for r in up["started"]] == [port + 1, port + 2]
    assert all(r["healthy"] for r in up["started"])
    assert len(set(up["pids"])) == 3
    assert [health(port + i)["pid"] for i in range(3)] == up["pids"]
    assert [health(port + i)["message"] for i in range(3)] == ["replica-0", "replica-1", "replica-2"]

    down = provider.scale("api", replicas=1)

    assert (down["previous_replicas"], down["replicas"], down["started"]) == (3, 1, [])
    assert [r["replica"] for r in down["stopped"]] == [2, 1]
    assert down["pids"] == up["pids"][:1]
    assert not any(alive(pid) for pid in up["pids"][1:])
    status = provider.status("api")
    assert (status["desired_replicas"], status["running_replicas"]) == (1, 1)


def test_start_uses_the_recorded_replica_count(make_provider: MakeProvider) -> None:
    port = free_port_block(2)
    provider = make_provider(api=echo_service(port))
    provider.scale("api", replicas=2)
    provider.stop("api")

    assert len(provider.start("api")["started"]) == 2


def test_stop_stops_every_replica(make_provider: MakeProvider) -> None:
    port = free_port_block(2)
    provider = make_provider(api=echo_service(port, replicas=2))
    pids = provider.start("api")["pids"]

    stopped = provider.stop("api")

    assert sorted(r["pid"] for r in stopped["stopped"]) == sorted(pids)
    assert stopped["killed"] is False
    assert not any(alive(pid) for pid in pids)
    assert provider.status("api")["running_replicas"] == 0


def test_unknown_service_is_not_retryable(make_provider: MakeProvider) -> None:
    provider = make_provider(api=echo_service(free_port_block(1)))

    with pytest.raises(ProviderError) as raised:
        provider.restart("nope")

    assert raised.value.retryable is False
    assert "'nope'" in str(raised.value) and str(provider.services_file) in str(raised.value)


@pytest.mark.parametrize(
    ("service", "field", "reason"),
    [
        ({"command": ["x"], "port": "abc"}, "services.api.port", "must be an integer"),
        ({"port": 1}, "services.api.command", "is required"),
        ({"command": ["x"], "prot": 1}, "services.api.prot", "is not a known field"),
        ({"command": ["x"], "env": {"DEBUG": 1}}, "services.api.env.DEBUG", "must be a string"),
        ({"command": ["x", 3]}, "services.api.command[1]", "must be a string"),
        ({"command": ["x", "{port}"]}, "services.api", "{port} is used but no port is set"),
    ],
)
def test_malformed_services_file_names_the_field(
    tmp_path: Path, service: dict[str, Any], field: str, reason: str
) -> None:
    services_file = tmp_path / "services.yml"
    service = {**service, "env": {**service.get("env", {}), "API_TOKEN": SECRET}}
    services_file.write_text(yaml.safe_dump({"services": {"api": service}}))

    with pytest.raises(ServicesFileError) as raised:
        LocalProvider(services_file=services_file).status("api")

    assert f"{field}: {reason}" in str(raised.value)
    assert str(services_file) in str(raised.value)
    assert raised.value.field == field and raised.value.retryable is False
    assert SECRET not in str(raised.value)


def test_missing_and_unparsable_services_files(tmp_path: Path) -> None:
    with pytest.raises(ServicesFileError, match="file not found"):
        LocalProvider(services_file=tmp_path / "absent.yml").status("api")
    broken = tmp_path / "broken.yml"
    broken.write_text(f"services:\n  api:\n    token: {SECRET}: x\n")  # PyYAML would quote this line
    with pytest.raises(
        ServicesFileError, match=r"line 3, column \d+: mapping values are not allowed"
    ) as raised:
        LocalProvider(services_file=broken).status("api")
    assert SECRET not in str(raised.value)


def test_services_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    services_file = tmp_path / "elsewhere.yml"
    services_file.write_text(yaml.safe_dump({"state_dir": "st", "services": {"api": {"command": ["x"]}}}))
    monkeypatch.setenv("AUTOMATION_SERVICES_FILE", str(services_file))
    monkeypatch.delenv("AUTOMATION_STATE_DIR", raising=False)

    provider = LocalProvider()

    assert provider.services() == ["api"]
    assert provider.state_dir() == tmp_path / "st"


def test_pid_file_of_a_dead_process_counts_as_not_running(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port))
    old_pid = provider.start("api")["pids"][0]
    os.killpg(old_pid, signal.SIGKILL)  # dies behind the provider's back: the PID file stays
    provider.status("api")  # reaps it
    deadline = time.monotonic() + 5
    while alive(old_pid) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert provider.status("api")["replicas"][0]["running"] is False
    result = provider.restart("api")
    assert result["old_pid"] is None and result["killed"] is False
    assert health(port)["pid"] == result["pid"]


def test_pid_file_naming_another_process_is_never_signalled(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port))
    provider.start("api")
    provider.stop("api")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # As if the service died and its PID was reused by an unrelated process.
        pid_file = provider.state_dir() / "api" / "replica-0.pid"
        pid_file.write_text(
            json.dumps(
                {
                    "replica": 0,
                    "pid": bystander.pid,
                    "pgid": bystander.pid,
                    "start_time": 1,
                    "port": port,
                    "started_at": 0.0,
                }
            )
        )

        assert provider.status("api")["replicas"][0]["running"] is False
        result = provider.restart("api", grace_period=0.2)

        assert result["old_pid"] is None
        assert bystander.poll() is None and alive(bystander.pid)
    finally:
        bystander.kill()
        bystander.wait()


def test_services_outlive_the_process_that_started_them(make_provider: MakeProvider, tmp_path: Path) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port))
    starter = textwrap.dedent(
        f"""
        import os, signal, sys
        from automation.providers import LocalProvider
        result = LocalProvider(services_file={str(provider.services_file)!r},
                               state_dir={str(tmp_path / "state")!r}).start("api")
        print(result["pids"][0], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # as a Celery worker is killed in the reliability tests
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", starter],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    pid = int(done.stdout.strip())

    time.sleep(0.3)
    assert alive(pid)
    assert health(port)["pid"] == pid
    assert provider.status("api")["replicas"][0]["pid"] == pid
    assert provider.restart("api")["old_pid"] == pid  # and another worker can take it over


def test_health_timeout_is_retryable(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=echo_service(port, "--unhealthy"))

    with pytest.raises(ProviderError, match="did not answer 200") as raised:
        provider.restart("api", health_timeout=0.5)

    assert raised.value.retryable is True and raised.value.service == "api"
    assert SECRET not in str(raised.value)


def test_service_exiting_at_start_is_reported_with_its_log(make_provider: MakeProvider) -> None:
    provider = make_provider(
        api={"command": ["{python}", "-c", "raise SystemExit(3)"], "health_url": "http://127.0.0.1:9/"}
    )

    with pytest.raises(ProviderError, match="exited with code 3") as raised:
        provider.start("api")

    assert "replica-0.log" in str(raised.value)


def test_results_are_json_and_hold_no_secrets(make_provider: MakeProvider) -> None:
    port = free_port_block(2)
    provider = make_provider(api=echo_service(port))

    results = [
        provider.start("api"),
        provider.restart("api"),
        provider.scale("api", replicas=2),
        provider.status("api"),
        provider.stop("api"),
    ]

    encoded = json.dumps(results)
    assert SECRET not in encoded
    assert SECRET not in "".join(p.read_text() for p in (provider.state_dir() / "api").rglob("*.json"))


def test_scale_in_stops_departing_replicas_together_within_one_grace_period(
    make_provider: MakeProvider,
) -> None:
    # Each replica takes 1.5 s to drain after SIGTERM: one after the other, three would take 4.5 s.
    port = free_port_block(4)
    provider = make_provider(api=echo_service(port, "--drain", "1.5", grace_period=10))
    provider.scale("api", replicas=4)

    began = time.monotonic()
    result = provider.scale("api", replicas=1)
    elapsed = time.monotonic() - began

    assert [replica["replica"] for replica in result["stopped"]] == [3, 2, 1]
    assert not any(replica["killed"] for replica in result["stopped"])
    assert 1.5 <= elapsed < 3.5
    assert provider.status("api")["running_replicas"] == 1


# Releases: a version on a share of the replicas beside the stable one, then promoted or rolled back.


def versioned(port: int, **overrides: Any) -> dict[str, Any]:
    """Three echo replicas of version v1 that answer their version (the `{version}` placeholder)."""
    return echo_service(
        port, **{"replicas": 3, "version": "v1", "env": {"ECHO_MESSAGE": "{version}"}, **overrides}
    )


def messages(port: int, count: int = 3) -> list[str]:
    return [health(port + i)["message"] for i in range(count)]


def test_deploy_runs_the_canary_beside_the_stable_release(make_provider: MakeProvider) -> None:
    port = free_port_block(3)
    provider = make_provider(api=versioned(port))
    pids = provider.start("api")["pids"]

    deployed = provider.deploy("api", version="v2", env={"EXTRA": "x"}, percent=10, idempotency_key="d1")

    # 10 % of 3 replicas is one: the highest index, replaced; the two others untouched.
    assert deployed["canary_replicas"] == [2]
    assert (deployed["stable_version"], deployed["canary_version"], deployed["version"]) == ("v1", "v2", "v2")
    [replaced] = deployed["replicas"]
    assert (replaced["replica"], replaced["old_pid"], replaced["healthy"]) == (2, pids[2], True)
    assert messages(port) == ["v1", "v1", "v2"]
    status = provider.status("api")
    assert [r["version"] for r in status["replicas"]] == ["v1", "v1", "v2"]
    assert [r["pid"] for r in status["replicas"]][:2] == pids[:2]
    assert (status["stable_version"], status["canary_version"]) == ("v1", "v2")

    # Redelivered: the recorded result, nothing replaced; another key converges on the same plan.
    again = provider.deploy("api", version="v2", env={"EXTRA": "x"}, percent=10, idempotency_key="d1")
    assert again == {**deployed, "deduplicated": True}
    assert provider.deploy("api", version="v2", env={"EXTRA": "x"}, percent=10)["replicas"] == []
    # A restart keeps each replica on its release.
    provider.restart("api")
    assert messages(port) == ["v1", "v1", "v2"]
    # Another version while this canary runs is refused, naming the field.
    with pytest.raises(ProviderError, match="already runs canary version 'v2'") as refused:
        provider.deploy("api", version="v3", percent=10)
    assert (refused.value.field, refused.value.retryable) == ("version", False)


def test_promote_moves_every_replica_to_the_canary_and_keeps_the_canary_process(
    make_provider: MakeProvider,
) -> None:
    port = free_port_block(3)
    provider = make_provider(api=versioned(port))
    provider.start("api")
    canary_pid = provider.deploy("api", version="v2", percent=34)["replicas"][0]["pid"]

    with pytest.raises(ProviderError, match="runs canary version 'v2', not 'v9'"):
        provider.promote("api", version="v9")
    promoted = provider.promote("api", version="v2", idempotency_key="p1")

    assert [r["replica"] for r in promoted["replicas"]] == [0, 1]
    assert (promoted["stable_version"], promoted["canary_version"], promoted["canary_replicas"]) == (
        "v2",
        None,
        [],
    )
    assert messages(port) == ["v2", "v2", "v2"]
    assert provider.status("api")["replicas"][2]["pid"] == canary_pid
    assert provider.promote("api", version="v2", idempotency_key="p1")["deduplicated"] is True
    # Promoted already: promoting it again changes nothing; rolling it back is refused.
    assert provider.promote("api", version="v2")["replicas"] == []
    with pytest.raises(ProviderError, match="was promoted"):
        provider.rollback("api", version="v2")
    # New replicas, and replicas started again, run the promoted release.
    provider.scale("api", replicas=4)
    provider.stop("api")
    provider.start("api")
    assert messages(port, 4) == ["v2"] * 4


def test_rollback_puts_the_canary_replicas_back_on_the_stable_release(make_provider: MakeProvider) -> None:
    port = free_port_block(3)
    provider = make_provider(api=versioned(port))
    pids = provider.start("api")["pids"]
    provider.deploy("api", version="v2", percent=34)

    rolled_back = provider.rollback("api", version="v2", idempotency_key="r1")

    assert rolled_back["version"] == "v2"
    assert (rolled_back["stable_version"], rolled_back["canary_version"]) == ("v1", None)
    assert [r["replica"] for r in rolled_back["replicas"]] == [2]
    assert messages(port) == ["v1", "v1", "v1"]
    assert [r["pid"] for r in provider.status("api")["replicas"]][:2] == pids[:2]
    # Nothing left to roll back: converged, nothing replaced; nothing to promote under that version.
    assert provider.rollback("api")["replicas"] == []
    with pytest.raises(ProviderError, match="no canary of version 'v2'"):
        provider.promote("api", version="v2")


def test_a_version_that_does_not_start_is_rolled_back(make_provider: MakeProvider) -> None:
    port = free_port_block(3)
    provider = make_provider(api=versioned(port))
    pids = provider.start("api")["pids"]

    # Its environment keeps the interpreter from starting: the canary replica exits at once.
    with pytest.raises(ProviderError, match="did not start healthy, so it was rolled back") as failed:
        provider.deploy("api", version="v2", env={"PYTHONHOME": "/nonexistent"}, percent=34)

    assert (failed.value.field, failed.value.retryable) == ("version", False)
    assert "replica-2.log" in str(failed.value)
    status = provider.status("api")
    assert (status["stable_version"], status["canary_version"]) == ("v1", None)
    assert [r["pid"] for r in status["replicas"]][:2] == pids[:2]
    assert messages(port) == ["v1", "v1", "v1"]


def test_an_interrupted_deploy_is_finished_by_the_next_call(make_provider: MakeProvider) -> None:
    from automation.providers.local.releases import Canary, ReleasePlan, load_plan, release_env, save_plan
    from automation.providers.local.services_file import load_services_file
    from automation.providers.local.state import ServiceState

    port = free_port_block(3)
    provider = make_provider(api=versioned(port))
    provider.start("api")
    # As a worker dying right after recording the plan leaves it: the plan says v2, the replicas run v1.
    spec = load_services_file(provider.services_file).services["api"]
    state = ServiceState(provider.state_dir(), "api")
    save_plan(state, ReleasePlan(load_plan(spec, state).stable, Canary(release_env("v2", {}), (2,))))

    resumed = provider.deploy("api", version="v2", percent=34)

    assert [r["replica"] for r in resumed["replicas"]] == [2]
    assert messages(port) == ["v1", "v1", "v2"]


@pytest.mark.parametrize(
    ("call", "field", "reason"),
    [
        (lambda p: p.deploy("api", version="v 2"), "version", "version must be"),
        (lambda p: p.deploy("api", version="v2", env={"BAD-NAME": "x"}), "env", "env names"),
        (lambda p: p.deploy("api", version="v2", percent=0), "percent", "percent must be in"),
        (lambda p: p.deploy("api", version="v2", percent=150), "percent", "percent must be in"),
    ],
)
def test_bad_release_input_is_refused_naming_the_field(
    make_provider: MakeProvider, call: Callable[[LocalProvider], Any], field: str, reason: str
) -> None:
    provider = make_provider(api=versioned(free_port_block(3)))

    with pytest.raises(ProviderError, match=reason) as refused:
        call(provider)

    assert (refused.value.field, refused.value.retryable) == (field, False)
    assert not (provider.state_dir() / "api" / "release.json").exists()


def test_a_canary_needs_a_replica_left_on_the_stable_release(make_provider: MakeProvider) -> None:
    port = free_port_block(1)
    provider = make_provider(api=versioned(port, replicas=1))
    provider.start("api")

    with pytest.raises(ProviderError, match="would leave none on the stable release") as refused:
        provider.deploy("api", version="v2", percent=10)

    assert refused.value.field == "percent"
    # To 100 %, the version becomes the stable release on every replica.
    deployed = provider.deploy("api", version="v2", percent=100)
    assert (deployed["stable_version"], deployed["canary_version"]) == ("v2", None)
    assert messages(port, 1) == ["v2"]


def test_the_stub_provider_refuses_releases() -> None:
    from automation.providers import StubProvider

    with pytest.raises(ProviderError, match="does not support releases") as refused:
        StubProvider(services=["api"]).deploy("api", version="v2")
    assert (refused.value.field, refused.value.retryable) == ("provider", False)
