"""Reading definitions from YAML or JSON text and files (safe loaders only)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from automation.definitions.schema import WorkflowDefinition
from automation.errors import DefinitionError


def parse_definitions(text: str, *, source: str = "<text>") -> list[WorkflowDefinition]:
    """Parse one definition, a list of them, or a YAML stream of documents."""
    try:
        if source.endswith(".json") or text.lstrip().startswith(("{", "[")):
            documents = [json.loads(text)]
        else:
            documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except (ValueError, yaml.YAMLError) as exc:
        raise DefinitionError([("definition", f"{source} is not valid YAML/JSON: {exc}")]) from None
    flat: list[object] = []
    for document in documents:
        flat.extend(document if isinstance(document, list) else [document])
    if not flat:
        raise DefinitionError([("definition", f"{source} holds no workflow definition")])
    return [WorkflowDefinition.from_document(doc, source=source) for doc in flat]


def load_definitions(path: str | Path) -> list[WorkflowDefinition]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError([("file", f"cannot read {path}: {exc.strerror}")]) from None
    return parse_definitions(text, source=str(path))
