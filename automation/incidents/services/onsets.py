"""When each service of a live incident started to go wrong by its metrics: the series pushed to the
engine's store with a `service` label naming it, in minute bins, searched by `onset.find_onset` as the
RCA benchmark searches its generated metrics. Read-only.

Which series are a service's: those carrying `service="<name>"` (the label the alert rules' series and
their alerts already carry) with a sample in the window searched (a replaced pod's series are left out),
at most `PER_SERVICE` of them (by metric name), histogram buckets, creation and start times, info series
and the client libraries' runtime families (`go_`, `process_`, `python_`, ...: they say little of the
service's health and would fill its slots) left out. A counter (`_total`, `_count`, `_sum` whose values
only fall to restart: a fall to less than half) is read as its increase per minute, spread over the minutes
between its samples (a counter pushed every few minutes counts too); every other series as it is, where
higher is worse (latency, errors, saturation): a metric whose fall is the trouble (throughput,
availability) shows none, and, being searchable, makes its service count as watched and quiet; label
such series otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

import numpy as np
import pandas as pd

from automation.alerting.services.samples import LabelledSeries, MinuteBins, minute_bins, series_labelled
from automation.incidents.onset import Onset, find_onset, measurable
from automation.incidents.rca import lasting, onset_window

__all__ = ["MetricOnsets", "SERVICE_LABEL", "service_onsets"]

#: The label naming the service a series measures.
SERVICE_LABEL = "service"
#: Series read per service, and in all (the services nearest the incident first): what bounds the read
#: to at most `MAX_SERIES` x the minutes of `rca.onset_window`'s spans (about 15 h: 90,000 rows).
PER_SERVICE = 8
MAX_SERIES = 100
COUNTER_SUFFIXES = ("_total", "_count", "_sum")
SKIPPED_SUFFIXES = ("_bucket", "_created", "_info", "_start_time_seconds")
#: The runtime series client libraries export by default (Go, process, Python, JVM, the exporter's own).
SKIPPED_PREFIXES = ("go_", "process_", "python_", "jvm_", "promhttp_", "scrape_")
#: A counter's samples further apart than this are a gap, not one slow increase.
COUNTER_GAP_MINUTES = 15


@dataclass(frozen=True)
class MetricOnsets:
    """Per service: its onset (the earliest lasting one of its series, else its strongest blip), the
    services with a series that could be searched (`watched`: one of them without an onset is quiet), how
    many series were read, and the window searched."""

    onsets: dict[str, Onset]
    watched: frozenset[str]
    series: int
    start: pd.Timestamp
    end: pd.Timestamp
    #: Per watched service, the series its onset was found in (else its first searchable one), over the
    #: searched window: what the report plots as the service's key metric. (name, minute values)
    curves: dict[str, tuple[str, pd.Series]] = field(default_factory=dict)

    def note(self, services: int) -> str:
        return (
            f"metrics: {len(self.watched)} of the {services} candidate services watched ({self.series} "
            f"series labelled {SERVICE_LABEL}=<name> in the push store), {len(self.onsets)} with an onset "
            f"between {self.start:%H:%M} and {self.end:%H:%M} UTC"
        )


def service_onsets(
    services: Iterable[str], *, first_alert: datetime, end: datetime, now: datetime
) -> MetricOnsets:
    """The onsets of `services` (ordered nearest the incident first: the cap keeps those) around an
    incident whose first alert fired at `first_alert`, searched up to `end` (its resolution, or now)."""
    ordered = list(dict.fromkeys(services))
    spans, start, stop = onset_window(pd.Timestamp(first_alert), min(pd.Timestamp(end), pd.Timestamp(now)))
    found = series_labelled(
        SERVICE_LABEL,
        ordered,
        since=start.timestamp(),
        per_value=PER_SERVICE,
        skip_suffixes=SKIPPED_SUFFIXES,
        skip_prefixes=SKIPPED_PREFIXES,
    )
    chosen: dict[str, list[LabelledSeries]] = {}
    budget = MAX_SERIES
    for service in ordered:
        taken = found.get(service, [])[:budget]
        if taken:
            chosen[service] = taken
            budget -= len(taken)
    read = [(a.timestamp(), b.timestamp()) for a, b in spans]
    bins = minute_bins([s.id for taken in chosen.values() for s in taken], read)
    onsets: dict[str, Onset] = {}
    watched: set[str] = set()
    curves: dict[str, tuple[str, pd.Series]] = {}
    for service, taken in chosen.items():
        seen: list[Onset] = []
        searched: dict[str, pd.Series] = {}
        for labelled in taken:
            values = _regular(labelled, bins.get(labelled.id))
            if values is None or not measurable(values, start=start, end=stop):
                continue
            watched.add(service)
            name = _name(labelled)
            searched.setdefault(name, values[(values.index >= start) & (values.index <= stop)])
            onset = find_onset(values, start=start, end=stop)
            if onset is not None:
                seen.append(replace(onset, metric=name))
        if seen:
            onsets[service] = _first(seen)
        if searched:
            shown = onsets[service].metric if service in onsets else next(iter(searched))
            curves[service] = (shown, searched[shown])
    return MetricOnsets(
        onsets=onsets,
        watched=frozenset(watched),
        series=sum(len(t) for t in chosen.values()),
        start=start,
        end=stop,
        curves=curves,
    )


def _regular(labelled: LabelledSeries, bins: MinuteBins | None) -> pd.Series | None:
    """One value per minute (NaN where nothing was pushed); a counter's increase per minute."""
    if bins is None or not bins.times:
        return None
    index = pd.to_datetime(np.array(bins.times), unit="s", utc=True)
    minutes = pd.date_range(index[0], index[-1], freq="1min")
    if labelled.metric.endswith(COUNTER_SUFFIXES):
        increase = counter_increase(pd.Series(bins.maxima, index=index), minutes)
        if increase is not None:
            return increase
    return pd.Series(bins.means, index=index).reindex(minutes)


def counter_increase(raw: pd.Series, minutes: pd.DatetimeIndex) -> pd.Series | None:
    """A counter's increase per minute over `minutes`: each increase between two samples (from zero after a
    restart) spread evenly over the minutes between them, NaN across gaps longer than
    `COUNTER_GAP_MINUTES`. None when the series is no counter: it fell to more than half its value (a
    gauge named like a counter)."""
    previous = raw.shift(1)
    fell = raw < previous
    if bool((fell & (raw > previous / 2)).any()):
        return None
    step = raw - previous
    step[fell] = raw[fell]  # a restart: counted again from zero
    gap = raw.index.to_series().diff().dt.total_seconds() / 60
    per_minute = (step / gap).where(gap <= COUNTER_GAP_MINUTES).iloc[1:]
    # each minute takes the rate of the interval it ends (the next sample's), within the same gap bound
    return per_minute.reindex(minutes[1:], method="bfill", limit=COUNTER_GAP_MINUTES)


def _first(onsets: list[Onset]) -> Onset:
    """The earliest onset that lasted (a failure), else the strongest blip."""
    held = [o for o in onsets if lasting(o)]
    if held:
        return min(held, key=lambda o: (o.at, -o.strength))
    return max(onsets, key=lambda o: (o.strength, -o.at.timestamp()))


def _name(labelled: LabelledSeries) -> str:
    """The metric and its labels but the service's, for the evidence (shortened)."""
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labelled.labels.items()) if k != SERVICE_LABEL)
    return (f"{labelled.metric}{{{rest}}}" if rest else labelled.metric)[:120]
