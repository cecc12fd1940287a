"""The guards of guarded remediation as pure decisions, and the policies document's errors."""

from __future__ import annotations

from typing import Any

import pytest

from automation.errors import DefinitionError
from automation.incidents.choices import Guard
from automation.incidents.guards import Active, History, Outcome, breaker_open, judge, trips_breaker
from automation.incidents.remediation_definitions import RemediationDocument, RemediationPolicy


def policy(**extra: Any) -> RemediationPolicy:
    return RemediationPolicy.model_validate(
        {"name": "restart", "match": {"alertname": "down"}, "workflow": "restart-service", **extra}
    )


def test_rate_limit_per_service_and_per_workflow() -> None:
    chosen = policy(
        rate_limit={"per_service": {"runs": 2, "window": "10m"}, "per_workflow": {"runs": 3, "window": 60}},
        blast_radius={"max_services": None},
    )
    now = 10_000.0
    assert judge(chosen, service="api", history=History(service_starts=[now - 10]), now=now).allowed
    refused = judge(chosen, service="api", history=History(service_starts=[now - 10, now - 500]), now=now)
    assert (refused.allowed, refused.guard) == (False, Guard.RATE_LIMIT_SERVICE)
    assert "2 run(s) started in the last 600 s, at most 2 (next in 100 s)" in refused.reason
    # a start older than the window no longer counts
    assert judge(
        chosen, service="api", history=History(service_starts=[now - 10, now - 700]), now=now
    ).allowed
    busy = History(workflow_starts=[now - 1, now - 2, now - 3])
    assert judge(chosen, service="db", history=busy, now=now).guard == Guard.RATE_LIMIT_WORKFLOW


def test_circuit_breaker_opens_after_k_failures_and_half_opens_after_its_reset() -> None:
    chosen = policy(circuit_breaker={"failures": 3, "reset_after": 100})
    failed = [Outcome(1000.0, False), Outcome(900.0, False), Outcome(800.0, False)]
    assert breaker_open(chosen, failed[:2], 1010.0) is None
    assert breaker_open(chosen, failed, 1010.0) is not None
    verdict = judge(chosen, service="api", history=History(outcomes=failed), now=1010.0)
    assert (verdict.guard, verdict.escalates) == (Guard.CIRCUIT_BREAKER, False)  # its opening escalated
    assert breaker_open(chosen, failed, 1100.0) is None  # half-open: one trial may run
    assert breaker_open(chosen, [Outcome(1000.0, True), *failed[:2]], 1010.0) is None
    assert trips_breaker(chosen, failed, 1010.0)
    assert not trips_breaker(chosen, [Outcome(1005.0, False), *failed], 1010.0)  # was open already
    assert not trips_breaker(chosen, failed[:2], 1010.0)


def test_half_open_breaker_lets_exactly_one_trial_run() -> None:
    chosen = policy(circuit_breaker={"failures": 2, "reset_after": 100})
    failed = [Outcome(1000.0, False), Outcome(900.0, False)]
    assert judge(chosen, service="api", history=History(outcomes=failed), now=1100.0).allowed
    trial_running = History(outcomes=failed, policy_active=1)
    second = judge(chosen, service="api", history=trial_running, now=1100.0)
    assert (second.allowed, second.guard) == (False, Guard.CIRCUIT_BREAKER)
    assert "half-open: one trial is running" in second.reason
    # a closed breaker does not count the policy's active remediations
    closed = History(outcomes=[Outcome(1000.0, True), *failed], policy_active=3)
    assert judge(chosen, service="api", history=closed, now=1100.0).allowed


