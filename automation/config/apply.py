"""Applying a config fleet-wide: store it, then push what must act at once (the action limit, Beat's
monitoring interval) to where it acts."""

from __future__ import annotations

from automation.config.schema import AutomationConfig
from automation.config.store import save_config


def apply_config(config: AutomationConfig) -> None:
    """Store `config`, make the action limit take effect at once, and move Beat's monitoring jobs."""
    from automation.coordination import get_coordinator
    from automation.schedules import set_monitoring_interval

    save_config(config)
    get_coordinator().set_limit(config.max_concurrent_actions)
    set_monitoring_interval(config.monitoring_interval)
