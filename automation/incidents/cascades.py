"""Generated cascading failures, to measure root-cause ranking against a known answer.

A scenario: a layered service graph (10-50 services, each calling 1-3 services of deeper layers), one
injected root failure that travels to dependents (each edge carries it with a per-scenario probability,
after 15-150 s), one latency-like metric per watched service (daily cycle, noise; a failing service's
metric steps up by 2-9 sigma, some ramping over minutes), alerts that fire 1-10 minutes after a failure
(rules with `for`, scrapes) or not at all, noise alerts and blips on healthy services, a deploy on the
root before the failure half the time, and unrelated changes elsewhere. Everything is drawn from one seed.

What makes it hard, on purpose: alert order often disagrees with failure order; the root's own alert is
missing in about one case in seven; about one service in ten has no metric (an unwatched root can only
be named from its dependents); deploys happen on healthy services too; the root's metric step is drawn
from the same range as its victims' (2-9 sigma); and the ranking is given the graph as declared, with a
tenth of the true edges missing and a few false ones added.

The timings (alert delays, blips, propagation, the window) are a `Timing`, today's values by default, so the
ranking can be measured on generators whose clocks do not match its own constants (`bench_rca.py
--sensitivity`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

from automation.errors import InvalidFieldsError
from automation.incidents.graph import ServiceGraph
from automation.incidents.rca import AlertSignal, Change

__all__ = ["DEFAULT_TIMING", "Scenario", "Timing", "generate"]

HISTORY = pd.Timedelta(days=3)
STEP = pd.Timedelta(minutes=1)
#: A noise blip begins this long before its alert fires (the rule's `for`).
BLIP_LEAD_MINUTES = 3.0


@dataclass(frozen=True)
class Timing:
    """The generator's clocks; each (low, high) pair is the range a uniform draw is taken from."""

    #: Seconds from a service's failure to its alert firing (rules with `for`, scrapes).
    alert_delay: tuple[float, float] = (60.0, 600.0)
    #: Seconds a failure takes to cross one edge, to a dependent.
    propagation: tuple[float, float] = (15.0, 150.0)
    #: Minutes a noise blip lasts (it begins `BLIP_LEAD_MINUTES` before its alert).
    blip: tuple[float, float] = (5.0, 5.0)
    #: Minutes before the root's failure that the deploy on it (half the scenarios) lands.
    deploy_lead: tuple[float, float] = (2.0, 40.0)
    #: Minutes from the root's failure to the end of the window the ranking sees.
    window_after: float = 60.0
    #: Minutes at the end of the window in which nothing new begins: a failure (of a victim) or a noise
    #: alert later than this is left out of the scenario.
    quiet_end: float = 10.0
    #: Minutes after the root's failure the ranking is asked (None: at the window's end): the same
    #: incident, cut there, without what had not begun by then.
    asked_after: float | None = None

    def __post_init__(self) -> None:
        errors: list[tuple[str, str]] = []
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is None:
                continue
            low, high = value if isinstance(value, tuple) else (value, value)
            if not 0 <= low <= high:
                errors.append((f"timing.{spec.name}", f"must be 0 <= low <= high, got {value!r}"))
        if self.blip[0] < BLIP_LEAD_MINUTES:
            errors.append(("timing.blip", f"must last at least {BLIP_LEAD_MINUTES:g} min (its lead)"))
        if self.quiet_end >= self.window_after:
            errors.append(("timing.quiet_end", "must be shorter than window_after"))
        if self.asked_after is not None and not 0 < self.asked_after <= self.window_after:
            errors.append(("timing.asked_after", "must be after the failure and within window_after"))
        if errors:
            raise InvalidFieldsError(errors)


DEFAULT_TIMING = Timing()


@dataclass
class Scenario:
    seed: int
    depends_on: dict[str, list[str]]
    root: str
    failed: dict[str, pd.Timestamp]
    alerts: list[AlertSignal]
    metrics: dict[str, pd.Series]
    changes: list[Change]
    start: pd.Timestamp
    end: pd.Timestamp
    traits: list[str] = field(default_factory=list)

    #: The graph as declared by its operators: the true one with some edges missing and some extra.
    declared: dict[str, list[str]] = field(default_factory=dict)

    @property
    def graph(self) -> ServiceGraph:
        """The declared graph: what the ranking is given (the failure travelled the true one)."""
        return ServiceGraph(self.declared or self.depends_on)


