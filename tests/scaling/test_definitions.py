"""Scaling target definitions: defaults, and every bad field named."""

from __future__ import annotations

from typing import Any

import pytest

from automation.errors import DefinitionError
from automation.scaling.definitions import ScalingTargetDefinition


def target(**changes: Any) -> dict[str, Any]:
    return {
        "name": "web",
        "service": "web-api",
        "load": {"metric": "http_requests_per_second", "matchers": {"service": "web"}, "unit": "req/s"},
        "capacity_per_replica": 200,
        **changes,
    }


def fields(document: Any) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        ScalingTargetDefinition.parse(document)
    return [path for path, _ in caught.value.errors]


def test_a_minimal_target_takes_the_defaults() -> None:
    parsed = ScalingTargetDefinition.parse(target())
    assert parsed.policy == "hybrid"
    assert parsed.provider == "local"
    assert parsed.lead == parsed.provisioning_delay == 60.0
    assert parsed.scale_in.on_forecast_alone is False
    assert parsed.capacity == 200
    again = ScalingTargetDefinition.parse(parsed.as_document())  # what is stored parses back the same
    assert again == parsed


def test_durations_read_as_text_or_seconds() -> None:
    parsed = ScalingTargetDefinition.parse(
        target(lead_time="5m", provisioning_delay=90, scale_in={"cooldown": "10m", "max_percent": 20})
    )
    assert (parsed.lead, parsed.provisioning_delay, parsed.scale_in.cooldown) == (300.0, 90.0, 600.0)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"policy": "psychic"}, "policy"),
        ({"min_replicas": -1}, "min_replicas"),
        ({"min_replicas": 5, "max_replicas": 3}, "min_replicas"),
        ({"capacity_per_replica": 0}, "capacity_per_replica"),
        ({"capacity_per_replica": None}, "capacity_per_replica"),
        ({"lead_time": "30s", "provisioning_delay": "2m"}, "lead_time"),
        ({"lead_time": "soon"}, "lead_time"),
        ({"scale_in": {"max_percent": 150}}, "scale_in.max_percent"),
        ({"scale_in": {"cooldwn": 5}}, "scale_in.cooldwn"),
        ({"forecast": {"quantile": 1.5}}, "forecast.quantile"),
        ({"forecast": {"model": "oracle"}}, "forecast.model"),
        ({"provider": "nowhere"}, "provider"),
        ({"load": {"source": "prometheus", "metric": "x"}}, "load.query"),
        ({"load": {"query": "sum(rate(x[1m]))"}}, "load.query"),
        ({"load": {"metric": "bad name"}}, "load.metric"),
        ({"load": {"metric": "x", "matchers": ['9service="x"']}}, "load.matchers"),
        ({"name": "no spaces please"}, "name"),
        ({"replicas": 3}, "replicas"),
    ],
)
def test_a_bad_field_is_named(changes: dict[str, Any], field: str) -> None:
    assert field in fields(target(**changes))


def test_where_prefixes_every_field() -> None:
    with pytest.raises(DefinitionError) as caught:
        ScalingTargetDefinition.parse(target(policy="x", min_replicas=-2), where="targets[3]")
    assert {path for path, _ in caught.value.errors} == {"targets[3].policy", "targets[3].min_replicas"}


def test_a_per_replica_load_needs_no_capacity() -> None:
    parsed = ScalingTargetDefinition.parse(
        target(capacity_per_replica=None, load={"metric": "cpu", "per_replica": True})
    )
    assert parsed.capacity == 1.0


def test_the_forecast_history_rule_binds_forecasting_policies_only() -> None:
    short = {"metric": "rps", "history": "10m"}
    assert ScalingTargetDefinition.parse(target(policy="reactive", load=short)).load.history == 600.0
    assert "forecast.min_history" in fields(target(policy="predictive", load=short))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"load": {"source": "prometheus", "query": "up", "step": 30, "history": "7d"}}, "load.step"),
        ({"load": {"metric": "rps", "step": 1, "history": "90d"}}, "load.step"),
        ({"provisioning_delay": "30d", "load": {"metric": "rps", "step": 60}}, "provisioning_delay"),
    ],
)
def test_histories_and_horizons_too_large_to_read_or_forecast_are_refused(
    changes: dict[str, object], field: str
) -> None:
    from automation.errors import DefinitionError
    from automation.scaling.definitions import ScalingTargetDefinition

    document = {"name": "big", "service": "api", "provider": "stub", "capacity_per_replica": 10, **changes}
    with pytest.raises(DefinitionError) as caught:
        ScalingTargetDefinition.parse(document)
    assert field in [path for path, _ in caught.value.errors], caught.value.errors