def test_alerts_without_a_service_label_share_one_bucket_of_the_limits() -> None:
    chosen = policy(
        rate_limit={"per_service": {"runs": 1, "window": 60}, "per_workflow": None},
        blast_radius={"max_services": 1},
    )
    now = 1000.0
    rated = judge(chosen, service="", history=History(service_starts=[now - 5]), now=now)
    assert (rated.allowed, rated.guard) == (False, Guard.RATE_LIMIT_SERVICE)
    assert "service (no service label)" in rated.reason
    busy = History(active=[Active("api", 1)])
    blast = judge(chosen, service="", history=busy, now=now)
    assert (blast.allowed, blast.guard) == (False, Guard.BLAST_RADIUS)
    unlabelled = History(active=[Active("", 1)])
    assert judge(chosen, service="api", history=unlabelled, now=now).guard == Guard.BLAST_RADIUS
    assert judge(chosen, service="", history=unlabelled, now=now).allowed  # the same bucket


def test_loop_detection_counts_fixes_that_did_not_hold() -> None:
    chosen = policy(loop={"max_repeats": 2, "window": "30m"})
    now = 5000.0
    assert judge(chosen, service="api", history=History(worked_for_alert=[now - 60]), now=now).allowed
    looped = judge(chosen, service="api", history=History(worked_for_alert=[now - 60, now - 600]), now=now)
    assert (looped.guard, looped.escalates) == (Guard.LOOP, True)
    old = History(worked_for_alert=[now - 60, now - 4000])
    assert judge(chosen, service="api", history=old, now=now).allowed


def test_blast_radius_bounds_services_and_replica_share() -> None:
    chosen = policy(blast_radius={"max_services": 2, "max_replica_percent": 50, "replicas_touched": 1})
    two = [Active("a", 1), Active("b", 1)]
    refused = judge(chosen, service="c", history=History(active=two, service_replicas=4), now=0)
    assert refused.guard == Guard.BLAST_RADIUS and "2 service(s) under remediation" in refused.reason
    assert judge(chosen, service="a", history=History(active=two, service_replicas=4), now=0).allowed
    half = [Active("a", 1), Active("a", 1)]
    share = judge(chosen, service="a", history=History(active=half, service_replicas=4), now=0)
    assert share.guard == Guard.BLAST_RADIUS and "3 of 4 replica(s)" in share.reason
    unknown = judge(chosen, service="a", history=History(active=[], service_replicas=None), now=0)
    assert unknown.guard == Guard.BLAST_RADIUS  # fails closed


def test_breaker_is_checked_before_the_rate_limit() -> None:
    chosen = policy(circuit_breaker={"failures": 1}, rate_limit={"per_service": {"runs": 1, "window": 60}})
    history = History(outcomes=[Outcome(99.0, False)], service_starts=[99.0])
    assert judge(chosen, service="api", history=history, now=100.0).guard == Guard.CIRCUIT_BREAKER


def fields(document: Any, workflows: tuple[str, ...] = ("restart-service",)) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        RemediationDocument.parse(document, workflows=workflows)
    return [field for field, _ in caught.value.errors]


def test_bad_policies_name_the_field() -> None:
    good = {"name": "p", "match": {"alertname": "down"}, "workflow": "restart-service"}
    assert RemediationDocument.parse({"policies": [good]}, workflows=("restart-service",)).policies
    assert fields({"policies": [{**good, "workflow": "nope"}]}) == ["policies[0].workflow"]
    assert fields({"policies": [good, good]}) == ["policies[1].name"]
    assert fields({"policies": [{**good, "rate_limit": {"per_service": {"runs": 0, "window": 60}}}]}) == [
        "policies[0].rate_limit.per_service.runs"
    ]
    assert fields({"policies": [{**good, "verify": {"within": "soon"}}]}) == ["policies[0].verify.within"]
    assert fields({"policies": [{**good, "verify": {"http": {"url": "ftp://x"}}}]}) == [
        "policies[0].verify.http.url"
    ]
    assert fields({"policies": [{**good, "match": {}}]}) == ["policies[0]"]
    assert fields({"policies": [{**good, "surprise": 1}]}) == ["policies[0].surprise"]
    assert fields([good]) == ["remediation"]
