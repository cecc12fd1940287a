"""Routes of the web UI (the admin, the run page, the admin's static files), included by the API's
URL configuration so the same server serves both."""

from __future__ import annotations

from pathlib import Path

import django.contrib.admin
from django.conf import settings
from django.urls import path, re_path, reverse_lazy
from django.views.generic import RedirectView
from django.views.static import serve

from automation.webui import views
from automation.webui.admin import site

urlpatterns = [
    path("admin/", site.urls),
    path("ui/", RedirectView.as_view(url=reverse_lazy("admin:automation_workflowrun_changelist"))),
    path("ui/runs/<uuid:run_id>", views.run_page, name="webui-run"),
]

if settings.AUTOMATION_SERVE_STATIC:
    # The admin's own stylesheets and scripts, read from the installed Django (no collectstatic step).
    ADMIN_STATIC = Path(django.contrib.admin.__file__).parent / "static"
    urlpatterns.append(re_path(r"^static/(?P<path>admin/.*)$", serve, {"document_root": ADMIN_STATIC}))
