"""The applied AutomationConfig: written by AutomationEngine, read (cached briefly) by every worker."""

from __future__ import annotations

import time

from automation.config import AutomationConfig
from automation.coordination import get_coordinator

_CACHE_SECONDS = 5.0
_cache: tuple[float, AutomationConfig] | None = None


def current_config() -> AutomationConfig:
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < _CACHE_SECONDS:
        return _cache[1]
    from automation.models import EngineSettings

    stored = EngineSettings.objects.filter(pk=1).values_list("config", flat=True).first()
    config = AutomationConfig(**stored) if stored else AutomationConfig()
    _cache = (now, config)
    return config


def apply_config(config: AutomationConfig) -> None:
    """Store `config` where every worker reads it, and push the fleet-wide limits to where they act."""
    global _cache
    from automation.models import EngineSettings
    from automation.schedules import set_monitoring_interval

    EngineSettings.objects.update_or_create(pk=1, defaults={"config": config.model_dump(mode="json")})
    get_coordinator().set_action_limit(config.max_concurrent_actions)
    set_monitoring_interval(config.monitoring_interval)
    _cache = (time.monotonic(), config)
