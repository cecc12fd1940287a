"""A layered layout of a workflow's DAG (pure): each step in the column of its longest path from a root,
ordered in its column by where its dependencies sit, and the edges between the boxes.

Left to right, as the steps run. One sweep of the barycentre heuristic keeps most edges uncrossed;
a workflow is small enough (tens of steps) that nothing cleverer is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NODE_WIDTH = 180
NODE_HEIGHT = 48
COLUMN_GAP = 70
ROW_GAP = 26
MARGIN = 20


@dataclass(frozen=True)
class NodeBox:
    name: str
    layer: int
    x: int
    y: int
    width: int = NODE_WIDTH
    height: int = NODE_HEIGHT


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    #: From the middle of the source's right side to the middle of the target's left side.
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Layout:
    nodes: tuple[NodeBox, ...]
    edges: tuple[Edge, ...]
    width: int
    height: int

    def node(self, name: str) -> NodeBox:
        return next(n for n in self.nodes if n.name == name)


class LayoutError(ValueError):
    """The steps do not form a DAG (an unknown dependency or a cycle): stored versions always do."""


def layers_of(steps: Sequence[str], depends_on: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each step's layer: 0 for a root, else one more than its deepest dependency."""
    known = set(steps)
    layer: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(name: str) -> int:
        if name in layer:
            return layer[name]
        if name in visiting:
            raise LayoutError(f"steps depend on each other in a cycle through '{name}'")
        visiting.add(name)
        deps = list(depends_on.get(name, ()))
        for dep in deps:
            if dep not in known:
                raise LayoutError(f"step '{name}' depends on unknown step '{dep}'")
        layer[name] = 1 + max((depth(dep) for dep in deps), default=-1)
        visiting.discard(name)
        return layer[name]

    for name in steps:
        depth(name)
    return layer


def layout_dag(steps: Sequence[str], depends_on: Mapping[str, Sequence[str]]) -> Layout:
    """Boxes and edges for `steps` (in declaration order) and their dependencies."""
    if len(set(steps)) != len(steps):
        raise LayoutError("step names repeat")
    layer = layers_of(steps, depends_on)
    position = {name: i for i, name in enumerate(steps)}
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    row: dict[str, float] = {}
    for name in steps:
        columns[layer[name]].append(name)
    for column in columns:
        # Barycentre of the dependencies' rows (columns to the left are placed already); roots keep
        # their declaration order.
        def key(name: str) -> tuple[float, int]:
            deps = depends_on.get(name, ())
            centre = sum(row[d] for d in deps) / len(deps) if deps else float(position[name])
            return (centre, position[name])

        column.sort(key=key)
        for index, name in enumerate(column):
            row[name] = float(index)

    tallest = max((len(c) for c in columns), default=0)
    height = 2 * MARGIN + tallest * NODE_HEIGHT + max(tallest - 1, 0) * ROW_GAP
    width = 2 * MARGIN + len(columns) * NODE_WIDTH + max(len(columns) - 1, 0) * COLUMN_GAP
    boxes: dict[str, NodeBox] = {}
    for index, column in enumerate(columns):
        span = len(column) * NODE_HEIGHT + (len(column) - 1) * ROW_GAP
        top = (height - span) // 2
        for rank, name in enumerate(column):
            boxes[name] = NodeBox(
                name=name,
                layer=index,
                x=MARGIN + index * (NODE_WIDTH + COLUMN_GAP),
                y=top + rank * (NODE_HEIGHT + ROW_GAP),
            )
    edges = []
    for name in steps:
        target = boxes[name]
        for dep in depends_on.get(name, ()):
            source = boxes[dep]
            edges.append(
                Edge(
                    source=dep,
                    target=name,
                    x1=source.x + source.width,
                    y1=source.y + source.height // 2,
                    x2=target.x,
                    y2=target.y + target.height // 2,
                )
            )
    return Layout(nodes=tuple(boxes[n] for n in steps), edges=tuple(edges), width=width, height=height)
