"""Escalation's pure parts: the policy rule, the step decisions and where a page leaves the escalation, whom
a level reaches, the escalation document's checks, signed acknowledgement links, and what a page says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from automation.alerting.receivers.alertmanager import AlertmanagerWebhookParams
from automation.alerting.receivers.email import EmailParams
from automation.errors import DefinitionError, InvalidFieldsError
from automation.incidents.ack_links import AckLinkRefused, sign, verify
from automation.incidents.escalation import (
    Level,
    Match,
    Policy,
    Position,
    Target,
    after_page,
    choose_policy,
    decide,
    reach,
)
from automation.incidents.escalation_definitions import EscalationDocument
from automation.incidents.paging import PageAlert, PageIncident, incident_url, page_content

LEVELS = (
    Level((Target("schedule", "primary"),), 300.0),
    Level((Target("user", "bob"), Target("receiver", "team")), 600.0),
)


def policy(repeat: int = 0, **match: Any) -> Policy:
    return Policy("p", LEVELS, repeat, Match(**match))


# -- the policy rule --------------------------------------------------------------------------------------


def test_the_first_matching_policy_wins_and_says_why() -> None:
    db = Policy("db", LEVELS, 0, Match(services=frozenset({"db", "cache"})))
    dba = Policy("dba", LEVELS, 0, Match(owners=frozenset({"dba"}), min_severity="high"))
    anything = Policy("default", LEVELS)
    policies = [db, dba, anything]

    def chosen(services: list[str], owners: list[str], severity: str) -> tuple[str, str] | None:
        found = choose_policy(policies, services=services, owners=owners, severity=severity)
        return (found[0].name, found[1]) if found else None

    assert chosen(["api", "cache"], [], "low") == ("db", "service cache")
    assert chosen(["api"], ["dba"], "critical") == ("dba", "owner dba, severity critical (at least high)")
    assert chosen(["api"], ["dba"], "high") == ("dba", "owner dba, severity high (at least high)")
    assert chosen(["api"], ["dba"], "medium") == ("default", "any incident")  # not severe enough for dba
    assert chosen(["api"], ["web"], "critical") == ("default", "any incident")
    assert choose_policy([db, dba], services=["api"], owners=[], severity="critical") is None
    assert choose_policy([dba], services=[], owners=["dba"], severity="unknown") is None


# -- decisions ---------------------------------------------------------------------------------------------


def test_the_step_decisions() -> None:
    p, start = policy(), Position(0, 0)
    assert decide(triggered=False, policy=p, position=start, due=0.0, now=10.0) == "stop"
    assert decide(triggered=False, policy=None, position=start, due=None, now=10.0) == "stop"
    assert decide(triggered=True, policy=p, position=start, due=10.5, now=10.0) == "wait"
    assert decide(triggered=True, policy=p, position=start, due=None, now=10.0) == "wait"  # over
    assert decide(triggered=True, policy=None, position=start, due=10.0, now=10.0) == "choose"
    assert decide(triggered=True, policy=p, position=start, due=10.0, now=10.0) == "page"
    assert decide(triggered=True, policy=p, position=Position(2, 0), due=9.0, now=10.0) == "exhaust"


def test_after_each_page_the_next_level_is_due_its_timeout_later_then_the_passes_repeat() -> None:
    p = policy(repeat=1)
    walk = [(Position(0, 0), 100.0)]
    while walk[-1][0].level < len(LEVELS):
        position, due = walk[-1]
        walk.append(after_page(p, position, paged_at=due + 2.0, reached=True))  # paged 2 s late
    assert walk == [
        (Position(0, 0), 100.0),
        (Position(1, 0), 402.0),  # 300 s after level 1 was paged (at 102)
        (Position(0, 1), 1004.0),  # 600 s after level 2: the second pass
        (Position(1, 1), 1306.0),
        (Position(2, 1), 1908.0),  # past the end: exhausted when due
    ]
    assert [position.describe(p) for position, _ in walk[:2]] == [
        "level 1 of 2, pass 1 of 2",
        "level 2 of 2, pass 1 of 2",
    ]
    assert Position(1, 0).describe(policy()) == "level 2 of 2"


def test_a_level_that_reached_nobody_hands_on_at_once() -> None:
    assert after_page(policy(), Position(0, 0), paged_at=50.0, reached=False) == (Position(1, 0), 50.0)
    assert after_page(policy(), Position(1, 0), paged_at=50.0, reached=False) == (Position(2, 0), 50.0)


def test_a_kept_policy_reads_back_the_same() -> None:
    p = policy(repeat=2)
    kept = Policy.from_json(p.as_json())
    assert (kept.name, kept.levels, kept.repeat) == (p.name, p.levels, p.repeat)


# -- whom a level reaches ----------------------------------------------------------------------------------


def test_a_level_reaches_each_receiver_once_and_says_why_a_target_reached_nobody() -> None:
    users = {"alice": ("alice-mail", "alice-hook"), "bob": ("bob-mail", "alice-hook"), "ghost": ("gone",)}
    level = Level(
        (
            Target("schedule", "primary"),
            Target("user", "bob"),
            Target("receiver", "team"),
            Target("schedule", "empty"),
            Target("user", "nobody"),
            Target("user", "ghost"),
        ),
        60.0,
    )
    found = reach(
        level,
        users=users,
        on_call={"primary": "alice"}.get,
        receivers={"alice-mail", "alice-hook", "bob-mail", "team"},
    )
    assert [(r.receiver, r.who, r.via) for r in found.recipients] == [
        ("alice-mail", "alice", "alice on call for schedule primary"),
        ("alice-hook", "alice", "alice on call for schedule primary"),
        ("bob-mail", "bob", "user bob"),  # alice-hook is paged once, for alice
        ("team", "team", "receiver team"),
    ]
    assert found.skipped == (
        "nobody is on call for schedule empty",
        "user nobody (user nobody) is not declared",
        "receiver gone (user ghost) is not in the alerting document",
    )


# -- the document ------------------------------------------------------------------------------------------

RECEIVERS = {"alice-mail", "bob-hook", "team"}


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "users": [{"name": "alice", "receivers": ["alice-mail"]}, {"name": "bob", "receivers": ["bob-hook"]}],
        "schedules": [
            {
                "name": "primary",
                "timezone": "Europe/Paris",
                "layers": [
                    {
                        "name": "weekly",
                        "users": ["alice", "bob"],
                        "start": "2026-01-05T09:00",
                        "rotation": "1w",
                    }
                ],
                "overrides": [{"user": "bob", "start": "2026-01-06T18:00", "end": "2026-01-07T09:00"}],
            }
        ],
        "policies": [
            {
                "name": "default",
                "levels": [
                    {"targets": [{"schedule": "primary"}], "timeout": "5m"},
                    {"targets": [{"receiver": "team"}, {"user": "bob"}], "timeout": 600},
                ],
                "repeat": 1,
            }
        ],
    }
    base.update(changes)
    return base


def problems(raw: Any) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as refused:
        EscalationDocument.parse(raw, receivers=RECEIVERS)
    return refused.value.errors


def test_a_good_document_builds_its_schedules_and_policies() -> None:
    parsed = EscalationDocument.parse(document(), receivers=RECEIVERS)
    built = parsed.policies[0].build()
    assert [level.timeout for level in built.levels] == [300.0, 600.0] and built.repeat == 1
    assert built.levels[1].targets == (Target("receiver", "team"), Target("user", "bob"))
    schedule = parsed.schedules[0].build()
    assert schedule.layers[0].start == datetime(2026, 1, 5, 9, 0)  # a wall clock of Europe/Paris
    assert schedule.overrides[0].start == datetime(2026, 1, 6, 17, 0, tzinfo=UTC)
    again = EscalationDocument.model_validate(
        parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    assert again == parsed  # stored and read back


def one_policy(target: Any = None, timeout: Any = 5, **fields: Any) -> dict[str, Any]:
    level = {"targets": [target or {"receiver": "team"}], "timeout": timeout}
    return {"policies": [{"name": "p", "levels": [level], **fields}]}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"users": [{"name": "alice", "receivers": ["nowhere"]}]}, "users[0].receivers[0]"),
        ({"users": [{"name": "alice", "receivers": []}]}, "users[0].receivers"),
        ({"users": [{"name": "a", "receivers": ["team"]}] * 2}, "users[1].name"),
        (one_policy({"schedule": "x"}), "policies[0].levels[0].targets[0].schedule"),
        (one_policy({"user": "x", "receiver": "team"}), "policies[0].levels[0].targets[0]"),
        (one_policy(timeout=0), "policies[0].levels[0].timeout"),
        (one_policy(timeout="soon"), "policies[0].levels[0].timeout"),
        ({"policies": [{"name": "p", "levels": [], "repeat": 1}]}, "policies[0].levels"),
        (one_policy(repeat=11), "policies[0].repeat"),
        (one_policy(match={"min_severity": "huge"}), "policies[0].match.min_severity"),
    ],
)
def test_a_bad_document_names_the_field(changes: dict[str, Any], field: str) -> None:
    assert field in [path for path, _ in problems(document(**changes))]


def layer(**changes: Any) -> dict[str, Any]:
    return {"name": "weekly", "users": ["alice"], "start": "2026-01-05T09:00", "rotation": "1w", **changes}


@pytest.mark.parametrize(
    ("schedule", "field", "words"),
    [
        ({"timezone": "Mars/Olympus"}, "schedules[0].timezone", "unknown time zone"),
        ({"timezone": "Europe"}, "schedules[0].timezone", "unknown time zone"),
        ({"layers": []}, "schedules[0].layers", ""),
        ({"layers": [layer(users=["zed"])]}, "schedules[0].layers[0].users[0]", "unknown user 'zed'"),
        ({"layers": [layer(rotation="10s")]}, "schedules[0].layers[0].rotation", ""),
        ({"layers": [layer(end="2026-01-01T00:00")]}, "schedules[0].layers[0].end", "must be after start"),
        ({"layers": [layer(restrict={"days": ["funday"]})]}, "schedules[0].layers[0].restrict.days[0]", ""),
        ({"layers": [layer(restrict={"from": "25:00"})]}, "schedules[0].layers[0].restrict.from", ""),
        ({"layers": [layer(start="next monday")]}, "schedules[0].layers[0].start", ""),
        (
            {"overrides": [{"user": "alice", "start": "2026-01-06T18:00", "end": "2026-01-06T17:00+00:00"}]},
            "schedules[0].overrides[0].end",
            "must be after start",
        ),
        (
            {"overrides": [{"user": "zed", "start": "2026-01-06T18:00", "end": "2026-01-07T09:00"}]},
            "schedules[0].overrides[0].user",
            "unknown user 'zed'",
        ),
    ],
)
def test_a_bad_schedule_names_the_field(schedule: dict[str, Any], field: str, words: str) -> None:
    raw = document()
    raw["schedules"] = [{**raw["schedules"][0], **schedule}]
    found = dict(problems(raw))
    assert field in found, found
    assert words in found[field]


def test_a_document_that_is_not_a_mapping_is_refused() -> None:
    assert problems(["users"]) == [("escalation", "expected a mapping of users, schedules and policies")]
    assert problems({"user": []})[0][0] == "user"


# -- acknowledgement links ---------------------------------------------------------------------------------

SECRET = "s3cret"


def refusal(
    token: str | None, incident: int = 42, now: float = 1000.0, secret: str = SECRET
) -> tuple[int, str]:
    with pytest.raises(AckLinkRefused) as refused:
        verify(token, incident, now=now, secret=secret)
    return refused.value.status, str(refused.value)


def test_a_signed_link_acknowledges_as_the_person_paged_until_it_expires() -> None:
    token = sign(42, "alice", expires=2000, secret=SECRET)
    assert verify(token, 42, now=1999.9, secret=SECRET) == "alice"
    assert refusal(token, now=2000.0) == (
        410,
        "token: expired at 1970-01-01T00:33:20+00:00; acknowledge from the API or the CLI instead",
    )


def test_an_altered_token_or_one_for_another_incident_or_secret_is_refused() -> None:
    token = sign(42, "alice", expires=2000, secret=SECRET)
    expires, who, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for altered in (
        f"{expires}.{who}.{flipped}",
        f"9999.{who}.{signature}",  # a later expiry
        f"{expires}.{sign(42, 'mallory', expires=2000, secret=SECRET).split('.')[1]}.{signature}",
    ):
        assert refusal(altered)[0] == 403
    assert refusal(token, incident=43) == (
        403,
        "token: signature does not match incident 43 (altered, or for another incident)",
    )
    assert refusal(token, secret="other")[0] == 403


@pytest.mark.parametrize(
    "token", [None, "", "abc", "1.2", "x.YWxpY2U.c2ln", "1.@@@.c2ln", "1." + "a" * 500 + ".b"]
)
def test_a_malformed_token_is_refused_naming_it(token: str | None) -> None:
    with pytest.raises(InvalidFieldsError) as refused:
        verify(token, 42, now=1000.0, secret=SECRET)
    assert [field for field, _ in refused.value.errors] == ["token"]


# -- what a page says --------------------------------------------------------------------------------------


def page(url: str | None, alerts: int = 2) -> dict[str, Any]:
    fired = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    return page_content(
        PageIncident(42, "db_down on db", "critical", "triggered", ("api", "db")),
        [
            PageAlert(
                f"fp{i}", "db_down", i % 2 == 0, fired, None if i % 2 == 0 else fired, {"service": "db"}
            )
            for i in range(alerts)
        ],
        step="level 2 of 2",
        receiver="bob-hook",
        who="bob",
        sequence=1,
        url=url,
        ack_url=f"{url or ''}/ack?token=t",
    )


def test_a_page_carries_the_incident_and_its_acknowledgement_link_for_every_receiver_kind() -> None:
    content = page(incident_url("https://ops.example.org/", 42))
    assert content["text"].splitlines()[:4] == [
        "[INCIDENT 42] db_down on db (critical, level 2 of 2)",
        "For: bob. Services: api, db. 1 of 2 alert(s) firing.",
        "Incident: https://ops.example.org/api/v1/incidents/42",
        "Acknowledge: https://ops.example.org/api/v1/incidents/42/ack?token=t",
    ]
    annotations = content["payload"]["commonAnnotations"]
    assert annotations["ack_url"] == "https://ops.example.org/api/v1/incidents/42/ack?token=t"
    assert annotations["incident_url"] == "https://ops.example.org/api/v1/incidents/42"
    assert content["details"]["incident_id"] == "42" and content["group_key"] == "incident:42"
    # what the receivers' actions take from it validates as their parameters
    mapped = ("receiver", "status", "alerts", "groupKey", "groupLabels", "commonLabels", "commonAnnotations")
    payload = {key: content["payload"][key] for key in mapped}
    hook = AlertmanagerWebhookParams.model_validate({"url": "http://127.0.0.1:9/x", **payload})
    assert [a.status for a in hook.alerts] == ["firing", "resolved"]
    mail = EmailParams.model_validate(
        {
            "host": "h",
            "from": "a@b.c",
            "to": ["d@e.f"],
            "subject": content["summary"],
            "text": content["text"],
        }
    )
    assert "Acknowledge:" in mail.text


def test_without_a_base_url_a_page_names_the_incident_by_id_and_links_a_path() -> None:
    assert incident_url("", 42) is None
    content = page(None)
    assert content["text"].splitlines()[2:4] == ["Incident: incident 42", "Acknowledge: /ack?token=t"]
    assert content["payload"]["commonAnnotations"]["incident_url"] == ""


def test_a_page_of_a_large_incident_stays_within_its_budget() -> None:
    content = page("https://x", alerts=500)
    assert len(content["payload"]["alerts"]) == 50 and content["payload"]["truncatedAlerts"] == 450
    assert content["text"].endswith("... and 450 more alert(s)")


# -- the timing figure's arithmetic (benchmarks/bench_escalation.py) ---------------------------------------


def test_the_timing_figure_counts_lost_doubled_on_time_and_late_pages() -> None:
    from collections import Counter

    from benchmarks.bench_escalation import Page, summarize

    pages = [
        Page(1, 0, due_at=100.0, paged_at=100.5, received_at=101.0),  # on time
        Page(1, 1, due_at=110.0, paged_at=112.0, received_at=112.5),  # on time: one interval late
        Page(2, 0, due_at=100.0, paged_at=100.1, received_at=None),  # stored, never delivered: lost
        Page(2, 1, due_at=150.0, paged_at=158.0, received_at=170.0),  # due in the outage: late by it
        Page(3, 0, due_at=300.0, paged_at=304.0, received_at=304.1),  # late for no reason
    ]
    timing = summarize(
        pages,
        expected=6,
        received=Counter({(1, 0): 1, (1, 1): 2, (2, 1): 1, (3, 0): 1}),
        interval=2.0,
        outages=[(149.0, 157.0)],
    )
    assert (timing.stored, timing.lost, timing.doubled) == (5, 2, 1)
    assert (timing.on_time, timing.late_in_outage, timing.late_otherwise) == (3, 1, 1)
    assert (timing.lateness_max, timing.delivered_max) == (8.0, 20.0)
