"""A run's DAG drawn as inline SVG (pure): one box per step, filled with its status's colour, and
curved edges from each dependency. Every name is escaped; nothing is fetched, so the page works offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from automation.choices import RunStatus
from automation.webui.dag import Layout

#: Fill colour of a step's box by status (text on them is white); the browser test counts them.
STATUS_COLOURS: dict[str, str] = {
    RunStatus.PENDING: "#78909c",
    RunStatus.RUNNING: "#1565c0",
    RunStatus.SUCCEEDED: "#2e7d32",
    RunStatus.FAILED: "#c62828",
    RunStatus.CANCELLED: "#6d4c41",
    RunStatus.SKIPPED: "#ef8f00",
}
UNKNOWN_COLOUR = "#b0bec5"
LABEL_CHARS = 22


def _label(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


def render_svg(layout: Layout, statuses: Mapping[str, str], attempts: Mapping[str, int]) -> str:
    """The SVG element for `layout`, each box coloured by `statuses[name]` and linked to `#step-NAME`."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="dag" width="{layout.width}" '
        f'height="{layout.height}" viewBox="0 0 {layout.width} {layout.height}" role="img" '
        'aria-label="steps of the run and their dependencies">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/>'
        "</marker></defs>",
    ]
    for edge in layout.edges:
        bend = (edge.x2 - edge.x1) // 2
        parts.append(
            f'<path class="edge" data-source="{escape(edge.source)}" data-target="{escape(edge.target)}" '
            f'd="M {edge.x1} {edge.y1} C {edge.x1 + bend} {edge.y1}, {edge.x2 - bend} {edge.y2}, '
            f'{edge.x2} {edge.y2}" fill="none" stroke="#555" stroke-width="1.5" marker-end="url(#arrow)"/>'
        )
    for node in layout.nodes:
        status = statuses.get(node.name, "")
        colour = STATUS_COLOURS.get(status, UNKNOWN_COLOUR)
        name = escape(node.name)
        tries = attempts.get(node.name, 0)
        detail = f"{escape(status or 'unknown')} · {tries} attempt{'' if tries == 1 else 's'}"
        cx = node.x + node.width // 2
        parts.append(
            f'<a href="#step-{name}"><g class="step" data-step="{name}" data-status="{escape(status)}">'
            f"<title>{name}: {detail}</title>"
            f'<rect x="{node.x}" y="{node.y}" width="{node.width}" height="{node.height}" rx="6" '
            f'fill="{colour}"/>'
            f'<text x="{cx}" y="{node.y + 20}" text-anchor="middle" fill="#fff" font-size="13" '
            f'font-family="sans-serif" font-weight="bold">{escape(_label(node.name))}</text>'
            f'<text x="{cx}" y="{node.y + 37}" text-anchor="middle" fill="#fff" font-size="11" '
            f'font-family="sans-serif">{detail}</text></g></a>'
        )
    parts.append("</svg>")
    return "".join(parts)
