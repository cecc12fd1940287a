"""Leave-one-trace-out choice of the hybrid policy's defaults: each candidate configuration is scored on
every trace by its frontier against the reactive (HPA) one; for each held-out trace the configuration
with the best mean score on the OTHER traces is chosen, and the held-out trace's own figure is read at
that configuration only. Pure: the scores in, the choices out (the sweeps that produce the scores are
in `comparison` and `benchmarks/bench_scaling_loo.py`).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from automation.forecasting.durations import format_duration, parse_duration
from automation.forecasting.errors import ForecastConfigError
from automation.scaling.comparison import FrontierComparison
from automation.scaling.policies import HYBRID_QUANTILE, TrustSettings

RATIO_FLOOR = 0.05  # a policy point with no under-provisioned minute scores as 0.05x, not log(0)
HARM_WEIGHT = 2.0  # a matched point worse than reactive costs twice its log-ratio


@dataclass(frozen=True, kw_only=True)
class HybridConfig:
    """The hybrid's defaults under test: the forecast quantile it provisions for, how far ahead it reads
    the forecast, how strictly its forecast must have earned trust (`TrustSettings.z`), and whether it
    first judges that forecasting can help the load at all (`TrustSettings.forecastability`)."""

    quantile: float = HYBRID_QUANTILE
    lead_time: pd.Timedelta = pd.Timedelta(minutes=10)
    trust_z: float = 1.64
    forecastability: bool = True

    def __post_init__(self) -> None:
        if not 0.5 <= self.quantile < 1:
            raise ForecastConfigError("quantile", "must be in [0.5, 1)")
        if self.lead_time <= pd.Timedelta(0):
            raise ForecastConfigError("lead_time", "must be positive")
        TrustSettings(z=self.trust_z)  # the same bounds as the policy's

    @property
    def label(self) -> str:
        label = f"q{self.quantile:g} lead {format_duration(self.lead_time)} z{self.trust_z:g}"
        return label if self.forecastability else f"{label} ungated"

    def trust(self) -> TrustSettings:
        return TrustSettings(z=self.trust_z, forecastability=self.forecastability)

    @staticmethod
    def from_dict(stored: Mapping[str, object]) -> HybridConfig:
        """A configuration as `to_dict` wrote it; one written before the forecastability gate existed had
        no gate."""
        return HybridConfig(
            quantile=float(str(stored["quantile"])),
            lead_time=parse_duration(str(stored["lead_time"])),
            trust_z=float(str(stored["trust_z"])),
            forecastability=bool(stored.get("forecastability", False)),
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "quantile": self.quantile,
            "lead_time": format_duration(self.lead_time),
            "trust_z": self.trust_z,
            "forecastability": self.forecastability,
        }


def frontier_loss(
    comparison: FrontierComparison, *, floor: float = RATIO_FLOOR, harm_weight: float = HARM_WEIGHT
) -> float | None:
    """How a configuration did on one trace, lower is better: the log of its median matched ratio plus
    `harm_weight` times the log of its worst ratio when that is above 1 (worse than reactive). A reactive
    point no policy point is as cheap as counts as 1 (the user keeps reactive there). Ratios below
    `floor` count as `floor`. None when reactive never under-provisions (nothing to learn from)."""
    if not comparison.matches:
        return None
    ratios = [max(m.ratio, floor) if m.matched else 1.0 for m in comparison.matches]
    matched = [max(m.ratio, floor) for m in comparison.matches if m.matched]
    worst = max(matched) if matched else 1.0
    return math.log(statistics.median(ratios)) + harm_weight * max(0.0, math.log(worst))


def harms(comparison: FrontierComparison) -> bool:
    """Whether a configuration is worse than reactive at some matched point of one trace (the issue's "no
    trace worse than 1.0x at any matched point")."""
    return any(m.matched and m.ratio > 1.0 + 1e-9 for m in comparison.matches)


def mean_loss(losses: Mapping[str, Mapping[str, float | None]], config: str, traces: Sequence[str]) -> float:
    """The mean loss of `config` over `traces` (NaN when none has a score)."""
    scores = [losses[trace][config] for trace in traces]
    known = [s for s in scores if s is not None]
    return float(statistics.fmean(known)) if known else math.nan


Harms = Mapping[str, Mapping[str, bool]]


def choose(
    losses: Mapping[str, Mapping[str, float | None]],
    configs: Sequence[str],
    traces: Sequence[str],
    *,
    harmed: Harms | None = None,
) -> str:
    """The configuration worse than reactive on the fewest of `traces` (`harms`, when `harmed` is given),
    then with the lowest mean loss over them; ties (and no score at all) go to the earlier one in
    `configs` (list the current defaults first)."""
    if not configs:
        raise ForecastConfigError("configs", "at least one configuration is needed")
    best, best_key = configs[0], (math.inf, math.inf)
    for config in configs:
        loss = mean_loss(losses, config, traces)
        if math.isnan(loss):
            continue
        harm = sum(harmed[t][config] for t in traces) if harmed is not None else 0
        key = (float(harm), loss)
        if key[0] < best_key[0] or (key[0] == best_key[0] and loss < best_key[1] - 1e-12):
            best, best_key = config, key
    return best


def leave_one_out(
    losses: Mapping[str, Mapping[str, float | None]], configs: Sequence[str], *, harmed: Harms | None = None
) -> dict[str, str]:
    """For each trace, the configuration chosen on all the others (never on itself)."""
    traces = list(losses)
    return {
        held: choose(losses, configs, [t for t in traces if t != held], harmed=harmed) for held in traces
    }


def overall_choice(
    choices: Mapping[str, str],
    losses: Mapping[str, Mapping[str, float | None]],
    configs: Sequence[str],
    *,
    harmed: Harms | None = None,
) -> str:
    """The configuration chosen in most folds; ties go as `choose` over all traces, then to the earlier
    in `configs`."""
    if not choices:
        return choose(losses, configs, list(losses), harmed=harmed)
    counts = Counter(choices.values())
    top = max(counts.values())
    tied = [c for c in configs if counts.get(c, 0) == top]
    return choose(losses, tied, list(losses), harmed=harmed)
