"""Retention of the alerting domain's history: the notification log, alerts long settled, silences long
expired. Samples have their own (`samples.purge`, the alerting document's `retention`). Groups are kept:
their sequence numbers name notifications (idempotency keys), so a group is never made anew."""

from __future__ import annotations

from dataclasses import dataclass

from automation.alerting.choices import AlertState
from automation.alerting.services.alerts import at
from automation.models import Alert, AlertLog, Silence

#: How long the notification log, settled alerts and expired silences are kept.
HISTORY_SECONDS = 30 * 86_400.0


@dataclass(frozen=True)
class Purged:
    log_entries: int
    alerts: int
    silences: int


def purge_history(now: float, *, keep: float = HISTORY_SECONDS) -> Purged:
    horizon = at(now - keep)
    entries, _ = AlertLog.objects.filter(at__lt=horizon).delete()
    settled = Alert.objects.filter(
        state__in=(AlertState.RESOLVED, AlertState.INACTIVE), updated_at__lt=horizon, groups__isnull=True
    )
    alerts = settled.count()
    settled.delete()
    silences, _ = Silence.objects.filter(ends_at__lt=horizon).delete()
    return Purged(entries, alerts, silences)
