"""Whether an alert is muted now, by an inhibiting alert or a silence: asked when an alert fires (a muted
alert starts no remediation) and at every flush (a muted alert is left out of its group's notification,
and notified once the silence ends or the inhibiting alert resolves).

`Muting.now()` reads the firing alerts and the active silences once; a flush asks it for every member.
"""

from __future__ import annotations

from dataclasses import dataclass

from automation.alerting.choices import AlertState, Decision
from automation.alerting.inhibition import FiringAlert, InhibitRule, inhibited_by
from automation.alerting.services.config import current_document
from automation.alerting.services.silences import active_silences
from automation.alerting.silencing import ActiveSilence, silenced_by
from automation.models import Alert


@dataclass(frozen=True)
class Muting:
    at: float
    rules: tuple[InhibitRule, ...]
    firing: tuple[FiringAlert, ...]
    silences: tuple[ActiveSilence, ...]

    @staticmethod
    def now(at: float) -> Muting:
        document = current_document()
        rules = tuple(
            InhibitRule(r.source_matchers, r.target_matchers, r.equal) for r in document.inhibit_rules
        )
        firing: tuple[FiringAlert, ...] = ()
        if rules:
            rows = Alert.objects.filter(state=AlertState.FIRING, flapping=False).values_list(
                "fingerprint", "labels"
            )
            firing = tuple(FiringAlert(fp, labels) for fp, labels in rows)
        return Muting(at, rules, firing, tuple(active_silences(at)))

    def of(self, alert: Alert) -> tuple[str, str] | None:
        """(decision, detail) when `alert` is muted (inhibited, silenced); None otherwise."""
        labels = dict(alert.labels)
        if self.rules:
            source = inhibited_by(alert.fingerprint, labels, self.firing, self.rules)
            if source is not None:
                return Decision.INHIBITED, f"inhibited by alert {source}"
        silence = silenced_by(labels, self.silences, self.at)
        if silence is not None:
            return Decision.SILENCED, f"silenced by {silence}"
        return None
