"""The engine's Django admin: read-only views of every domain, behind `permissions.allowed`.

Nothing is written through a model form: the domains' services are the only writers, so the few changes
an admin offers (expire a silence, acknowledge an incident, enable a Beat job) are actions that call
them, each behind the permission its API endpoint needs. Stored documents are shown as the API shows
them, secrets masked.
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django_celery_beat import admin as beat_admin
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from automation.alerting.serializers import rule_document_json
from automation.api.serializers import masked_inputs
from automation.errors import AutomationError
from automation.models import (
    AlertRule,
    ApiToken,
    AuditEntry,
    Incident,
    IncidentEvent,
    ScalingTarget,
    Silence,
    StepRun,
    Workflow,
    WorkflowRun,
    WorkflowVersion,
)
from automation.secrets import mask
from automation.webui.diff import definition_diff, shown_lines
from automation.webui.permissions import allowed


class AutomationAdminSite(admin.AdminSite):
    site_header = "Automation engine"
    site_title = "Automation engine"
    index_title = "Operations"
    site_url = "/ui/"

    def has_permission(self, request: HttpRequest) -> bool:
        # Each model admin asks for its own permission; the site only needs a staff member.
        user = request.user
        return bool(user.is_active and user.is_staff)


site = AutomationAdminSite(name="admin")


def _pretty(value: Any) -> str:
    return format_html("<pre class='shown-json'>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


class GuardedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only unless `write_permission` is held; never add or delete (the services do that)."""

    read_permission = "system:admin"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return allowed(request.user, self.read_permission)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return allowed(request.user, self.read_permission)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class GuardedInline(admin.TabularInline):  # type: ignore[type-arg]
    read_permission = "system:admin"
    extra = 0
    can_delete = False
    show_change_link = False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return allowed(request.user, self.read_permission)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- definitions ---


class VersionInline(GuardedInline):
    model = WorkflowVersion
    read_permission = "workflows:read"
    fields = ("version", "digest", "created_at", "diff")
    readonly_fields = fields
    ordering = ("-version",)

    @admin.display(description="change")
    def diff(self, version: WorkflowVersion) -> str:
        url = reverse("admin:automation_workflow_diff", args=[version.workflow_id])
        if version.version == 1:
            return format_html('<a href="{}?to=1">definition</a>', url)
        return format_html(
            '<a href="{}?from={}&amp;to={}">diff with v{}</a>', url, version.version - 1, version.version,
            version.version - 1,
        )


