"""Sizes the scaling API answers with (a leaf: the views, the CLI and the OpenAPI document read them)."""

from __future__ import annotations

#: Targets one list answer carries.
MAX_LISTED = 1000
#: Decisions one decision-log answer carries (the newest), and the default.
MAX_DECISIONS = 1000
DEFAULT_DECISIONS = 100
