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
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from automation.incidents.graph import ServiceGraph
from automation.incidents.rca import AlertSignal, Change

__all__ = ["Scenario", "generate"]

HISTORY = pd.Timedelta(days=3)
STEP = pd.Timedelta(minutes=1)


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


def generate(seed: int, *, size: int | None = None) -> Scenario:
    rng = np.random.default_rng(seed)
    size = size or int(rng.integers(10, 51))
    depends_on = _graph(rng, size)
    graph = ServiceGraph(depends_on)
    services = list(depends_on)
    root = str(rng.choice(services))
    day0 = pd.Timestamp("2026-03-02")
    onset = day0 + HISTORY + pd.Timedelta(minutes=int(rng.integers(0, 20 * 60)))
    start, end = onset - pd.Timedelta(minutes=30), onset + pd.Timedelta(minutes=60)
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
                failed[dependent] = failed[service] + pd.Timedelta(seconds=float(rng.uniform(15, 150)))
                nxt.append(dependent)
        frontier = nxt
    failed = {s: t for s, t in failed.items() if t <= end - pd.Timedelta(minutes=10)}

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
            if service == root and not fires:
                traits.append("root alert missing")
            if fires:
                delay = pd.Timedelta(seconds=float(rng.uniform(60, 600)))
                alerts.append(AlertSignal(service, failed[service] + delay, "HighLatency"))
        elif service in noisy:
            at_time = start + pd.Timedelta(seconds=float(rng.uniform(0, (end - start).total_seconds() - 600)))
            if rng.random() < 0.5:
                at = (at_time - day0).total_seconds() / 60
                blip = (minutes >= at - 3) & (minutes < at + 2)
                values = values + 4 * sd * blip
            alerts.append(AlertSignal(service, at_time, "HighLatency"))
        if service in watched:
            metrics[service] = pd.Series(values, index=index)
    changes: list[Change] = []
    if rng.random() < 0.5:
        before = pd.Timedelta(minutes=float(rng.uniform(2, 40)))
        changes.append(Change(root, onset - before, "deploy", f"{root} v{int(rng.integers(2, 90))}"))
        traits.append("deploy on root")
    for _ in range(int(rng.poisson(2))):
        service = str(rng.choice(services))
        at_time = onset + pd.Timedelta(minutes=float(rng.uniform(-60, 30)))
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
    return Scenario(
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
