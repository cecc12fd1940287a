"""The API's routes with what each method needs, read from the URL configuration itself (for the
OpenAPI document and the endpoint × role test): nothing is listed twice."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

from automation.access.gate import PERMISSIONS_ATTRIBUTE, PUBLIC


@dataclass(frozen=True)
class Route:
    #: '/api/v1/runs/{run_id}'
    path: str
    #: 'public', {} (nothing declared), or {METHOD: permission or a tuple of any-of permissions}
    declared: str | dict[str, str | tuple[str, ...]]

    def needs(self, method: str) -> tuple[str, ...]:
        """The permissions of which `method` needs one."""
        needed = self.methods[method]
        return (needed,) if isinstance(needed, str) else needed

    @property
    def public(self) -> bool:
        return self.declared == PUBLIC

    @property
    def methods(self) -> dict[str, str | tuple[str, ...]]:
        return self.declared if isinstance(self.declared, dict) else {}


def _template(route: str) -> str:
    text = route
    while "<" in text:
        start = text.index("<")
        end = text.index(">", start)
        name = text[start + 1 : end].split(":")[-1]
        text = f"{text[:start]}{{{name}}}{text[end + 1 :]}"
    return "/" + text


#: The web UI's URL configuration: HTML pages behind Django's login, each asking
#: `automation.webui.permissions.allowed` (tests/webui), not bearer-token routes.
WEB_UI_URLCONF = "automation.webui.urls"


def api_routes() -> list[Route]:
    """Every route of the HTTP API (the web UI's include left out)."""
    found: list[Route] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                module = getattr(pattern.urlconf_name, "__name__", pattern.urlconf_name)
                if module != WEB_UI_URLCONF:
                    walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            declared = getattr(pattern.callback, PERMISSIONS_ATTRIBUTE, {})
            found.append(Route(_template(prefix + str(pattern.pattern)), declared))

    walk(get_resolver().url_patterns, "")
    return found