def _graph(rng: np.random.Generator, size: int) -> dict[str, list[str]]:
    layers = int(rng.integers(3, 7))
    cuts = np.sort(rng.choice(np.arange(1, size), size=layers - 1, replace=False))
    names = [f"svc-{i:02d}" for i in range(size)]
    tiers = [list(t) for t in np.split(np.array(names), cuts)]
    depends_on: dict[str, list[str]] = {name: [] for name in names}
    for level, tier in enumerate(tiers[:-1]):
        deeper = [s for t in tiers[level + 1 :] for s in t]
        for service in tier:
            count = int(rng.integers(1, 4))
            # mostly the next tier, sometimes deeper (a shared database, a cache)
            near = list(tiers[level + 1])
            picks = set(rng.choice(near, size=min(count, len(near)), replace=False).tolist())
            if rng.random() < 0.3:
                picks.add(str(rng.choice(deeper)))
            depends_on[str(service)] = sorted(picks)
    return depends_on


def _metric(rng: np.random.Generator, index: pd.DatetimeIndex) -> tuple[np.ndarray, float]:
    base = float(rng.uniform(50, 500))
    phase = rng.uniform(0, 2 * np.pi)
    minutes = (index - index[0]).total_seconds().to_numpy() / 60
    cycle = 1 + 0.4 * np.sin(2 * np.pi * minutes / 1440 + phase)
    sd = base * float(rng.uniform(0.03, 0.08))
    return base * cycle + rng.normal(0, sd, len(index)), sd


