"""Serving the API with gunicorn from `automation serve`."""

from __future__ import annotations

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
    _Server({"bind": bind, "workers": workers, "accesslog": "-", "timeout": 60}).run()
