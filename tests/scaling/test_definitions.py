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


def workers(**changes: Any) -> dict[str, Any]:
    return {"kind": "celery", "name": "own-low", "queue": "low", **changes}


def test_a_celery_target_takes_its_service_and_policy_from_its_kind_and_queue() -> None:
    from automation.delivery import longest_time_limit

    parsed = ScalingTargetDefinition.parse(workers(min_replicas=0, max_replicas=6))
    assert (parsed.service, parsed.policy, parsed.provider) == ("celery-low", "reactive", "local")
    settings = parsed.pool_settings()
    assert (settings.min_workers, settings.max_workers, settings.drain_seconds) == (0, 6, 30.0)
    document = parsed.as_document()
    assert "load" not in document and "forecast" not in document and document["pool"]["rate_window"] == 5
    assert ScalingTargetDefinition.parse(document) == parsed  # what is stored parses back the same
    # Without a grace period, the scale run may wait as long as a step may run.
    from django.conf import settings as django

    assert parsed.scale_timeout == longest_time_limit(float(django.VISIBILITY_TIMEOUT))


def test_a_celery_target_reads_its_pool_settings_and_outwaits_the_grace_period() -> None:
    parsed = ScalingTargetDefinition.parse(
        workers(
            pool={"drain_seconds": "1m", "scale_in_cooldown": "2m", "grace_period": "5m", "rate_window": 3}
        )
    )
    assert parsed.scale_timeout == 300 + 60
    settings = parsed.pool_settings()
    assert (settings.drain_seconds, settings.scale_in_cooldown) == (60.0, 120.0)
    assert ScalingTargetDefinition.parse(target()).scale_timeout is None  # a service: the engine's default


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"queue": "has space"}, "queue"),
        ({"queue": "-Q"}, "queue"),
        ({"queue": "x" * 101}, "queue"),
        ({"queue": None}, "queue"),
        ({"queue": "critical"}, "queue"),  # the tick itself runs there
        ({"min_replicas": 4, "max_replicas": 2}, "min_replicas"),
        ({"service": "web-api"}, "service"),
        ({"policy": "predictive"}, "policy"),
        ({"pool": {"drain_seconds": 0}}, "pool.drain_seconds"),
        ({"pool": {"max_scale_in_step": 0}}, "pool.max_scale_in_step"),
        ({"pool": {"rate_window": "soon"}}, "pool.rate_window"),
        ({"pool": {"grace_period": "30d"}}, "pool.grace_period"),  # past what a scale run may wait
        ({"pool": {"spare": 1}}, "pool.spare"),
        ({"load": {"metric": "rps"}}, "load"),  # a celery target's load is its queue
        ({"capacity_per_replica": 5}, "capacity_per_replica"),
        ({"forecast": {}}, "forecast"),
        ({"kind": "lambda"}, "kind"),
    ],
)
def test_a_bad_celery_field_is_named(changes: dict[str, Any], field: str) -> None:
    assert field in fields(workers(**changes))


def test_a_service_target_refuses_the_fields_of_a_worker_pool() -> None:
    assert fields(target(queue="low", pool={})) == ["queue", "pool"]
    assert "service" in fields({"name": "web", "load": {"metric": "rps"}, "capacity_per_replica": 1})
