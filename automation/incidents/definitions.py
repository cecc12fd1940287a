"""What operators declare for incidents: the services, what each depends on, and who owns it
(`services:` in YAML, or the API). Validation names the field at fault; the graph is checked whole."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automation.definitions.schema import definition_error
from automation.errors import DefinitionError, InvalidFieldsError
from automation.incidents.graph import ServiceGraph

__all__ = ["ServiceDefinition", "ServicesDocument"]

SERVICE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"


class ServiceDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=SERVICE_PATTERN)
    depends_on: tuple[str, ...] = Field(default=(), max_length=200)
    owners: tuple[str, ...] = Field(default=(), max_length=50)
    description: str = Field(default="", max_length=2000)


class ServicesDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    services: tuple[ServiceDefinition, ...] = Field(default=(), max_length=5000)

    @staticmethod
    def parse(document: Any) -> ServicesDocument:
        """A `services:` document (or its list); DefinitionError naming each field at fault."""
        if isinstance(document, list):
            document = {"services": document}
        if not isinstance(document, dict):
            raise DefinitionError([("services", "expected a mapping with a `services` list")])
        try:
            parsed = ServicesDocument.model_validate(document)
        except ValidationError as exc:
            raise definition_error(exc) from None
        errors: list[tuple[str, str]] = []
        seen: dict[str, int] = {}
        for index, service in enumerate(parsed.services):
            if service.name in seen:
                errors.append((f"services[{index}].name", f"{service.name!r} is declared twice"))
            seen.setdefault(service.name, index)
        if errors:
            raise DefinitionError(errors)
        try:
            parsed.graph()
        except InvalidFieldsError as exc:
            # the graph names services; the document names positions
            raise DefinitionError(
                [(f"services[{seen[path.split('.')[1]]}].depends_on", reason) for path, reason in exc.errors]
            ) from None
        return parsed

    def graph(self) -> ServiceGraph:
        return ServiceGraph({s.name: s.depends_on for s in self.services})
