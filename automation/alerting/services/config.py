"""The alerting document (routes, receivers, inhibition rules, sources): stored once, read by every
worker (cached a few seconds). Applying it registers one delivery workflow per receiver."""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction

from automation.access.services import audit
from automation.alerting.definitions import AlertingDocument, ReceiverDefinition
from automation.alerting.notifications import receiver_workflow
from automation.config import current_config
from automation.definitions.registry import register_definition
from automation.errors import DefinitionError
from automation.models import AlertingConfig

_CACHE_SECONDS = 5.0
_cache: tuple[float, AlertingDocument] | None = None


def current_document(*, fresh: bool = False) -> AlertingDocument:
    """The stored document, cached a few seconds (`fresh`: read now, e.g. to check a name the cached copy
    does not hold)."""
    global _cache
    now = time.monotonic()
    if not fresh and _cache is not None and now - _cache[0] < _CACHE_SECONDS:
        return _cache[1]
    stored = AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first()
    document = AlertingDocument.parse(stored) if stored else AlertingDocument()
    _cache = (now, document)
    return document


def apply_document(raw: Any) -> AlertingDocument:
    """Validate (DefinitionError naming the field: nothing stored), register the receivers' delivery
    workflows and store the document, in one transaction."""
    document = AlertingDocument.parse(raw)
    with transaction.atomic():
        for index, receiver in enumerate(document.receivers):
            try:
                register_receiver(receiver)
            except DefinitionError as exc:
                raise DefinitionError(_receiver_errors(index, receiver, exc)) from None
        before = AlertingConfig.objects.filter(pk=1).values_list("document", flat=True).first()
        after = document.model_dump(mode="json", by_alias=True, exclude_none=True)
        AlertingConfig.objects.update_or_create(pk=1, defaults={"document": after})
        audit.record("config.applied", "alerting_document", "alerting", before=before, after=after)
        # Cached once stored for good: a caller's transaction that rolls back leaves the cache as it was.
        transaction.on_commit(lambda: _remember(document))
    return document


def _remember(document: AlertingDocument) -> None:
    global _cache
    _cache = (time.monotonic(), document)


def register_receiver(receiver: ReceiverDefinition) -> None:
    register_definition(receiver_workflow(receiver), current_config())


def _receiver_errors(index: int, receiver: ReceiverDefinition, exc: DefinitionError) -> list[tuple[str, str]]:
    """The delivery workflow's errors named as the document's fields: `actions[0].parameters.url` of
    `receiver.team` is `receivers[2].slack.url`."""
    where = f"receivers[{index}].{receiver.kind}"
    step = "actions[0].parameters"
    return [
        (where + path.removeprefix(step) if path.startswith(step) else where, reason)
        for path, reason in exc.errors
    ]
