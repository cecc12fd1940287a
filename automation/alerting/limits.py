"""Sizes the alerting API accepts and answers with (a leaf: the payload checks, the services, the views and
the OpenAPI document all read them here)."""

from __future__ import annotations

#: Alerts in one webhook call (Alertmanager's `max_alerts` bounds what it sends).
MAX_WEBHOOK_ALERTS = 1000
#: Labels (and annotations) of a received alert, and their sizes.
MAX_LABELS = 64
MAX_LABEL_NAME = 200
MAX_LABEL_VALUE = 4096
MAX_ANNOTATION_VALUE = 16_384
#: An alert's name (its `alertname` label) is stored in a column of this size.
MAX_ALERT_NAME = 200
#: 9999-12-31T23:59:59Z, the last time a database column holds.
LATEST_EPOCH = 253_402_300_799.0
#: A silence's author (a column of 200) and comment.
MAX_CREATED_BY = 200
MAX_COMMENT = 2000
#: Alerts and silences one list answer carries, and log entries one alert's log answer carries.
MAX_LISTED = 1000
MAX_LOG_ENTRIES = 1000
