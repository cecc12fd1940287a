"""Remediations as the API and the CLI answer them (inputs are the workflow's: their declared secrets
are masked by the runs' own views, so a remediation shows none of them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from automation.models import Remediation


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def remediation_json(row: Remediation) -> dict[str, Any]:
    return {
        "id": row.pk,
        "policy": row.policy,
        "workflow": row.workflow,
        "status": row.status,
        "guard": row.guard or None,
        "detail": row.detail,
        "alert_fingerprint": row.fingerprint,
        "fired_at": _iso(row.fired_at),
        "incident_id": row.incident_id,
        "service": row.service,
        "requested_at": _iso(row.requested_at),
        "started_at": _iso(row.started_at),
        "verify_until": _iso(row.verify_until),
        "finished_at": _iso(row.finished_at),
        "approved_by": row.approved_by or None,
        "run_id": str(row.run_id) if row.run_id else None,
        "compensation_run_id": str(row.compensation_run_id) if row.compensation_run_id else None,
    }
