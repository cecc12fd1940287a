"""What the escalation tests share: receivers of a real alerting document pointing at real peers (HTTP
webhooks, an SMTP server), an escalation document of unique names, and both documents put back after."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.conftest import unique


@dataclass
class Setup:
    """Unique names of one test: a service its alerts are on, users, a schedule, receivers."""

    tag: str = field(default_factory=lambda: unique("esc").replace("-", "_"))

    def name(self, role: str) -> str:
        return f"{role}_{self.tag}"

    @property
    def service(self) -> str:
        return self.name("svc").replace("_", "-")


def webhook(name: str, url: str) -> dict[str, Any]:
    return {"name": name, "webhook": {"url": url, "timeout": 10}}


def mail(name: str, port: int, to: str) -> dict[str, Any]:
    return {
        "name": name,
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "from": "Pager <pager@example.org>",
            "to": [to],
            "timeout": 10,
        },
    }


def apply_receivers(*receivers: dict[str, Any]) -> None:
    from automation.alerting.services.config import apply_document

    apply_document({"route": {"receiver": "log"}, "receivers": list(receivers)})


def stored_documents() -> tuple[Any, Any]:
    from automation.incidents.services.escalation_config import as_json, current_escalation
    from automation.models import AlertingConfig

    alerting = AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first() or {}
    return alerting, as_json(current_escalation())


def restore_documents(saved: tuple[Any, Any]) -> None:
    from automation.alerting.services.config import apply_document
    from automation.incidents.services.escalation_config import apply_escalation

    alerting, escalation = saved
    apply_escalation({})  # first: it may name receivers the alerting document is about to lose
    apply_document(alerting)
    apply_escalation(escalation)


def level(*targets: dict[str, str], timeout: Any) -> dict[str, Any]:
    return {"targets": list(targets), "timeout": timeout}


def schedule(name: str, users: list[str], *, timezone: str = "UTC", **extra: Any) -> dict[str, Any]:
    """A daily rotation of `users` since 2020 (so the first is on call on any even day count)."""
    layer = {"name": "daily", "users": users, "start": "2020-01-01T00:00", "rotation": "1d"}
    return {"name": name, "timezone": timezone, "layers": [layer], **extra}
