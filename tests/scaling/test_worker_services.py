"""Services-file entries for the engine's own workers, read back by the `local` provider's loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from automation.delivery import longest_time_limit
from automation.providers.local import load_services_file
from automation.scaling.worker_services import (
    SHUTDOWN_MARGIN,
    WorkerServiceError,
    worker_grace_period,
    worker_service_name,
    worker_service_spec,
    worker_services,
)


def test_a_worker_service_runs_one_celery_process_per_replica_on_its_queue() -> None:
    spec = worker_service_spec("low", include=["tests.slow_actions"], grace_period=40)
    assert spec.command[:6] == ["{python}", "-m", "celery", "-A", "automation", "worker"]
    flags = spec.command[6:]
    assert flags[flags.index("-Q") + 1] == "low"
    assert flags[flags.index("-c") + 1] == "1"
    assert flags[flags.index("-P") + 1] == "prefork"
    assert flags[flags.index("--hostname") + 1] == "low-{replica}@%h"
    assert flags[-2:] == ["--include", "tests.slow_actions"]
    assert spec.grace_period == 40 and spec.replicas == 0 and spec.health_url is None


def test_the_default_grace_period_outlasts_any_step_under_the_visibility_timeout() -> None:
    from django.conf import settings

    longest = longest_time_limit(float(settings.VISIBILITY_TIMEOUT))
    assert worker_grace_period() == longest + SHUTDOWN_MARGIN
    assert worker_service_spec("default").grace_period == longest + SHUTDOWN_MARGIN
    assert worker_grace_period(12) == 12 + SHUTDOWN_MARGIN


def test_entries_load_as_the_provider_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "services.yml"
    path.write_text(yaml.safe_dump({"services": worker_services(["low", "high"], grace_period=45)}))
    loaded = load_services_file(path).services
    assert (
        sorted(loaded)
        == [worker_service_name("high"), worker_service_name("low")]
        == ["celery-high", "celery-low"]
    )
    assert loaded["celery-low"] == worker_service_spec("low", grace_period=45)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"queue": ""}, "queue"),
        ({"queue": "a b"}, "queue"),
        ({"queue": "--pool"}, "queue"),
        ({"queue": "low", "concurrency": 0}, "concurrency"),
        ({"queue": "low", "grace_period": -1}, "grace_period"),
    ],
)
def test_bad_entries_name_their_field(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(WorkerServiceError) as caught:
        worker_service_spec(**arguments)  # type: ignore[arg-type]
    assert caught.value.errors[0][0] == field
