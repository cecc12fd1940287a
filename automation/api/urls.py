"""URL routes of the HTTP API."""

from __future__ import annotations

from django.urls import path

from automation.alerting import api as alerting
from automation.api import fleet, views
from automation.incidents import api as incidents
from automation.incidents import oncall_api, remediation_api
from automation.scaling import api as scaling
from automation.timetables import api as timetables

urlpatterns = [
    path("healthz", views.healthz),
    path("metrics", views.metrics),
    path("api/v1/openapi.json", views.openapi),
    path("api/v1/engine", views.engine),
    path("api/v1/workflows", views.workflows),
    path("api/v1/workflows/<str:name>", views.workflow_detail),
    path("api/v1/workflows/<str:name>/runs", views.workflow_runs),
    path("api/v1/runs/<str:run_id>", views.run_detail),
    path("api/v1/runs/<str:run_id>/cancel", views.run_cancel),
    path("api/v1/runs/<str:run_id>/steps/<str:step>/<str:decision>", views.step_decision),
    path("api/v1/workers", fleet.workers),
    path("api/v1/dead-letters", fleet.dead_letters),
    path("api/v1/dead-letters/<str:letter_id>", fleet.dead_letter_detail),
    path("api/v1/metrics", alerting.metrics_push),
    path("api/v1/alerts", alerting.alerts),
    path("api/v1/alerts/alertmanager", alerting.alertmanager_webhook),
    path("api/v1/alerts/<str:fingerprint>/log", alerting.alert_log),
    path("api/v1/events", alerting.events),
    path("api/v1/alert-rules", alerting.rules),
    path("api/v1/alert-rules/<str:name>", alerting.rule_detail),
    path("api/v1/silences", alerting.silences),
    path("api/v1/silences/<str:silence_id>", alerting.silence_detail),
    path("api/v1/alerting", alerting.alerting_document),
    path("api/v1/scaling/targets", scaling.targets),
    path("api/v1/scaling/targets/<str:name>", scaling.target_detail),
    path("api/v1/scaling/targets/<str:name>/decisions", scaling.target_decisions),
    path("api/v1/capacity", scaling.capacity),
    path("api/v1/services", incidents.services),
    path("api/v1/incidents", incidents.incidents),
    path("api/v1/incidents/<str:incident_id>", incidents.incident_detail),
    path("api/v1/incidents/<str:incident_id>/acknowledge", incidents.acknowledge),
    path("api/v1/incidents/<str:incident_id>/mitigate", incidents.mitigate),
    path("api/v1/incidents/<str:incident_id>/resolve", incidents.resolve),
    path("api/v1/incidents/<str:incident_id>/ack", oncall_api.acknowledge_link),
    path("api/v1/escalation", oncall_api.escalation_document),
    path("api/v1/oncall", oncall_api.oncall),
    path("api/v1/remediation", remediation_api.remediation_document),
    path("api/v1/remediations", remediation_api.remediations),
    path("api/v1/remediations/<str:remediation_id>/approve", remediation_api.approve),
    path("api/v1/schedules", timetables.schedules),
    path("api/v1/schedules/<str:name>", timetables.schedule_detail),
]

handler400 = "automation.api.errors.bad_request"
handler404 = "automation.api.errors.not_found"
handler500 = "automation.api.errors.server_error"
