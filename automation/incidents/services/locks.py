"""The incidents' advisory locks (automation/locks.py): the correlation of an alert and the opening of an
incident are decided by one caller at a time for the same group keys or the dependency graph, so two
alerts of one outage arriving together never open two incidents."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from automation import locks

#: Names the graph-wide lock: alerts of services in the graph may join each other's incidents.
GRAPH = "graph"


def lock(names: set[str] | frozenset[str], then: str = "", params: Sequence[Any] = ()) -> Any:
    """`automation.locks.lock` in the incidents' namespace."""
    return locks.lock("incidents", names, then, params)
