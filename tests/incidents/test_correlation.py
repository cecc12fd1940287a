"""The services document and the correlation of alerts into incidents (pure parts)."""

from __future__ import annotations

import pytest

from automation.errors import DefinitionError
from automation.incidents.correlation import OpenIncident, correlate, service_of
from automation.incidents.definitions import ServicesDocument

DOCUMENT = {
    "services": [
        {"name": "frontend", "depends_on": ["api"], "owners": ["web-team"]},
        {"name": "api", "depends_on": ["db"]},
        {"name": "db"},
        {"name": "billing"},
    ]
}


def test_a_services_document_becomes_a_graph() -> None:
    graph = ServicesDocument.parse(DOCUMENT).graph()
    assert graph.upstream("frontend") == {"api": 1, "db": 2}
    assert ServicesDocument.parse(DOCUMENT["services"]).services[0].owners == ("web-team",)


@pytest.mark.parametrize(
    ("services", "field"),
    [
        ([{"name": "a", "depends_on": ["ghost"]}], "services[0].depends_on"),
        ([{"name": "a"}, {"name": "a"}], "services[1].name"),
        ([{"name": "a", "depends_on": ["a"]}], "services[0].depends_on"),
        ([{"name": "bad name"}], "services[0].name"),
        ([{"name": "a", "owner": "x"}], "services[0].owner"),
    ],
)
def test_bad_documents_name_the_field(services: list[dict[str, object]], field: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        ServicesDocument.parse({"services": services})
    assert field in [path for path, _ in caught.value.errors], caught.value.errors


def incident(
    id_: str, *, keys: tuple[str, ...] = (), services: tuple[str, ...] = (), at: float = 1000.0
) -> OpenIncident:
    return OpenIncident(id=id_, group_keys=frozenset(keys), services=frozenset(services), last_fired_at=at)


def test_an_alert_joins_the_incident_of_its_group_first() -> None:
    graph = ServicesDocument.parse(DOCUMENT).graph()
    found = correlate(
        labels={"service": "billing"},
        group_keys=["g1"],
        fired_at=1010.0,
        open_incidents=[incident("A", services=("api",)), incident("B", keys=("g1",), at=500.0)],
        graph=graph,
        window=300.0,
    )
    assert found.incident == "B" and "same group" in found.reason


def test_linked_services_firing_together_share_an_incident() -> None:
    graph = ServicesDocument.parse(DOCUMENT).graph()
    found = correlate(
        labels={"service": "frontend"},
        group_keys=["g2"],
        fired_at=1100.0,
        open_incidents=[incident("A", services=("db",)), incident("C", services=("billing",), at=1090.0)],
        graph=graph,
        window=300.0,
    )
    assert found.incident == "A" and "frontend depends on db (2 hop(s))" in found.reason
    late = correlate(
        labels={"service": "frontend"},
        group_keys=["g2"],
        fired_at=2000.0,
        open_incidents=[incident("A", services=("db",))],
        graph=graph,
        window=300.0,
    )
    assert late.incident is None  # linked, but outside the window


def test_an_unrelated_or_unknown_service_opens_a_new_incident() -> None:
    graph = ServicesDocument.parse(DOCUMENT).graph()
    assert (
        correlate(
            labels={"service": "billing"},
            group_keys=[],
            fired_at=1000.0,
            open_incidents=[incident("A", services=("api",))],
            graph=graph,
            window=300.0,
        ).incident
        is None
    )
    assert service_of({"job": "node"}) == "node" and service_of({}) is None
