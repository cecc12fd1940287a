"""The provider registry, the public surface of `automation.providers`, and the in-memory stub provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

import automation.providers as providers
from automation.errors import ActionError
from automation.providers import (
    LocalProvider,
    ProviderError,
    ServiceProvider,
    StubProvider,
    base,
    get_provider,
    provider_names,
    register_provider,
)


def test_public_surface_is_pinned() -> None:
    assert providers.__all__ == [
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


def test_builtin_providers_are_registered() -> None:
    assert {"local", "stub"} <= set(provider_names())
    assert issubclass(ProviderError, ActionError)


def test_get_provider_builds_with_options(tmp_path: Path) -> None:
    provider = get_provider("local", services_file=tmp_path / "services.yml", state_dir=tmp_path)

    assert isinstance(provider, LocalProvider)
    assert provider.services_file == tmp_path / "services.yml"


def test_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ProviderError) as raised:
        get_provider("kubernetes")

    assert "unknown service provider 'kubernetes'" in str(raised.value)
    assert "local" in str(raised.value) and "stub" in str(raised.value)
    assert raised.value.retryable is False


def test_unknown_option_is_refused_not_ignored() -> None:
    with pytest.raises(
        ProviderError, match="unknown option.*servces_file.*accepted: .*services_file"
    ) as raised:
        get_provider("local", servces_file="x.yml")

    assert raised.value.field == "servces_file"


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "_PROVIDERS", dict(base._PROVIDERS))


class _Dummy(ServiceProvider):
    name: ClassVar[str] = "dummy"

    def __init__(self, *, region: str = "eu") -> None:
        self.region = region

    def restart(self, service: str, **options: Any) -> dict[str, Any]:
        return {}

    def scale(self, service: str, **options: Any) -> dict[str, Any]:
        return {}

    def status(self, service: str) -> dict[str, Any]:
        return {}

    def start(self, service: str, **options: Any) -> dict[str, Any]:
        return {}

    def stop(self, service: str, **options: Any) -> dict[str, Any]:
        return {}


@pytest.mark.usefixtures("isolated_registry")
def test_register_then_get_a_third_party_provider() -> None:
    register_provider(_Dummy)

    provider = get_provider("dummy", region="us")

    assert isinstance(provider, _Dummy) and provider.region == "us"


@pytest.mark.usefixtures("isolated_registry")
def test_duplicate_provider_name_is_refused() -> None:
    class AnotherLocal(_Dummy):
        name: ClassVar[str] = "local"

    with pytest.raises(ValueError, match="A service provider named 'local' is already registered"):
        register_provider(AnotherLocal)
    assert get_provider("local").__class__ is LocalProvider


# ------------------------------------------------------------------ stub provider


def test_stub_restart_gives_new_pids_and_records_the_call() -> None:
    stub = StubProvider(services={"api": 2})
    old = stub.pid("api")

    result = stub.restart("api", grace_period=3)

    assert result["old_pid"] == old and result["pid"] == stub.pid("api") != old
    assert [r["replica"] for r in result["replicas"]] == [0, 1]
    assert stub.calls[-1].operation == "restart" and stub.calls[-1].options["grace_period"] == 3
    json.dumps(result)


def test_stub_deduplicates_by_idempotency_key() -> None:
    stub = StubProvider(services=["api"])

    first = stub.restart("api", idempotency_key="k")
    again = stub.restart("api", idempotency_key="k")

    assert again == {**first, "deduplicated": True}
    assert stub.pid("api") == first["pid"]


def test_stub_scale_start_stop_and_status() -> None:
    stub = get_provider("stub", services={"api": 1})
    assert isinstance(stub, StubProvider)

    up = stub.scale("api", replicas=3)
    down = stub.scale("api", replicas=1)

    assert (up["previous_replicas"], len(up["started"]), len(up["pids"])) == (1, 2, 3)
    assert [r["replica"] for r in down["stopped"]] == [2, 1]
    assert len(stub.stop("api")["stopped"]) == 1
    assert stub.status("api")["running_replicas"] == 0
    assert len(stub.start("api")["started"]) == 1


def test_stub_unknown_service_and_injected_failure() -> None:
    stub = StubProvider(services=["api"])
    stub.fail("api", "restart")

    with pytest.raises(ProviderError) as unknown:
        stub.restart("db")
    with pytest.raises(ProviderError) as injected:
        stub.restart("api")

    assert unknown.value.retryable is False and "'db'" in str(unknown.value)
    assert injected.value.retryable is True
    assert stub.restart("api")["pid"] is not None  # the failure was for one call only