def generate(seed: int, *, size: int | None = None, timing: Timing = DEFAULT_TIMING) -> Scenario:
    rng = np.random.default_rng(seed)
    # blip lengths come from a stream of their own: whatever their range, every other draw is the same
    blip_rng = np.random.default_rng([seed, 1])
    size = size or int(rng.integers(10, 51))
    depends_on = _graph(rng, size)
    graph = ServiceGraph(depends_on)
    services = list(depends_on)
    root = str(rng.choice(services))
    day0 = pd.Timestamp("2026-03-02")
    onset = day0 + HISTORY + pd.Timedelta(minutes=int(rng.integers(0, 20 * 60)))
    start, end = onset - pd.Timedelta(minutes=30), onset + pd.Timedelta(minutes=timing.window_after)
    traits: list[str] = []

    failed = {root: onset}
    edge_probability = float(rng.uniform(0.6, 0.95))
    frontier = [root]
    while frontier:
        nxt = []
        for service in frontier:
            for dependent in graph.dependents(service):
                if dependent in failed or rng.random() > edge_probability:
                    continue
                crossing = pd.Timedelta(seconds=float(rng.uniform(*timing.propagation)))
                failed[dependent] = failed[service] + crossing
                nxt.append(dependent)
        frontier = nxt
    failed = {s: t for s, t in failed.items() if t <= end - pd.Timedelta(minutes=timing.quiet_end)}

    index = pd.date_range(day0, end, freq=STEP)
    watched = {s for s in services if rng.random() >= 0.1}
    if root not in watched:
        traits.append("root unwatched")
    metrics: dict[str, pd.Series] = {}
    alerts: list[AlertSignal] = []
    healthy = [s for s in services if s not in failed]
    noisy = set(rng.choice(healthy, size=min(len(healthy), int(rng.poisson(1.5))), replace=False).tolist())
    for service in services:
        values, sd = _metric(rng, index)
        minutes = (index - day0).total_seconds().to_numpy() / 60
        if service in failed:
            at = (failed[service] - day0).total_seconds() / 60
            size_sigmas = float(rng.uniform(2, 9))  # the root's step is no larger than its victims'

            ramp = float(rng.uniform(0, 5)) if rng.random() < 0.4 else 0.0
            rise = np.clip((minutes - at) / ramp, 0, 1) if ramp else (minutes >= at).astype(float)
            values = values + size_sigmas * sd * rise
            fires = rng.random() < (0.85 if service in watched else 0.5)
            fired_at = None
            if fires:
                delay = pd.Timedelta(seconds=float(rng.uniform(*timing.alert_delay)))
                # an alert that fires after the window ends has not fired yet when the ranking is asked
                fired_at = failed[service] + delay if failed[service] + delay <= end else None
            if service == root and fired_at is None:
                traits.append("root alert missing")
            if fired_at is not None:
                alerts.append(AlertSignal(service, fired_at, "HighLatency"))
        elif service in noisy:
            latest = (end - start).total_seconds() - timing.quiet_end * 60
            at_time = start + pd.Timedelta(seconds=float(rng.uniform(0, latest)))
            if rng.random() < 0.5:
                at = (at_time - day0).total_seconds() / 60
                lasts = float(blip_rng.uniform(*timing.blip))
                blip = (minutes >= at - BLIP_LEAD_MINUTES) & (minutes < at + (lasts - BLIP_LEAD_MINUTES))
                values = values + 4 * sd * blip
            alerts.append(AlertSignal(service, at_time, "HighLatency"))
        if service in watched:
            metrics[service] = pd.Series(values, index=index)
    changes: list[Change] = []
    if rng.random() < 0.5:
        before = pd.Timedelta(minutes=float(rng.uniform(*timing.deploy_lead)))
        changes.append(Change(root, onset - before, "deploy", f"{root} v{int(rng.integers(2, 90))}"))
        traits.append("deploy on root")
    for _ in range(int(rng.poisson(2))):
        service = str(rng.choice(services))
        at_time = onset + pd.Timedelta(minutes=float(rng.uniform(-60, 30)))
        if at_time <= end:  # nor has a deploy after the window's end happened yet
            changes.append(Change(service, at_time, "deploy", f"{service} routine"))
    # What operators declared is not the truth: a tenth of the edges missing, a few that are not there.
    declared = {s: [d for d in deps if rng.random() >= 0.1] for s, deps in depends_on.items()}
    for _ in range(max(1, size // 10)):
        a, b = rng.choice(services, size=2, replace=False).tolist()
        if b not in declared[a] and a not in ServiceGraph(declared).upstream(b):
            declared[a].append(b)
    if any(set(declared[s]) != set(depends_on[s]) for s in services):
        traits.append("graph inexact")
    if len(failed) == 1:
        traits.append("no cascade")
    if noisy:
        traits.append(f"{len(noisy)} noise alert(s)")
    scenario = Scenario(
        seed=seed,
        depends_on=depends_on,
        declared=declared,
        root=root,
        failed=failed,
        alerts=sorted(alerts, key=lambda a: a.started_at),
        metrics=metrics,
        changes=changes,
        start=start,
        end=end,
        traits=traits,
    )
    if timing.asked_after is None:
        return scenario
    return _seen_at(scenario, onset + pd.Timedelta(minutes=timing.asked_after))


def _seen_at(scenario: Scenario, at: pd.Timestamp) -> Scenario:
    """The scenario as it stood at `at`: failures, alerts, deploys and metric points after it left out (every
    draw is the same as for the whole window, so it is the same incident, only seen earlier)."""
    failed = {s: t for s, t in scenario.failed.items() if t <= at}
    alerts = [a for a in scenario.alerts if a.started_at <= at]
    noise = {a.service for a in alerts if a.service not in scenario.failed}
    traits = [
        t for t in scenario.traits if t not in ("root alert missing", "no cascade") and "noise" not in t
    ]
    if scenario.root not in {a.service for a in alerts}:
        traits.append("root alert missing")
    if len(failed) == 1:
        traits.append("no cascade")
    if noise:
        traits.append(f"{len(noise)} noise alert(s)")
    return replace(
        scenario,
        failed=failed,
        alerts=alerts,
        metrics={s: series[series.index <= at] for s, series in scenario.metrics.items()},
        changes=[c for c in scenario.changes if c.at <= at],
        end=at,
        traits=traits,
    )
