"""Sizes the incidents API answers with (a leaf: the views, the CLI and the OpenAPI document read them)."""

from __future__ import annotations

#: Incidents one list answer carries (the newest first), and the default.
MAX_LISTED = 1000
DEFAULT_LISTED = 100
#: Alerts and timeline events one incident's answer carries (the oldest first).
MAX_ALERTS = 1000
MAX_EVENTS = 2000
#: Who took a step (as `by` of approvals) and the comment that goes with it.
MAX_BY = 200
MAX_COMMENT = 2000
#: A recorded change's description and idempotency key (its list is bounded as the incidents' is).
MAX_CHANGE_DESCRIPTION = 2000
MAX_CHANGE_KEY = 200
