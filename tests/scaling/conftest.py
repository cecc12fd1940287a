"""A real `automation serve` for the scaling API tests (bearer token required), and predictive scaling
switched on for one test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api_server import ApiServer
from tests.conftest import STATE_DIR, unique

TOKEN = "scaling-t0ken"


@pytest.fixture(scope="module")
def server(engine: Any) -> Iterator[ApiServer]:
    started = ApiServer(log_path=STATE_DIR / f"{unique('scaling-api')}.log", tokens=TOKEN, workers=1)
    yield started
    started.stop()


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as c:
        yield c


@pytest.fixture
def predictive_scaling(engine: Any) -> Iterator[None]:
    """AutomationConfig.enable_predictive_scaling on for one test (restored after); the targets the test
    stored are disabled after it, so no later tick (a worker's, another test's) acts on them."""
    from automation import AutomationConfig
    from automation.config.apply import apply_config
    from automation.models import ScalingTarget

    original = engine.config
    apply_config(AutomationConfig(**{**original.model_dump(), "enable_predictive_scaling": True}))
    yield
    ScalingTarget.objects.update(enabled=False)
    apply_config(original)
