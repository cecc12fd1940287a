"""The definition schema (pydantic): workflows, their actions and declared inputs.

Construction checks shapes only; `automation.definitions.validation` checks what needs the action
registry (types, parameters, references, the DAG) when a definition is registered.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from automation.choices import Priority
from automation.errors import DefinitionError

STEP_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_\-]{0,99}$"


def field_path(loc: tuple[int | str, ...]) -> str:
    """('actions', 0, 'name') -> 'actions[0].name'."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def definition_error(exc: ValidationError, prefix: str = "") -> DefinitionError:
    errors = []
    for err in exc.errors():
        path = field_path(tuple(err["loc"]))
        errors.append((f"{prefix}.{path}".strip(".") if prefix else path or "definition", err["msg"]))
    return DefinitionError(errors)


_constructing: ContextVar[int] = ContextVar("_constructing", default=0)


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def __init__(self, **data: Any) -> None:
        # Nested models are built through __init__ too: only the outermost call turns pydantic's
        # errors into a DefinitionError, so paths stay whole (actions[0].name, not name).
        depth = _constructing.get()
        token = _constructing.set(depth + 1)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            if depth:
                raise
            raise definition_error(exc) from None
        finally:
            _constructing.reset(token)


class InputDefinition(_Schema):
    """A declared run input. Declaring inputs is optional: without them, the referenced names are required."""

    type: Literal["string", "integer", "number", "boolean", "object", "array", "any"] = "any"
    required: bool = True
    default: Any = None
    secret: bool = False
    description: str = ""


class CompensationDefinition(_Schema):
    """How a step's effect is undone: one action run when a later step fails, or when the caller (a
    remediation whose verification failed) asks for it. Its parameters may use the run's inputs and
    `${compensation.outputs.STEP.FIELD}` (the outputs of the steps being undone)."""

    action_type: str = Field(min_length=1, max_length=200)
    parameters: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: int | None = Field(default=None, ge=1)
    retry_attempts: int | None = Field(default=None, ge=0, le=100)
    description: str = ""


class ActionDefinition(_Schema):
    """One step. `action_type` is dotted (`notification.webhook`) or a family whose operation is `name`."""

    name: str = Field(pattern=STEP_NAME_PATTERN)
    action_type: str = Field(min_length=1, max_length=200)
    parameters: dict[str, Any] = Field(default_factory=dict)
    timeout_seconds: int | None = Field(default=None, ge=1)
    retry_attempts: int | None = Field(default=None, ge=0, le=100)
    # None: after the previous action in the list; []: a root of the DAG.
    depends_on: list[str] | None = None
    description: str = ""
    #: How this step's effect is undone (automation/definitions/compensation.py).
    compensate: CompensationDefinition | None = None
    #: Set by the engine on the steps of a derived `<workflow>.compensation`: the step whose effect this
    #: one undoes. It acts only when that step succeeded in the run being undone.
    compensates: str | None = Field(default=None, pattern=STEP_NAME_PATTERN)

    @property
    def resolved_type(self) -> str:
        return self.action_type if "." in self.action_type else f"{self.action_type}.{self.name}"


class WorkflowDefinition(_Schema):
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
    description: str = ""
    actions: list[ActionDefinition] = Field(min_length=1)
    conditions: list[str] = Field(default_factory=list)
    priority: Priority = Priority.NORMAL
    inputs: dict[str, InputDefinition] | None = None

    def to_document(self) -> dict[str, Any]:
        """The JSON-ready document, as stored and as read back by `from_document`."""
        return self.model_dump(mode="json", exclude_none=False)

    @classmethod
    def from_document(cls, document: Any, *, source: str = "") -> WorkflowDefinition:
        if not isinstance(document, dict):
            where = f"{source}: " if source else ""
            raise DefinitionError(
                [("definition", f"{where}expected a mapping, got {type(document).__name__}")]
            )
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise definition_error(exc) from None
