"""Applying a config fleet-wide: store it, then push what must act at once (the action limit, Beat's
monitoring interval) to where it acts."""

from __future__ import annotations

from automation.config.schema import AutomationConfig
from automation.config.store import save_config


def apply_config(config: AutomationConfig) -> None:
    """Store `config`, make the action limit take effect at once, and move Beat's monitoring jobs."""
    # The action limit first: if Redis is down, nothing is stored and the caller sees the error (a limit
    # stored but not pushed would let an older copy in Redis win until Redis lost it).
    from automation.access.services import audit
    from automation.coordination import get_coordinator
    from automation.models import EngineConfig
    from automation.schedules import set_monitoring_interval

    get_coordinator().set_limit(config.max_concurrent_actions)
    before = EngineConfig.objects.filter(pk=1).values_list("config", flat=True).first()
    after = config.model_dump(mode="json")
    save_config(config)
    if before != after:  # every AutomationEngine(config) applies its config: only a change is one
        audit.record("config.applied", "engine_config", "engine", before=before, after=after)
    set_monitoring_interval(config.monitoring_interval)
