"""The engine's configuration: `AutomationConfig` (the public knobs) and the stored copy every worker reads.

Django's `automation/settings.py` holds deployment settings from the environment (stores, broker);
everything the public API calls configuration lives here.
"""

from automation.config.schema import AutomationConfig
from automation.config.store import current_config, save_config

__all__ = ["AutomationConfig", "current_config", "save_config"]
