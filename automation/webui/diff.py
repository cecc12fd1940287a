"""The difference between two versions of a workflow definition (pure), as the admin shows it: a unified
diff of the two documents as shown (secrets masked), one JSON key per line."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from automation.secrets import mask_definition


@dataclass(frozen=True)
class DiffLine:
    #: "added", "removed", "context" or "hunk" (the @@ line that says where a change is).
    kind: str
    text: str


def shown_lines(definition: Mapping[str, Any]) -> list[str]:
    return json.dumps(mask_definition(definition), indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def definition_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], *, old_label: str, new_label: str, context: int = 3
) -> list[DiffLine]:
    """The lines of the unified diff from `old` to `new`; empty when the documents show the same."""
    lines = []
    for text in difflib.unified_diff(
        shown_lines(old), shown_lines(new), fromfile=old_label, tofile=new_label, n=context, lineterm=""
    ):
        if text.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "added", "-": "removed"}.get(text[:1], "context")
        lines.append(DiffLine(kind=kind, text=text))
    return lines
