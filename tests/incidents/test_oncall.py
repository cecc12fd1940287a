"""Who is on call (automation.incidents.oncall), pure: hand-off boundaries, wrap-around, layers,
restrictions across midnight, overrides, daylight saving in both directions, and until when."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from automation.incidents.oncall import Layer, Override, Restriction, Schedule, instant_of, on_call

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
DAY, WEEK = timedelta(days=1), timedelta(days=7)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def who(schedule: Schedule, at: datetime) -> str | None:
    found = on_call(schedule, at)
    return found.user if found else None


def weekly(zone: ZoneInfo = PARIS, **layer: object) -> Schedule:
    """alice, bob, carol by the week from Monday 5 January 2026, 09:00 local."""
    fields: dict[str, object] = {
        "name": "weekly",
        "users": ("alice", "bob", "carol"),
        "start": datetime(2026, 1, 5, 9, 0),
        "turn": WEEK,
        **layer,
    }
    return Schedule("primary", zone, (Layer(**fields),))  # type: ignore[arg-type]


def test_a_weekly_rotation_hands_off_at_its_local_time_and_wraps_around() -> None:
    schedule = weekly()
    # 09:00 in Paris in January is 08:00 UTC
    assert who(schedule, utc(2026, 1, 5, 7, 59, 59)) is None  # before the first hand-off
    assert who(schedule, utc(2026, 1, 5, 8, 0)) == "alice"
    assert who(schedule, utc(2026, 1, 12, 7, 59, 59)) == "alice"
    assert who(schedule, utc(2026, 1, 12, 8, 0)) == "bob"  # the hand-off itself belongs to the next turn
    assert who(schedule, utc(2026, 1, 19, 8, 0)) == "carol"
    assert who(schedule, utc(2026, 1, 26, 8, 0)) == "alice"  # around again
    assert who(schedule, utc(2027, 1, 4, 8, 0)) == ["alice", "bob", "carol"][52 % 3]
    found = on_call(schedule, utc(2026, 1, 14, 12, 0))
    assert found is not None and (found.user, found.source, found.until) == (
        "bob",
        "layer weekly",
        utc(2026, 1, 19, 8, 0),
    )


def test_a_daily_hand_off_stays_at_nine_local_across_both_daylight_saving_changes() -> None:
    schedule = Schedule("daily", PARIS, (Layer("days", ("ann", "ben"), datetime(2026, 3, 1, 9, 0), DAY),))
    # Paris moves to summer time on Sunday 29 March 2026 (02:00 -> 03:00): 09:00 is 08:00 UTC before, 07:00
    # after. 28 March is day 27 of the rotation (ben), 29 March day 28 (ann).
    assert who(schedule, utc(2026, 3, 28, 8, 0)) == "ben"
    assert who(schedule, utc(2026, 3, 29, 6, 59, 59)) == "ben"
    assert who(schedule, utc(2026, 3, 29, 7, 0)) == "ann"
    assert on_call(schedule, utc(2026, 3, 28, 12, 0)).until == utc(2026, 3, 29, 7, 0)  # type: ignore[union-attr]
    # back to winter time on Sunday 25 October 2026 (03:00 -> 02:00): 09:00 is 08:00 UTC again
    assert on_call(schedule, utc(2026, 10, 24, 12, 0)).until == utc(2026, 10, 25, 8, 0)  # type: ignore[union-attr]
    assert who(schedule, utc(2026, 10, 25, 7, 59)) == who(schedule, utc(2026, 10, 24, 12, 0))
    assert who(schedule, utc(2026, 10, 25, 8, 0)) != who(schedule, utc(2026, 10, 24, 12, 0))


def test_a_twelve_hour_rotation_hands_off_at_local_times_so_its_turns_last_eleven_or_thirteen_hours() -> None:
    schedule = Schedule(
        "shifts", NEW_YORK, (Layer("shifts", ("day", "night"), datetime(2026, 3, 1, 8, 0), DAY / 2),)
    )
    # New York springs forward on Sunday 8 March 2026: 20:00 EST on the 7th is 01:00 UTC on the 8th, 08:00
    # EDT on the 8th is 12:00 UTC: the night shift lasts 11 hours.
    night = on_call(schedule, utc(2026, 3, 8, 1, 0))
    assert night is not None and night.user == "night" and night.until == utc(2026, 3, 8, 12, 0)
    assert who(schedule, utc(2026, 3, 8, 12, 0)) == "day"


def test_a_hand_off_in_the_skipped_hour_happens_when_the_clocks_jump() -> None:
    # 02:30 does not exist in Paris on 29 March 2026: the clocks go from 02:00 CET (01:00 UTC) to 03:00 CEST.
    assert instant_of(datetime(2026, 3, 29, 2, 30), PARIS) == utc(2026, 3, 29, 1, 0)
    schedule = Schedule("night", PARIS, (Layer("n", ("x", "y"), datetime(2026, 3, 28, 2, 30), DAY),))
    assert who(schedule, utc(2026, 3, 29, 0, 59, 59)) == "x"
    assert who(schedule, utc(2026, 3, 29, 1, 0)) == "y"
    assert on_call(schedule, utc(2026, 3, 29, 0, 0)).until == utc(2026, 3, 29, 1, 0)  # type: ignore[union-attr]


def test_a_hand_off_in_the_repeated_hour_happens_once_at_its_first_occurrence() -> None:
    # 02:30 happens twice in Paris on 25 October 2026: 00:30 UTC (CEST) and 01:30 UTC (CET).
    assert instant_of(datetime(2026, 10, 25, 2, 30), PARIS) == utc(2026, 10, 25, 0, 30)
    schedule = Schedule("night", PARIS, (Layer("n", ("x", "y"), datetime(2026, 10, 24, 2, 30), DAY),))
    assert who(schedule, utc(2026, 10, 25, 0, 29)) == "x"
    for minute in (30, 59, 90, 95, 150):  # through the second 02:30 and after: no going back to x
        assert who(schedule, utc(2026, 10, 25, 0, 0) + timedelta(minutes=minute)) == "y", minute
    assert on_call(schedule, utc(2026, 10, 25, 0, 40)).until == utc(2026, 10, 26, 1, 30)  # type: ignore[union-attr]


def test_a_higher_layer_wins_where_it_has_someone_and_the_lower_one_covers_the_rest() -> None:
    base = Layer("follow-the-sun", ("alice", "bob"), datetime(2026, 1, 5, 0, 0), WEEK)
    office = Layer(
        "office",
        ("dora",),
        datetime(2026, 1, 5, 0, 0),
        WEEK,
        restriction=Restriction(frozenset(range(5)), time(9, 0), timedelta(hours=8)),
    )
    schedule = Schedule("primary", PARIS, (base, office))
    wednesday_noon = datetime(2026, 1, 7, 12, 0, tzinfo=PARIS)
    found = on_call(schedule, wednesday_noon)
    assert found is not None and (found.user, found.source) == ("dora", "layer office")
    assert found.until == datetime(2026, 1, 7, 17, 0, tzinfo=PARIS)  # the office window closes
    evening = on_call(schedule, datetime(2026, 1, 7, 17, 0, tzinfo=PARIS))
    assert evening is not None and (evening.user, evening.source) == ("alice", "layer follow-the-sun")
    assert evening.until == datetime(2026, 1, 8, 9, 0, tzinfo=PARIS)  # the office opens again
    assert who(schedule, datetime(2026, 1, 10, 12, 0, tzinfo=PARIS)) == "alice"  # Saturday: no office
    assert who(schedule, datetime(2026, 1, 14, 12, 0, tzinfo=PARIS)) == "dora"
    assert who(schedule, datetime(2026, 1, 14, 20, 0, tzinfo=PARIS)) == "bob"  # week two of the base


def test_a_restriction_past_midnight_belongs_to_the_day_it_opens() -> None:
    nights = Layer(
        "weekend-nights",
        ("owl",),
        datetime(2026, 1, 1, 0, 0),
        WEEK,
        restriction=Restriction(frozenset({4, 5}), time(22, 0), timedelta(hours=10)),  # Fri, Sat 22:00-08:00
    )
    schedule = Schedule("nights", PARIS, (nights,))
    assert who(schedule, datetime(2026, 1, 9, 21, 59, tzinfo=PARIS)) is None  # Friday evening
    assert who(schedule, datetime(2026, 1, 9, 22, 0, tzinfo=PARIS)) == "owl"
    assert who(schedule, datetime(2026, 1, 10, 7, 59, tzinfo=PARIS)) == "owl"  # Saturday morning
    assert who(schedule, datetime(2026, 1, 10, 8, 0, tzinfo=PARIS)) is None
    assert who(schedule, datetime(2026, 1, 11, 7, 0, tzinfo=PARIS)) == "owl"  # Sunday morning (Sat's night)
    assert who(schedule, datetime(2026, 1, 12, 7, 0, tzinfo=PARIS)) is None  # Monday morning: no Sunday night
    assert on_call(schedule, datetime(2026, 1, 12, 7, 0, tzinfo=PARIS)) is None


def test_overrides_win_over_every_layer_the_last_declared_first_and_end_excluded() -> None:
    schedule = Schedule(
        "primary",
        PARIS,
        weekly().layers,
        (
            Override("zoe", utc(2026, 1, 6, 18, 0), utc(2026, 1, 7, 6, 0)),
            Override("yan", utc(2026, 1, 6, 22, 0), utc(2026, 1, 6, 23, 0)),
        ),
    )
    assert who(schedule, utc(2026, 1, 6, 17, 59)) == "alice"
    found = on_call(schedule, utc(2026, 1, 6, 18, 0))
    assert found is not None and (found.user, found.source, found.until) == (
        "zoe",
        "override",
        utc(2026, 1, 6, 22, 0),
    )
    assert who(schedule, utc(2026, 1, 6, 22, 30)) == "yan"  # declared later: wins where both cover
    back = on_call(schedule, utc(2026, 1, 6, 23, 0))
    assert back is not None and (back.user, back.until) == ("zoe", utc(2026, 1, 7, 6, 0))
    assert who(schedule, utc(2026, 1, 7, 6, 0)) == "alice"  # the end is excluded


def test_an_override_filling_a_gap_and_a_layer_that_ends() -> None:
    ending = Layer("temp", ("tom",), datetime(2026, 1, 5, 9, 0), DAY, end=datetime(2026, 1, 8, 9, 0))
    schedule = Schedule("temp", PARIS, (ending,), (Override("ivy", utc(2026, 1, 9, 0, 0), utc(2026, 1, 10)),))
    found = on_call(schedule, datetime(2026, 1, 6, 12, 0, tzinfo=PARIS))
    # tom's own hand-offs to himself are no change: he is on call until the layer ends
    assert found is not None and found.until == datetime(2026, 1, 8, 9, 0, tzinfo=PARIS)
    assert who(schedule, datetime(2026, 1, 8, 9, 0, tzinfo=PARIS)) is None
    assert who(schedule, utc(2026, 1, 9, 12, 0)) == "ivy"
    assert on_call(schedule, utc(2026, 1, 9, 12, 0)).until == utc(2026, 1, 10)  # type: ignore[union-attr]


def test_a_lone_user_forever_has_no_until_and_a_naive_moment_is_refused() -> None:
    schedule = Schedule("solo", PARIS, (Layer("solo", ("sam",), datetime(2026, 1, 1), DAY),))
    found = on_call(schedule, utc(2026, 6, 1))
    assert found is not None and found.user == "sam" and found.until is None
    with pytest.raises(ValueError, match="timezone-aware"):
        on_call(schedule, datetime(2026, 6, 1))


@pytest.mark.parametrize("hours", [1, 7, 24, 24 * 7])
def test_every_hand_off_of_a_rotation_happens_once_in_order_through_a_year_of_daylight_saving(
    hours: int,
) -> None:
    """Walking a year hour by hour in New York, the holder only ever moves on to the next user in order."""
    users = ("a", "b", "c")
    schedule = Schedule(
        "walk", NEW_YORK, (Layer("w", users, datetime(2026, 1, 1, 2, 30), timedelta(hours=hours)),)
    )
    moment, last, changes = utc(2026, 1, 1, 12), who(schedule, utc(2026, 1, 1, 12)), 0
    while moment < utc(2027, 1, 1):
        moment += timedelta(minutes=30)
        now = who(schedule, moment)
        if now != last:
            assert now == users[(users.index(str(last)) + 1) % 3], moment
            changes += 1
            last = now
    # one change per turn of the walk (from noon on 1 January), give or take the turn the repeated hour
    # lengthens and the one the skipped hour shortens
    expected = (utc(2027, 1, 1) - utc(2026, 1, 1, 12)) / timedelta(hours=hours)
    assert abs(changes - expected) <= 2
