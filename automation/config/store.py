"""The stored AutomationConfig: written by `AutomationEngine(config)`, read (cached briefly) by every worker.

PostgreSQL holds the only copy: the fleet-wide action limit and the monitoring interval are read from
it, so a broker restart cannot reset them.
"""

from __future__ import annotations

import time

from automation.config.schema import AutomationConfig

_CACHE_SECONDS = 5.0
_cache: tuple[float, AutomationConfig] | None = None


def current_config() -> AutomationConfig:
    global _cache
    now = time.monotonic()
    if _cache is not None and now - _cache[0] < _CACHE_SECONDS:
        return _cache[1]
    from automation.models import EngineConfig

    stored = EngineConfig.objects.filter(pk=1).values_list("config", flat=True).first()
    config = AutomationConfig(**stored) if stored else AutomationConfig()
    _cache = (now, config)
    return config


def save_config(config: AutomationConfig) -> None:
    """Store `config` where every worker reads it (each picks it up within a few seconds)."""
    global _cache
    from automation.models import EngineConfig

    EngineConfig.objects.update_or_create(pk=1, defaults={"config": config.model_dump(mode="json")})
    _cache = (time.monotonic(), config)

