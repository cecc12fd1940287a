"""The web UI's own pages (beside the admin): a run drawn as its DAG, each step coloured by status, with
its attempts, output and error (secrets masked as in the API's answers)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from automation.api.serializers import masked_inputs, step_json
from automation.choices import RunStatus
from automation.models import WorkflowRun
from automation.webui.admin import site
from automation.webui.dag import layout_dag
from automation.webui.permissions import allowed
from automation.webui.svg import STATUS_COLOURS, render_svg

#: While a run is active its page reloads itself this often (seconds): no script needed.
REFRESH_SECONDS = 5


@require_GET
def run_page(request: HttpRequest, run_id: uuid.UUID) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not allowed(request.user, "runs:read"):
        raise PermissionDenied("runs:read is needed to see a run")
    run = get_object_or_404(WorkflowRun.objects.select_related("workflow", "version"), pk=run_id)
    steps = [step_json(step) for step in run.steps.order_by("position")]
    for step in steps:
        step["shown_output"] = "—" if step["output"] is None else _shown(step["output"])
    actions = run.version.definition["actions"]
    layout = layout_dag(
        [a["name"] for a in actions], {a["name"]: list(a.get("depends_on") or []) for a in actions}
    )
    svg = render_svg(
        layout, {s["name"]: s["status"] for s in steps}, {s["name"]: s["attempts"] for s in steps}
    )
    context = {
        **site.each_context(request),
        "title": f"{run.workflow.name} v{run.version.version} · run {str(run.id)[:8]}",
        "run": run,
        "inputs": _shown(masked_inputs(run)),
        "steps": steps,
        # Built from escaped names only (automation/webui/svg.py).
        "svg": mark_safe(svg),  # noqa: S308
        "legend": list(STATUS_COLOURS.items()),
        "refresh": REFRESH_SECONDS if run.status in RunStatus.ACTIVE else None,
        "dependencies": {a["name"]: list(a.get("depends_on") or []) for a in actions},
    }
    return TemplateResponse(request, "webui/run.html", context)


def _shown(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
