"""The capacity plan of stored scaling targets, from their load in the push store, over the API and the
CLI (the plan itself is tested in tests/test_capacity.py)."""

from __future__ import annotations

import json
import math
import time

import httpx
import pytest

from tests.alerting.test_alerting_cli import cli
from tests.alerting.test_rule_evaluation import push
from tests.conftest import unique

pytestmark = pytest.mark.usefixtures("engine")


def daily_cycle(metric: str, now: float, *, days: int = 3, peak: float = 900.0) -> None:
    """Five-minute samples of a load going from 20% to 100% of `peak` each day, up to `now`."""
    end = (now // 300) * 300
    samples = []
    for k in range(days * 288, -1, -1):
        at = end - 300 * k
        hour = (at % 86400) / 3600
        samples.append((at, peak * (0.6 - 0.4 * math.cos(2 * math.pi * (hour - 2) / 24))))
    push(metric, {"service": "shop"}, samples)


def test_the_plan_of_a_stored_target_over_the_api_and_the_cli(client: httpx.Client) -> None:
    from automation.scaling.services.targets import save_target

    name, metric = unique("cap"), unique("shop_rps").replace("-", "_")
    daily_cycle(metric, time.time())
    save_target(
        {
            "name": name,
            "service": "shop",
            "provider": "stub",
            "load": {
                "metric": metric,
                "matchers": {"service": "shop"},
                "step": "5m",
                "history": "3d",
                "unit": "req/s",
            },
            "capacity_per_replica": 100,
            "target_utilization": 0.8,
            "min_replicas": 1,
            "max_replicas": 8,
            "enabled": False,
        }
    )
    answer = client.get("/api/v1/capacity", params={"horizon": "7d"})
    assert answer.status_code == 200, answer.text
    (plan,) = [p for p in answer.json()["targets"] if p["target"] == name]
    # the peak (900 req/s) needs 12 replicas of 80 at 80% use: more than max_replicas 8
    assert plan["verdict"] == "will_hit_max" and plan["horizon"] == "7d"
    assert plan["replicas_needed"] >= 12 and plan["headroom"] < 0
    assert plan["unit"] == "req/s" and any("raise max_replicas" in line for line in plan["advice"])

    refused = client.get("/api/v1/capacity", params={"horizon": "soon"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "horizon"
    assert client.get("/api/v1/capacity", params={"level": "2"}).status_code == 422

    shown = cli("capacity", "plan", "--horizon", "7d", "--json")
    assert shown.returncode == 0, shown.stderr
    (same,) = [p for p in json.loads(shown.stdout)["targets"] if p["target"] == name]
    assert same["replicas_needed"] == plan["replicas_needed"]
