"""Kinds and outcomes of the scaling domain, with their named groups; no literal of them anywhere else."""

from __future__ import annotations


class TargetKind:
    """What a target scales: a service read through a metric query (`service`), or the engine's own Celery
    workers of one queue, sized from the queue's backlog and arrivals read from the broker (`celery`)."""

    SERVICE = "service"
    CELERY = "celery"

    ALL = (SERVICE, CELERY)
    CHOICES = [(s, s) for s in ALL]


class PolicyKind:
    """How a target's replicas are decided: from a forecast, from the observed load (the HPA algorithm),
    or the larger of the two."""

    PREDICTIVE = "predictive"
    REACTIVE = "reactive"
    HYBRID = "hybrid"

    ALL = (PREDICTIVE, REACTIVE, HYBRID)
    #: Policies that read a forecast (and so keep a fitted forecaster per target).
    FORECASTING = (PREDICTIVE, HYBRID)
    CHOICES = [(s, s) for s in ALL]


class LoadSource:
    """Where a target's load is read: the engine's push store, or a Prometheus server (PromQL)."""

    PUSH = "push"
    PROMETHEUS = "prometheus"

    ALL = (PUSH, PROMETHEUS)


class Aggregate:
    """How the series a load query matches are combined into one load."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"

    ALL = (SUM, AVG, MAX)


class TargetStatus:
    """A target as listed: evaluated each tick, or not (its own `enabled`, or predictive scaling off)."""

    ACTIVE = "active"
    DISABLED = "disabled"


class Action:
    """What one decision did."""

    SCALE_UP = "scale_up"
    SCALE_DOWN = "scale_down"
    HOLD = "hold"
    NO_DATA = "no_data"  # no load could be read: nothing changes
    ERROR = "error"  # the decision could not be taken (the source or the provider failed)

    ALL = (SCALE_UP, SCALE_DOWN, HOLD, NO_DATA, ERROR)
    #: Decisions that start a scale run.
    CHANGES = (SCALE_UP, SCALE_DOWN)
    CHOICES = [(s, s) for s in ALL]


class Basis:
    """What the desired replicas came from."""

    FORECAST = "forecast"  # the forecast (predictive, or hybrid where it was the larger)
    OBSERVED = "observed"  # the observed load (reactive, or hybrid where it was the larger)
    FALLBACK = "fallback"  # a forecasting policy without a usable forecast: reactive, and the reason why

    ALL = (FORECAST, OBSERVED, FALLBACK)
    CHOICES = [(s, s) for s in ALL]
