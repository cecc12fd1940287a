"""Storing definitions: validate, normalize, and write a new version only when the content changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction

from automation.access.services import audit
from automation.config.schema import AutomationConfig
from automation.definitions.compensation import compensation_definition, reserved_fields
from automation.definitions.schema import WorkflowDefinition
from automation.definitions.validation import Defaults, validate_definition
from automation.errors import DefinitionError
from automation.models import Workflow, WorkflowVersion
from automation.secrets import mask_definition


def register_definition(
    definition: WorkflowDefinition, config: AutomationConfig | None = None, *, derived: bool = False
) -> WorkflowVersion:
    """Validate `definition` (DefinitionError: nothing stored) and store it as the latest version; a
    definition whose steps declare `compensate:` stores its `<name>.compensation` too, in the same
    transaction (automation/definitions/compensation.py). Only that derived registration (`derived`)
    may use the name suffix `.compensation` and the steps' `compensates`."""
    config = config or AutomationConfig()
    if not derived:
        reserved = reserved_fields(definition)
        if reserved:
            raise DefinitionError(reserved)
    document, digest = _stored_form(definition, config)
    undo = compensation_definition(document)
    with transaction.atomic():
        if undo is not None:
            register_definition(undo, config, derived=True)
        workflow, _ = Workflow.objects.get_or_create(name=definition.name)
        workflow = Workflow.objects.select_for_update().get(pk=workflow.pk)
        latest = workflow.versions.order_by("-version").first()
        if latest is not None and latest.digest == digest:
            return latest
        workflow.latest_version += 1
        workflow.save(update_fields=["latest_version", "updated_at"])
        version = WorkflowVersion.objects.create(
            workflow=workflow, version=workflow.latest_version, digest=digest, definition=document
        )
        audit.record(
            "definition.registered",
            "workflow",
            workflow.name,
            before=mask_definition(latest.definition) if latest is not None else None,
            after=mask_definition(document),
            note={"version": version.version},
        )
        return version


def compensation_version(document: Mapping[str, Any]) -> WorkflowVersion | None:
    """The stored version of the compensation derived from `document` (a stored version's): the one
    registered with it, found by its digest (the workflow registered again since may have made another
    compensation the latest), or stored now if none matches (the digest of older registrations). None
    when no step of `document` declares one."""
    undo = compensation_definition(document)
    if undo is None:
        return None
    # Its steps carry their own time limits and retries (normalized in `document`): no config default
    # reaches the derived document, so its digest is the one its registration stored.
    _, digest = _stored_form(undo, AutomationConfig())
    found = (
        WorkflowVersion.objects.select_related("workflow")
        .filter(workflow__name=undo.name, digest=digest)
        .order_by("-version")
        .first()
    )
    return found if found is not None else register_definition(undo, derived=True)


def _stored_form(definition: WorkflowDefinition, config: AutomationConfig) -> tuple[dict[str, Any], str]:
    """The validated, normalized document of `definition` and its digest (what tells versions apart)."""
    document = validate_definition(
        definition,
        Defaults(
            timeout_seconds=config.timeout_seconds,
            retry_attempts=config.retry_attempts,
            visibility_timeout=settings.VISIBILITY_TIMEOUT,
        ),
    )
    return document, hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
