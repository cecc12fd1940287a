"""Serving the API with gunicorn from `automation serve`, and which addresses may serve it without tokens."""

from __future__ import annotations

import ipaddress
from typing import Any

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from django.core.wsgi import get_wsgi_application

        return get_wsgi_application()


def serve(*, bind: str, workers: int) -> None:
    # The access log names the path without its query: an acknowledgement link's token stays out of logs.
    access = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss'
    _Server(
        {"bind": bind, "workers": workers, "accesslog": "-", "access_log_format": access, "timeout": 60}
    ).run()


def is_loopback(bind: str) -> bool:
    """Whether a gunicorn bind address (HOST:PORT, [IPV6]:PORT, unix:PATH) is reachable only from this
    machine. A host name other than `localhost` counts as reachable from elsewhere (it may resolve so)."""
    if bind.startswith("unix:"):
        return True
    host = bind
    if bind.startswith("[") and "]" in bind:
        host = bind[1 : bind.index("]")]
    elif bind.count(":") == 1:
        host = bind.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
