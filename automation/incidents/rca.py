"""Root-cause ranking for one incident: which service most likely started it, with the evidence.

Three kinds of evidence, each stated in the candidate's `evidence` lines:
- graph: how many of the affected services (alerting, or whose metric went wrong) the candidate is, or
  lies upstream of (a failure travels from a dependency to its dependents), and whether a dependency of
  its own went wrong first (then it is more likely a victim);
- timing: when its trouble began (the metric's onset, else its first alert, which may lag the trouble
  by up to `ALERT_LAG`) against the others'; a cascade does not pause for longer than a failure takes to
  cross an edge, so trouble after such a pause is not its doing;
- changes: a deploy, config change or workflow run on it shortly before its trouble began.

Candidates are the affected services and their dependencies up to two hops (a root whose own alert never
fired, or whose metric is not watched, can still be named from its dependents: silence from a service
whose metric is not watched says nothing, silence from a watched metric says it is healthy). The score is
a fixed weighted sum, not learned: what each part contributes is visible and stable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from automation.incidents.graph import ServiceGraph
from automation.incidents.onset import SCALE_WINDOW, Onset

__all__ = ["AlertSignal", "Cause", "Change", "lasting", "onset_window", "rank_causes"]

WEIGHTS = {"coverage": 0.45, "earliest": 0.20, "change": 0.15, "strength": 0.20, "victim": -0.40}
#: A candidate with no signal of its own whose metric was searched and shows no onset (a healthy
#: dependency, most likely) gets this share of its coverage: named only when nothing that went wrong
#: explains as much.
SILENT_SHARE = 0.5
#: The share for a candidate with no signal whose metric is not watched: its silence says nothing either way
#: (no metric to show an onset; an alert that never fired), so only what it explains speaks for it.
UNSEEN_SHARE = 1.0
#: Alerts fire after their rule's `for` and a scrape or two: trouble known only by its alert may have begun
#: this much earlier.
ALERT_LAG = pd.Timedelta(minutes=10)
#: How long before a service's trouble a change on it counts as a suspect.
CHANGE_LOOKBACK = pd.Timedelta(hours=1)
#: Onsets closer than this are simultaneous (one scrape, one evaluation apart).
TIE = pd.Timedelta(seconds=30)
#: The longest a failure takes to reach a dependent: trouble upstream that began earlier explains nothing.
PROPAGATION = pd.Timedelta(minutes=10)
#: The longest a cascade goes on spreading after its root's trouble began.
CASCADE_SPAN = pd.Timedelta(hours=1)
#: Strength of a service known only by its alert (no metric, or no onset found in it).
ALERT_STRENGTH = 0.5
CANDIDATE_HOPS = 2
#: A metric onset held for less than this share of the time since, or (where measured) for less than
#: `LASTING_FOR` in all, is a blip, not a failure.
LASTING = 0.2
LASTING_FOR = pd.Timedelta(minutes=10)
#: What an alert adds to a lasting metric onset on the same service (they agree: a confirmed failure).
CORROBORATED = 0.15
#: The share of an alert's strength left when the service's metric was searched and shows no onset.
UNCONFIRMED = 0.5

#: The search starts this long before the first alert: an alert reports trouble up to `ALERT_LAG` old,
#: from a dependency up to `PROPAGATION` per edge upstream (two edges, and the same again as margin).
SEARCH_BEFORE = ALERT_LAG + 2 * PROPAGATION
#: And ends at the resolution, now, or this long after the first alert, whichever is first: a cascade
#: spreads no longer (`CASCADE_SPAN`).
SEARCH_AFTER = CASCADE_SPAN
#: History read for the live search: `SCALE_WINDOW` before it for the departure's scale, and the same
#: minutes a day before for a baseline (with less, the previous hour's median, which lags a daily cycle:
#: top-1 0.87 instead of 0.91 on the development seeds, `bench_rca.py --live-window`).
BASELINE_BACK = pd.Timedelta(days=1)


@dataclass(frozen=True)
class AlertSignal:
    service: str
    started_at: pd.Timestamp
    name: str = ""


@dataclass(frozen=True)
class Change:
    service: str
    at: pd.Timestamp
    kind: str  # deploy, config, workflow_run, ...
    detail: str = ""


@dataclass
class Cause:
    service: str
    score: float
    began_at: pd.Timestamp | None
    evidence: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "service": self.service,
            "score": round(self.score, 4),
            "began_at": None if self.began_at is None else self.began_at.isoformat(),
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class _Trouble:
    began: pd.Timestamp
    what: str
    strength: float
    #: Whether it lasted (or nothing says it did not): a failure persists until someone fixes it, so only
    #: lasting trouble can have caused trouble downstream or made a dependent its victim.
    lasting: bool = True
    #: Known only by its alert (no metric onset): it may have begun up to `ALERT_LAG` before `began`.
    by_alert: bool = False

    @property
    def earliest(self) -> pd.Timestamp:
        """The earliest it can have begun."""
        return self.began - ALERT_LAG if self.by_alert else self.began


def lasting(onset: Onset) -> bool:
    """Whether a metric onset held (`LASTING`, `LASTING_FOR`): a failure, not a blip."""
    return onset.sustained >= LASTING and (onset.held is None or onset.held >= LASTING_FOR)


def onset_window(
    first_alert: pd.Timestamp, end: pd.Timestamp
) -> tuple[list[tuple[pd.Timestamp, pd.Timestamp]], pd.Timestamp, pd.Timestamp]:
    """Where a live incident's metric onsets are looked for (its first alert fired at `first_alert`, it was
    resolved, or is seen, at `end`): the spans to read, and the search's start and end. `find_onset` reads
    the scale window and the search, and the same minutes `BASELINE_BACK` before: not the hours between."""
    start = first_alert - SEARCH_BEFORE
    stop = max(first_alert, min(end, first_alert + SEARCH_AFTER))
    recent, back = start - SCALE_WINDOW, BASELINE_BACK
    if stop - back >= recent:
        return [(recent - back, stop)], start, stop
    return [(recent - back, stop - back), (recent, stop)], start, stop


def _troubles(
    alerts: Iterable[AlertSignal], onsets: Mapping[str, Onset], watched: frozenset[str]
) -> dict[str, _Trouble]:
    """Per affected service: when its trouble began, what says so, how strong it is and whether it lasted
    (the metric's onset wins over the alert: alerts fire after their `for`). An alert on a service whose
    metric was searched and shows no onset is unconfirmed; a metric onset that did not hold is a blip: an
    alert beside it does not make it stronger than the metric says."""
    found: dict[str, _Trouble] = {}
    for alert in alerts:
        known = found.get(alert.service)
        if known is None or alert.started_at < known.began:
            what = f"alert {alert.name or 'firing'}"
            if alert.service in watched and alert.service not in onsets:
                what += " (its metric shows no onset)"
                found[alert.service] = _Trouble(alert.started_at, what, ALERT_STRENGTH * UNCONFIRMED, False)
            else:
                found[alert.service] = _Trouble(alert.started_at, what, ALERT_STRENGTH, by_alert=True)
    for service, onset in onsets.items():
        held = "" if onset.held is None else f"held {onset.held.total_seconds() / 60:.0f} min, "
        named = f"metric {onset.metric} onset" if onset.metric else "metric onset"
        what = f"{named} ({onset.peak_sigmas:.1f} sigma, {held}{onset.sustained:.0%} of the time since)"
        held_on = lasting(onset)
        strength = onset.strength
        if service in found:
            # two signals of one lasting failure say more than either alone; an alert on a blip, less
            strength = (
                min(1.0, max(strength, ALERT_STRENGTH) + CORROBORATED)
                if held_on
                else max(strength, ALERT_STRENGTH * onset.sustained)
            )
            what += " and its alert"
        found[service] = _Trouble(onset.at, what, strength, held_on)
    return found


def rank_causes(
    graph: ServiceGraph,
    *,
    alerts: Iterable[AlertSignal],
    onsets: Mapping[str, Onset],
    changes: Iterable[Change] = (),
    watched: Iterable[str] = (),
) -> list[Cause]:
    """The candidates, best first (ties by earlier trouble, then name). `watched`: the services whose
    metrics were searched for an onset (those without one in `onsets` showed none)."""
    watched = frozenset(watched)
    troubles = _troubles(
        [a for a in alerts if a.service in graph], {s: o for s, o in onsets.items() if s in graph}, watched
    )
    if not troubles:
        return []
    candidates = set(troubles)
    for service in troubles:
        candidates |= {s for s, hops in graph.upstream(service).items() if hops <= CANDIDATE_HOPS}
    by_service: dict[str, list[Change]] = {}
    for change in changes:
        by_service.setdefault(change.service, []).append(change)
    total = sum(t.strength for t in troubles.values()) or 1.0
    causes = [_judge(graph, c, troubles, total, by_service, watched) for c in sorted(candidates)]
    first = min(t.began for t in troubles.values())
    far = first + pd.Timedelta(days=3650)
    causes.sort(key=lambda c: (-c.score, c.began_at if c.began_at is not None else far, c.service))
    return causes


def _explains(own: _Trouble | None, other: _Trouble) -> bool:
    """Whether trouble that began at `own` can have caused `other` downstream (no signal: it may; a blip or
    an unconfirmed alert cannot)."""
    return own is None or (own.lasting and own.earliest - TIE <= other.began <= own.began + CASCADE_SPAN)


def _explained(graph: ServiceGraph, service: str, troubles: Mapping[str, _Trouble]) -> list[str]:
    """The affected services downstream of `service` whose trouble its own can have caused. A cascade does
    not pause: what began after a longer pause than a failure takes to cross an edge is other trouble.
    Without a signal of its own, when it began is unknown: the heaviest run of trouble without a pause."""
    own, below = troubles.get(service), graph.downstream(service)
    found = [s for s in troubles if s != service and s in below and _explains(own, troubles[s])]
    runs = _runs(found, troubles, None if own is None else own.began)
    if own is not None:
        return sorted(runs[0])
    return sorted(max(runs, key=lambda run: sum(troubles[s].strength for s in run), default=[]))


def _runs(
    names: Iterable[str], troubles: Mapping[str, _Trouble], start: pd.Timestamp | None
) -> list[list[str]]:
    """`names` by when their trouble began, split where none began within `PROPAGATION` (and an alert's
    lag, for trouble known only by its alert) of the latest before it; the first run follows `start`."""
    runs: list[list[str]] = [[]] if start is not None else []
    reach = start
    for name in sorted(names, key=lambda s: (troubles[s].began, s)):
        trouble = troubles[name]
        pause = PROPAGATION + (ALERT_LAG if trouble.by_alert else pd.Timedelta(0))
        if reach is None or trouble.began > reach + pause:
            runs.append([])
        runs[-1].append(name)
        reach = trouble.began if reach is None else max(reach, trouble.began)
    return runs


def _shared_silent_dependency(
    graph: ServiceGraph,
    service: str,
    own: _Trouble,
    troubles: Mapping[str, _Trouble],
    watched: frozenset[str],
) -> tuple[str, int] | None:
    """A dependency without a signal, and whose metric is not watched, shared with at least two other
    affected services that got into trouble about when this one did: siblings failing together point at
    what they share (not at a dependency whose metric shows no onset)."""
    best: tuple[str, int] | None = None
    for dep, hops in graph.upstream(service).items():
        if dep in troubles or hops > CANDIDATE_HOPS or dep in watched:
            continue
        siblings = sum(
            1
            for other in graph.downstream(dep)
            if other != service
            and other in troubles
            and abs(troubles[other].began - own.began) <= PROPAGATION
            and service not in graph.upstream(other)
        )
        if siblings >= 2 and (best is None or siblings > best[1]):
            best = (dep, siblings)
    return best


def _judge(
    graph: ServiceGraph,
    service: str,
    troubles: Mapping[str, _Trouble],
    total: float,
    changes: Mapping[str, list[Change]],
    watched: frozenset[str],
) -> Cause:
    evidence: list[str] = []
    own = troubles.get(service)
    below = graph.downstream(service)
    explained = _explained(graph, service, troubles)
    weight = sum(troubles[s].strength for s in explained) + (own.strength if own else 0.0)
    coverage = weight / total
    evidence.append(
        f"graph: upstream of {len(explained)} of the {len(troubles)} affected services"
        + (f" ({', '.join(explained)[:200]})" if explained else "")
        + f"; {coverage:.0%} of the trouble by strength"
    )
    if own is None and service in watched:
        evidence.append("timing: no alert, and its metric shows no onset")
        score = WEIGHTS["coverage"] * coverage * SILENT_SHARE
    elif own is None:
        evidence.append("timing: no alert, and no metric of it is watched (its silence says nothing)")
        score = WEIGHTS["coverage"] * coverage * UNSEEN_SHARE
    else:
        after = sum(1 for s in explained if troubles[s].began >= own.earliest - TIE)
        # a blip or an unconfirmed alert explains nothing: no credit for coming first
        earliest = (after + 1) / (len(explained) + 1) if own.lasting else 0.0
        score = (
            WEIGHTS["coverage"] * coverage
            + WEIGHTS["earliest"] * earliest
            + WEIGHTS["strength"] * own.strength
        )
        timing = f"timing: {own.what} at {own.began:%H:%M:%S}"
        if own.by_alert:
            lag = f"{ALERT_LAG.total_seconds() / 60:.0f} min"
            timing += f" (dated by an alert: its trouble may have begun up to {lag} earlier); possibly"
        else:
            timing += ";"
        evidence.append(timing + f" before {after} of the {len(explained)} it explains")
    failing_deps = sorted(
        dep
        for dep in graph.upstream(service)
        if dep in troubles
        and troubles[dep].lasting
        and troubles[dep].strength >= 0.3
        and (own is None or own.began - PROPAGATION <= troubles[dep].began < own.began - TIE)
    )
    if failing_deps and own is not None:
        score += WEIGHTS["victim"]
        evidence.append(f"graph: depends on {', '.join(failing_deps[:5])}, in trouble shortly before it")
    elif own is not None:
        shared = _shared_silent_dependency(graph, service, own, troubles, watched)
        if shared is not None:
            score += WEIGHTS["victim"] / 2
            evidence.append(
                f"graph: {shared[0]} (no signal of its own) is a dependency of this service and of "
                f"{shared[1]} other affected services whose trouble began within "
                f"{PROPAGATION.total_seconds() / 60:.0f} min of its own"
            )
    else:
        hops = [below[s] for s in explained]
        if hops:
            score -= 0.01 * (sum(hops) / len(hops))  # the nearest common dependency first
    # a silent candidate's trouble began, at the latest, with the first trouble of what it explains
    reference = own.began if own is not None else min(troubles[s].began for s in explained or troubles)
    suspects = [c for c in changes.get(service, ()) if reference - CHANGE_LOOKBACK <= c.at <= reference + TIE]
    if suspects:
        latest = max(suspects, key=lambda c: c.at)
        before = (reference - latest.at).total_seconds() / 60
        score += WEIGHTS["change"]
        whose = "its trouble" if own is not None else "the first trouble it explains"
        when = f", {before:.0f} min before {whose} (score +{WEIGHTS['change']:.2f})"
        evidence.append(f"change: {latest.kind} {latest.detail}".rstrip() + when)
    return Cause(service=service, score=score, began_at=own.began if own else None, evidence=evidence)
