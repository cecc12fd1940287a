"""The remediation document (policies), stored whole (all or none) and read fresh when a firing is
matched, so a remediation follows the document just applied. A remediation keeps the policy as it was
when requested (`Remediation.plan`): a change does not alter one already under way."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from automation.access.services import audit
from automation.incidents.remediation_definitions import RemediationDocument
from automation.models import RemediationConfig, Workflow


def apply_remediation(raw: Any) -> RemediationDocument:
    """Validate `raw` (DefinitionError naming each field at fault: nothing stored) and store it in place
    of the stored document."""
    document = RemediationDocument.parse(raw, workflows=set(Workflow.objects.values_list("name", flat=True)))
    with transaction.atomic():
        before = RemediationConfig.objects.filter(pk=1).values_list("document", flat=True).first()
        RemediationConfig.objects.update_or_create(pk=1, defaults={"document": as_json(document)})
        audit.record(
            "config.applied", "remediation_document", "remediation", before=before, after=as_json(document)
        )
    return document


def as_json(document: RemediationDocument) -> dict[str, Any]:
    # nulls kept: `per_service: null` (no limit) must not read back as the default limit
    return document.model_dump(mode="json", by_alias=True)


#: The stored document last read by this process, and its model (frozen): read again, it is not
#: validated again unless it changed.
_parsed: tuple[Any, RemediationDocument] | None = None


def current_remediation() -> RemediationDocument:
    """The stored document, read now (valid when stored; a workflow it names may have gone since, which
    the remediation that meets it says)."""
    global _parsed
    stored = RemediationConfig.objects.filter(pk=1).values_list("document", flat=True).first()
    if not stored:
        return RemediationDocument()
    parsed = _parsed
    if parsed is not None and parsed[0] == stored:
        return parsed[1]
    document = RemediationDocument.model_validate(stored)
    _parsed = (stored, document)
    return document