@admin.register(Workflow, site=site)
class WorkflowAdmin(GuardedAdmin):
    read_permission = "workflows:read"
    list_display = ("name", "latest_version", "updated_at")
    search_fields = ("name",)
    fields = ("name", "latest_version", "created_at", "updated_at", "runs")
    readonly_fields = fields
    inlines = (VersionInline,)

    @admin.display(description="runs")
    def runs(self, workflow: Workflow) -> str:
        url = reverse("admin:automation_workflowrun_changelist")
        link = '<a href="{}?workflow__id__exact={}">runs of {}</a>'
        return format_html(link, url, workflow.pk, workflow.name)

    def get_urls(self) -> list[URLPattern]:
        diff = path(
            "<path:object_id>/diff/",
            self.admin_site.admin_view(self.diff_view),
            name="automation_workflow_diff",
        )
        return [diff, *super().get_urls()]

    def diff_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Two versions side by side as a unified diff (`?from=N&to=M`; only `to`: that version whole)."""
        if not self.has_view_permission(request):
            raise PermissionDenied()
        workflow = get_object_or_404(Workflow, pk=object_id)
        versions = {v.version: v for v in workflow.versions.all()}
        newest = max(versions, default=0)
        to = _version_number(request.GET.get("to"), newest)
        since = _version_number(request.GET.get("from"), to - 1 if "to" not in request.GET else 0)
        if to not in versions or (since and since not in versions):
            raise Http404("no such version")
        lines = (
            definition_diff(
                versions[since].definition, versions[to].definition, old_label=f"v{since}", new_label=f"v{to}"
            )
            if since
            else None
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"{workflow.name}: v{since} → v{to}" if since else f"{workflow.name}: v{to}",
            "opts": self.model._meta,
            "original": workflow,
            "workflow": workflow,
            "numbers": sorted(versions, reverse=True),
            "since": since,
            "to": to,
            "lines": lines,
            "whole": None if since else "\n".join(shown_lines(versions[to].definition)),
        }
        return TemplateResponse(request, "webui/version_diff.html", context)


def _version_number(text: str | None, default: int) -> int:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise Http404("a version is a number") from None


# --- runs ---


class StepInline(GuardedInline):
    model = StepRun
    read_permission = "runs:read"
    fields = (
        "name", "action_type", "status", "attempts", "started_at", "finished_at", "shown_output", "error",
    )
    readonly_fields = fields
    ordering = ("position",)

    @admin.display(description="output")
    def shown_output(self, step: StepRun) -> str:
        return _pretty(mask(step.output)) if step.output is not None else "—"


@admin.register(WorkflowRun, site=site)
class WorkflowRunAdmin(GuardedAdmin):
    read_permission = "runs:read"
    list_display = (
        "short_id", "workflow", "version_number", "status", "queue", "created_at", "finished_at", "graph",
    )
    list_filter = (("workflow", admin.RelatedOnlyFieldListFilter), "status", "queue", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("workflow__name", "idempotency_key")
    list_select_related = ("workflow", "version")
    fields = (
        "run_page", "workflow", "version_number", "status", "queue", "idempotency_key", "shown_inputs",
        "error", "generation", "created_at", "dispatched_at", "started_at", "finished_at",
    )
    readonly_fields = fields
    inlines = (StepInline,)

    @admin.display(description="run", ordering="id")
    def short_id(self, run: WorkflowRun) -> str:
        return str(run.id)[:8]

    @admin.display(description="version")
    def version_number(self, run: WorkflowRun) -> int:
        return int(run.version.version)

    @admin.display(description="inputs")
    def shown_inputs(self, run: WorkflowRun) -> str:
        return _pretty(masked_inputs(run))

    @admin.display(description="graph")
    def graph(self, run: WorkflowRun) -> str:
        return format_html('<a href="{}">graph</a>', reverse("webui-run", args=[run.id]))

    @admin.display(description="graph")
    def run_page(self, run: WorkflowRun) -> str:
        url = reverse("webui-run", args=[run.id])
        return format_html('<a href="{}">the run\'s steps as a graph</a>', url)


# --- alerting, scaling, incidents ---


@admin.register(AlertRule, site=site)
class AlertRuleAdmin(GuardedAdmin):
    read_permission = "rules:read"
    list_display = ("name", "source", "severity", "enabled", "updated_at")
    list_filter = ("source", "severity", "enabled")
    search_fields = ("name",)
    fields = ("name", "source", "severity", "enabled", "shown_document", "created_at", "updated_at")
    readonly_fields = fields

    @admin.display(description="document")
    def shown_document(self, rule: AlertRule) -> str:
        return _pretty(rule_document_json(rule.document))


@admin.register(Silence, site=site)
class SilenceAdmin(GuardedAdmin):
    read_permission = "silences:read"
    list_display = ("id", "starts_at", "ends_at", "created_by", "comment")
    list_filter = ("ends_at", "created_by")
    search_fields = ("created_by", "comment")
    fields = ("id", "shown_matchers", "starts_at", "ends_at", "created_by", "comment", "created_at")
    readonly_fields = fields
    actions = ("expire",)

    @admin.display(description="matchers")
    def shown_matchers(self, silence: Silence) -> str:
        return _pretty(silence.matchers)

    def has_expire_permission(self, request: HttpRequest) -> bool:
        return allowed(request.user, "silences:write")

    @admin.action(description="Expire the selected silences now", permissions=["expire"])
    def expire(self, request: HttpRequest, queryset: QuerySet[Silence]) -> None:
        from automation.alerting.services.silences import expire_silence

        _each(request, queryset, lambda silence: expire_silence(str(silence.pk), time.time()), "expired")


class EventInline(GuardedInline):
    model = IncidentEvent
    read_permission = "incidents:read"
    fields = ("at", "kind", "actor", "detail", "alert_fingerprint", "run_id")
    readonly_fields = fields
    ordering = ("at", "id")


@admin.register(Incident, site=site)
class IncidentAdmin(GuardedAdmin):
    read_permission = "incidents:read"
    list_display = ("id", "title", "status", "severity", "opened_at", "acknowledged_by", "resolved_at")
    list_filter = ("status", "severity", "opened_at")
    search_fields = ("title",)
    fields = (
        "title", "status", "severity", "services", "opened_at", "last_fired_at", "acknowledged_at",
        "acknowledged_by", "mitigated_at", "mitigated_by", "resolved_at", "resolved_by",
    )
    readonly_fields = fields
    inlines = (EventInline,)
    actions = ("acknowledge",)

    def has_acknowledge_permission(self, request: HttpRequest) -> bool:
        return allowed(request.user, "incidents:acknowledge")

    @admin.action(description="Acknowledge the selected incidents", permissions=["acknowledge"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Incident]) -> None:
        from automation.incidents.services.transitions import acknowledge

        by = request.user.get_username()

        def take(incident: Incident) -> object:
            return acknowledge(incident.pk, by=by, now=time.time())

        _each(request, queryset, take, "acknowledged")


@admin.register(ScalingTarget, site=site)
class ScalingTargetAdmin(GuardedAdmin):
    read_permission = "scaling:read"
    list_display = ("name", "kind", "service", "provider", "policy", "enabled", "updated_at")
    list_filter = ("kind", "provider", "policy", "enabled")
    search_fields = ("name", "service")
    fields = ("name", "kind", "service", "provider", "policy", "enabled", "shown_document", "updated_at")
    readonly_fields = fields

    @admin.display(description="document")
    def shown_document(self, target: ScalingTarget) -> str:
        return _pretty(mask(target.document))


def _each(request: HttpRequest, queryset: QuerySet[Any], change: Any, done: str) -> None:
    """Apply a service call to each selected row, saying what happened to each (one refusal does not stop
    the others)."""
    count = 0
    for row in queryset:
        try:
            change(row)
            count += 1
        except AutomationError as exc:
            messages.error(request, f"{row}: {exc}")
    if count:
        messages.success(request, f"{count} {done}")


# --- schedules: django-celery-beat's own admin, behind the same permissions ---

#: The engine's workflow schedules (automation/timetables): changed only by `automation schedule` and the
#: API, which validate the workflow and its inputs; the admin shows them (inputs masked) and may only
#: enable or disable them.
WORKFLOW_SCHEDULE_PREFIX = "workflow:"


class PeriodicTaskAdmin(beat_admin.PeriodicTaskAdmin):  # type: ignore[misc]
    actions = ("enable_tasks", "disable_tasks")
    list_display = ("name", "enabled", "scheduler", "start_time", "last_run_at", "total_run_count")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return allowed(request.user, "schedules:read")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return allowed(request.user, "schedules:read")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # No form edits: a job's task, arguments and queue are the engine's (beat_schedule.py) or a
        # workflow schedule's (`automation schedule`, the API); `schedules:write` enables or disables.
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        if not allowed(request.user, "schedules:write"):
            return {}
        found: dict[str, Any] = super().get_actions(request)
        return found

    # Beat's tables are django-celery-beat's, written here directly: each change goes to the audit log.

    @admin.action(description="Enable selected tasks")
    def enable_tasks(self, request: HttpRequest, queryset: Any) -> None:
        self._audited(request, queryset, enabled=True)

    @admin.action(description="Disable selected tasks")
    def disable_tasks(self, request: HttpRequest, queryset: Any) -> None:
        self._audited(request, queryset, enabled=False)

    def _audited(self, request: HttpRequest, queryset: Any, *, enabled: bool) -> None:
        from django.db import transaction
        from django_celery_beat.models import PeriodicTasks

        from automation.access.services import audit

        with transaction.atomic():
            rows = queryset.select_for_update().exclude(enabled=enabled)
            changed = list(rows.values_list("name", flat=True))
            fields: dict[str, Any] = {"enabled": True} if enabled else {"enabled": False, "last_run_at": None}
            queryset.filter(name__in=changed).update(**fields)
            action = "beat_job.enabled" if enabled else "beat_job.disabled"
            for name in changed:
                before, after = {"enabled": not enabled}, {"enabled": enabled}
                audit.record(action, "beat_job", name, before=before, after=after)
        PeriodicTasks.update_changed()
        self.message_user(request, f"{len(changed)} task(s) {'enabled' if enabled else 'disabled'}")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        # The description of a workflow schedule holds its inputs, secret ones included: shown masked.
        fieldsets = []
        for title, options in super().get_fieldsets(request, obj):
            fields = tuple(f for f in options["fields"] if f != "description")
            fieldsets.append((title, {**options, "fields": fields}))
        fieldsets.insert(1, ("Workflow schedule", {"fields": ("workflow_schedule",)}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return (*super().get_readonly_fields(request, obj), "workflow_schedule")

    @admin.display(description="schedule (inputs masked)")
    def workflow_schedule(self, task: PeriodicTask) -> str:
        if not task.name.startswith(WORKFLOW_SCHEDULE_PREFIX):
            return "—"
        from automation.timetables.serializers import schedule_json

        try:
            return _pretty(schedule_json(task))
        except (AutomationError, ValueError):
            return "(unreadable schedule document)"


class ScheduleAdmin(GuardedAdmin):
    read_permission = "schedules:read"


site.register(PeriodicTask, PeriodicTaskAdmin)
site.register(IntervalSchedule, ScheduleAdmin)


class CrontabAdmin(ScheduleAdmin):
    list_display = ("__str__", "human_readable")


site.register(CrontabSchedule, CrontabAdmin)
site.register(ClockedSchedule, ScheduleAdmin)
site.register(SolarSchedule, ScheduleAdmin)


# --- the access domain: API tokens (never their digest) and the audit log, read only ---


@admin.register(ApiToken, site=site)
class ApiTokenAdmin(GuardedAdmin):
    read_permission = "tokens:read"
    list_display = (
        "name", "user", "roles", "created_at", "created_by", "expires_at", "revoked_at", "last_used_at"
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "created_by")
    fields = list_display


@admin.register(AuditEntry, site=site)
class AuditEntryAdmin(GuardedAdmin):
    read_permission = "audit:read"
    list_display = ("at", "actor", "source", "via", "action", "object_type", "object_id")
    list_filter = ("source", "object_type", ("at", admin.DateFieldListFilter))
    search_fields = ("actor", "object_id", "action")
    fields = (*list_display, "before_digest", "after_digest", "summary")
