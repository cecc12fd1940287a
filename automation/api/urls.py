"""URL routes of the HTTP API, each with what it needs: `guard(view, METHOD=permission)` or `public(view)`.

A route added without either fails tests/access/test_endpoint_matrix.py (and its view, reached through
`api_view`, answers only system:admin).
"""

from __future__ import annotations

from django.urls import include, path

from automation.access import api as access
from automation.access.choices import Permission as P
from automation.access.gate import guard, public
from automation.alerting import api as alerting
from automation.api import fleet, views
from automation.incidents import api as incidents
from automation.incidents import oncall_api, remediation_api
from automation.scaling import api as scaling
from automation.timetables import api as timetables

urlpatterns = [
    path("healthz", public(views.healthz)),
    path("metrics", public(views.metrics)),
    path("api/v1/openapi.json", public(views.openapi)),
    path("api/v1/engine", guard(views.engine, GET=P.ENGINE_READ)),
    path("api/v1/workflows", guard(views.workflows, GET=P.WORKFLOWS_READ, POST=P.WORKFLOWS_CREATE)),
    path("api/v1/workflows/<str:name>", guard(views.workflow_detail, GET=P.WORKFLOWS_READ)),
    path("api/v1/workflows/<str:name>/runs", guard(views.workflow_runs, POST=P.WORKFLOWS_EXECUTE)),
    path("api/v1/runs/<str:run_id>", guard(views.run_detail, GET=(P.RUNS_READ, P.RUNS_READ_OWN))),
    path("api/v1/runs/<str:run_id>/cancel", guard(views.run_cancel, POST=P.RUNS_CANCEL)),
    path(
        "api/v1/runs/<str:run_id>/steps/<str:step>/<str:decision>",
        guard(views.step_decision, POST=P.RUNS_APPROVE),
    ),
    path("api/v1/workers", guard(fleet.workers, GET=P.ENGINE_READ)),
    path("api/v1/dead-letters", guard(fleet.dead_letters, GET=P.ENGINE_READ)),
    path("api/v1/dead-letters/<str:letter_id>", guard(fleet.dead_letter_detail, GET=P.ENGINE_READ)),
    path("api/v1/metrics", guard(alerting.metrics_push, POST=P.METRICS_WRITE)),
    path("api/v1/alerts", guard(alerting.alerts, GET=P.ALERTS_READ)),
    path("api/v1/alerts/alertmanager", guard(alerting.alertmanager_webhook, POST=P.EVENTS_WRITE)),
    path("api/v1/alerts/<str:fingerprint>/log", guard(alerting.alert_log, GET=P.ALERTS_READ)),
    path("api/v1/events", guard(alerting.events, POST=P.EVENTS_WRITE)),
    path("api/v1/alert-rules", guard(alerting.rules, GET=P.ALERTS_READ, POST=P.RULES_WRITE)),
    path(
        "api/v1/alert-rules/<str:name>", guard(alerting.rule_detail, GET=P.ALERTS_READ, DELETE=P.RULES_WRITE)
    ),
    path("api/v1/silences", guard(alerting.silences, GET=P.ALERTS_READ, POST=P.SILENCES_WRITE)),
    path("api/v1/silences/<str:silence_id>", guard(alerting.silence_detail, DELETE=P.SILENCES_WRITE)),
    path("api/v1/alerting", guard(alerting.alerting_document, GET=P.ALERTS_READ, PUT=P.RULES_WRITE)),
    path("api/v1/scaling/targets", guard(scaling.targets, GET=P.SCALING_READ, POST=P.SCALING_WRITE)),
    path(
        "api/v1/scaling/targets/<str:name>",
        guard(scaling.target_detail, GET=P.SCALING_READ, PUT=P.SCALING_WRITE, DELETE=P.SCALING_WRITE),
    ),
    path("api/v1/scaling/targets/<str:name>/decisions", guard(scaling.target_decisions, GET=P.SCALING_READ)),
    path("api/v1/capacity", guard(scaling.capacity, GET=P.SCALING_READ)),
    path("api/v1/services", guard(incidents.services, GET=P.INCIDENTS_READ, PUT=P.INCIDENTS_CONFIGURE)),
    path("api/v1/changes", guard(incidents.changes, GET=P.INCIDENTS_READ, POST=P.EVENTS_WRITE)),
    path("api/v1/incidents", guard(incidents.incidents, GET=P.INCIDENTS_READ)),
    path("api/v1/incidents/<str:incident_id>", guard(incidents.incident_detail, GET=P.INCIDENTS_READ)),
    path(
        "api/v1/incidents/<str:incident_id>/acknowledge", guard(incidents.acknowledge, POST=P.INCIDENTS_WRITE)
    ),
    path("api/v1/incidents/<str:incident_id>/mitigate", guard(incidents.mitigate, POST=P.INCIDENTS_WRITE)),
    path("api/v1/incidents/<str:incident_id>/resolve", guard(incidents.resolve, POST=P.INCIDENTS_WRITE)),
    # Carries its own signature (automation/incidents/ack_links.py): no bearer token.
    path("api/v1/incidents/<str:incident_id>/ack", public(oncall_api.acknowledge_link)),
    path(
        "api/v1/escalation",
        guard(oncall_api.escalation_document, GET=P.INCIDENTS_READ, PUT=P.INCIDENTS_CONFIGURE),
    ),
    path("api/v1/oncall", guard(oncall_api.oncall, GET=P.INCIDENTS_READ)),
    path(
        "api/v1/remediation",
        guard(remediation_api.remediation_document, GET=P.INCIDENTS_READ, PUT=P.INCIDENTS_CONFIGURE),
    ),
    path("api/v1/remediations", guard(remediation_api.remediations, GET=P.INCIDENTS_READ)),
    path(
        "api/v1/remediations/<str:remediation_id>/approve",
        guard(remediation_api.approve, POST=P.RUNS_APPROVE),
    ),
    path("api/v1/schedules", guard(timetables.schedules, GET=P.SCHEDULES_READ, POST=P.SCHEDULES_WRITE)),
    path(
        "api/v1/schedules/<str:name>",
        guard(
            timetables.schedule_detail, GET=P.SCHEDULES_READ, PUT=P.SCHEDULES_WRITE, DELETE=P.SCHEDULES_WRITE
        ),
    ),
    path("api/v1/tokens", guard(access.tokens, GET=P.TOKENS_WRITE, POST=P.TOKENS_WRITE)),
    path("api/v1/tokens/<str:name>", guard(access.token_detail, DELETE=P.TOKENS_WRITE)),
    path("api/v1/audit", guard(access.audit, GET=P.AUDIT_READ)),
    # The web UI (admin, run pages, the admin's static files): HTML behind Django's login, not the API.
    path("", include("automation.webui.urls")),
]

handler400 = "automation.api.errors.bad_request"
handler404 = "automation.api.errors.not_found"
handler500 = "automation.api.errors.server_error"
