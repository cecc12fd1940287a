"""Scaling targets as an operator declares them: `automation scaling apply -f` (real processes, exit codes)
and the HTTP API of a real `automation serve` (bearer token, 422 naming the field). Bad input stores
nothing; a stored target registers its scale workflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.alerting.test_alerting_cli import cli, one_line_error
from tests.api_server import ApiServer
from tests.conftest import unique

pytestmark = pytest.mark.usefixtures("engine")


def target(name: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": name,
        "service": "web-api",
        "load": {"metric": "http_requests_per_second", "matchers": {"service": "web"}, "unit": "req/s"},
        "capacity_per_replica": 200,
        "min_replicas": 2,
        "max_replicas": 12,
        "policy": "hybrid",
        "lead_time": "5m",
        "provisioning_delay": "3m",
        "scale_in": {"max_percent": 25, "cooldown": "10m"},
        **changes,
    }


def stored(*names: str) -> set[str]:
    from automation.models import ScalingTarget, Workflow

    found = set(ScalingTarget.objects.filter(name__in=names).values_list("name", flat=True))
    workflows = set(
        Workflow.objects.filter(name__in=[f"scaling.{n}" for n in names]).values_list("name", flat=True)
    )
    assert workflows == {f"scaling.{n}" for n in found}  # a target and its workflow, or neither
    return found


def write(path: Path, document: Any) -> str:
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_apply_stores_the_targets_and_lists_them(tmp_path: Path) -> None:
    names = [unique("web"), unique("api")]
    result = cli(
        "scaling", "apply", "-f", write(tmp_path / "scaling.yml", {"targets": [target(n) for n in names]})
    )
    assert result.returncode == 0, result.stderr
    assert stored(*names) == set(names)
    listed = cli("scaling", "targets")
    assert listed.returncode == 0, listed.stderr
    for name in names:
        line = next(line for line in listed.stdout.splitlines() if line.startswith(name))
        assert "disabled" in line and "hybrid" in line  # predictive scaling is off in the engine's config
    assert "predictive scaling is off" in listed.stdout


def test_bad_yaml_fields_exit_2_naming_each_field_and_store_nothing(tmp_path: Path) -> None:
    good, bad = unique("good"), unique("bad")
    document = {
        "targets": [
            target(good),
            target(bad, policy="psychic", min_replicas=20, scale_in={"max_percent": 0}),
        ]
    }
    error = one_line_error(cli("scaling", "apply", "-f", write(tmp_path / "scaling.yml", document)))
    assert "targets[1].policy: " in error
    assert "targets[1].scale_in.max_percent: " in error
    assert "targets[0]" not in error
    assert stored(good, bad) == set()  # the good one is not stored either: all or none


def test_a_name_given_twice_and_a_file_that_is_not_yaml_exit_2(tmp_path: Path) -> None:
    name = unique("twice")
    error = one_line_error(
        cli("scaling", "apply", "-f", write(tmp_path / "s.yml", {"targets": [target(name), target(name)]}))
    )
    assert f"targets[1].name: a second target named '{name}'" in error
    (tmp_path / "broken.yml").write_text("targets: [\n")
    assert "not valid YAML" in one_line_error(cli("scaling", "apply", "-f", str(tmp_path / "broken.yml")))
    assert stored(name) == set()


def test_the_api_puts_gets_lists_and_deletes_a_target(client: httpx.Client) -> None:
    name = unique("web")
    body = target(name)
    body.pop("name")
    put = client.put(f"/api/v1/scaling/targets/{name}", json=body)
    assert put.status_code == 200, put.text
    assert put.json()["definition"]["scale_in"]["cooldown"] == 600.0
    assert put.json()["status"] == "disabled" and put.json()["last_decision"] is None
    got = client.get(f"/api/v1/scaling/targets/{name}")
    assert got.status_code == 200 and got.json()["definition"]["name"] == name
    listed = client.get("/api/v1/scaling/targets").json()
    assert listed["enabled"] is False and name in [t["name"] for t in listed["targets"]]
    assert client.get(f"/api/v1/scaling/targets/{name}/decisions").json() == {"target": name, "decisions": []}
    assert client.delete(f"/api/v1/scaling/targets/{name}").status_code == 204
    assert client.get(f"/api/v1/scaling/targets/{name}").status_code == 404
    assert client.delete(f"/api/v1/scaling/targets/{name}").status_code == 404


def test_bad_api_input_is_422_naming_the_field_and_stores_nothing(client: httpx.Client) -> None:
    name = unique("bad")
    answer = client.put(f"/api/v1/scaling/targets/{name}", json=target(name, max_replicas=0, policy="x"))
    assert answer.status_code == 422, answer.text
    assert {e["field"] for e in answer.json()["errors"]} == {"max_replicas", "policy"}
    early = client.put(f"/api/v1/scaling/targets/{name}", json=target(name, lead_time="1s"))
    assert early.status_code == 422 and [e["field"] for e in early.json()["errors"]] == ["lead_time"]
    other = client.put(f"/api/v1/scaling/targets/{name}", json=target("someone-else"))
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "name"
    posted = client.post("/api/v1/scaling/targets", json=target(name, load={"source": "prometheus"}))
    assert posted.status_code == 422 and posted.json()["errors"][0]["field"] == "load.query"
    limit = client.get(f"/api/v1/scaling/targets/{name}/decisions?limit=0")
    assert limit.status_code in (404, 422)
    assert stored(name) == set()


def test_the_api_needs_the_token(server: ApiServer) -> None:
    assert httpx.get(f"{server.url}/api/v1/scaling/targets").status_code == 401


def test_the_engine_registers_a_target_from_python_or_names_the_bad_field(engine: Any) -> None:
    from automation.errors import DefinitionError

    name = unique("py")
    assert engine.register_scaling_target(target(name)) == name
    assert stored(name) == {name}
    bad = unique("pybad")
    with pytest.raises(DefinitionError) as caught:
        engine.register_scaling_target(target(bad, scale_in={"cooldown": "forever"}))
    assert [path for path, _ in caught.value.errors] == ["scale_in.cooldown"]
    assert stored(bad) == set()
    assert engine.evaluate_scaling() == {}  # predictive scaling is off: nothing decided


def pool_target(name: str, **changes: Any) -> dict[str, Any]:
    return {"kind": "celery", "name": name, "queue": "low", "min_replicas": 1, "max_replicas": 4, **changes}


def test_a_celery_target_is_stored_through_the_api_with_its_scale_run_on_critical(
    client: httpx.Client,
) -> None:
    from automation.models import ScalingTarget, Workflow

    name = unique("own")
    answer = client.put(f"/api/v1/scaling/targets/{name}", json=pool_target(name, pool={"grace_period": 40}))
    assert answer.status_code == 200, answer.text
    definition = answer.json()["definition"]
    assert (definition["kind"], definition["service"], definition["policy"]) == (
        "celery",
        "celery-low",
        "reactive",
    )
    assert "load" not in definition and definition["pool"]["grace_period"] == 40
    assert ScalingTarget.objects.get(name=name).kind == "celery"
    scale = Workflow.objects.get(name=f"scaling.{name}").versions.order_by("-version").first().definition
    assert scale["priority"] == "critical" and scale["actions"][0]["timeout_seconds"] == 100


def test_bad_celery_targets_are_refused_by_the_api_the_cli_and_python_storing_nothing(
    client: httpx.Client, tmp_path: Path, engine: Any
) -> None:
    from automation.errors import DefinitionError

    name = unique("own")
    answer = client.put(
        f"/api/v1/scaling/targets/{name}", json=pool_target(name, queue="low queue", max_replicas=0)
    )
    assert answer.status_code == 422, answer.text
    assert {e["field"] for e in answer.json()["errors"]} == {"queue", "max_replicas"}
    document = {"targets": [pool_target(name, load={"metric": "rps"}, pool={"scale_in_cooldown": -1})]}
    error = one_line_error(cli("scaling", "apply", "-f", write(tmp_path / "pools.yml", document)))
    assert "targets[0].load: not read by a celery target" in error
    assert "targets[0].pool.scale_in_cooldown: " in error
    with pytest.raises(DefinitionError) as caught:
        engine.register_scaling_target(pool_target(name, queue="critical", policy="hybrid", min_replicas=9))
    assert [path for path, _ in caught.value.errors] == ["min_replicas", "queue", "policy"]
    assert stored(name) == set()


def test_workers_declared_with_a_grace_period_the_scale_run_cannot_wait_for_are_refused(
    engine: Any,
) -> None:
    """The services file on this host gives the workers longer to finish a step than the scale run waits:
    the run would time out while a departing worker finishes its step."""
    from automation.errors import DefinitionError
    from automation.scaling.worker_services import worker_services
    from tests.conftest import SERVICES_FILE

    queue = unique("q").replace("-", "_")
    SERVICES_FILE.write_text(yaml.safe_dump({"services": worker_services([queue], grace_period=600)}))
    name = unique("own")
    with pytest.raises(DefinitionError) as caught:
        engine.register_scaling_target(pool_target(name, queue=queue, pool={"grace_period": 300}))
    [(field, reason)] = caught.value.errors
    assert field == "pool.grace_period" and "a grace period of 600 s" in reason, reason
    assert stored(name) == set()
    assert engine.register_scaling_target(pool_target(name, queue=queue, pool={"grace_period": 600})) == name
