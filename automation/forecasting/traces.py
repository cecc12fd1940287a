"""Load traces (NAB `timestamp,value`, NASA `minute_index,requests`, generic CSV) onto a regular time grid.

Malformed input raises `TraceFormatError` naming the file, line and column; quirks are reported in `notes`.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from automation.forecasting.durations import format_duration
from automation.forecasting.errors import TraceFormatError

TIME_COLUMN_NAMES = ("timestamp", "time", "datetime", "date", "ts", "epoch")
INDEX_COLUMN_NAMES = ("minute_index", "index", "step", "minute", "row")
SYNTHETIC_START = pd.Timestamp("1970-01-01")

# The NASA KSC trace (ITA archive) is two monthly logs glued together: its `minute_index` runs on without
# a break, but the July log ends on 1995-07-28 13:32 and row 39,693 is 1995-08-01 00:00.
NASA_HEADER = ("minute_index", "requests")
NASA_SEGMENTS = ((0, pd.Timestamp("1995-07-01 00:00")), (39_693, pd.Timestamp("1995-08-01 00:00")))
NASA_OUTAGE_MIN_DURATION = pd.Timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class Trace:
    """A load series on a regular grid: NaN where nothing is known (gaps without rows, outages)."""

    name: str
    load: pd.Series
    step: pd.Timedelta
    outage: pd.Series
    source_format: str
    notes: tuple[str, ...] = field(default=())

    @property
    def known(self) -> pd.Series:
        return self.load.notna()

    def slice(self, start: int, stop: int) -> Trace:
        """Rows [start, stop) of the grid, keeping notes; for tests and quick runs."""
        return Trace(
            name=self.name,
            load=self.load.iloc[start:stop],
            step=self.step,
            outage=self.outage.iloc[start:stop],
            source_format=self.source_format,
            notes=self.notes,
        )


def load_trace(
    path: str | Path,
    *,
    column: str | None = None,
    interval: pd.Timedelta | None = None,
    zero_outage: pd.Timedelta | None = None,
) -> Trace:
    """Read a CSV trace; the time axis comes from a timestamp column (ISO or epoch seconds), an index
    column times `interval`, or row order times `interval` when there is no time column at all.

    Runs of zeros lasting at least `zero_outage` are marked as outages (missing, not quiet); NASA traces
    get this with one hour by default.
    """
    path = Path(path)
    header, rows = _read_rows(path)
    lowered = tuple(name.strip().lower() for name in header)
    if lowered == NASA_HEADER and column in (None, "requests"):
        return _load_nasa(path, rows, zero_outage=zero_outage or NASA_OUTAGE_MIN_DURATION)
    time_index = next((i for i, name in enumerate(lowered) if name in TIME_COLUMN_NAMES), None)
    index_index = next((i for i, name in enumerate(lowered) if name in INDEX_COLUMN_NAMES), None)
    value_index = _value_column(path, header, column, skip={time_index, index_index})
    values = _parse_numbers(path, rows, value_index, header[value_index], allow_missing=True)
    notes: list[str] = []
    if time_index is not None:
        times = _parse_times(path, rows, time_index, header[time_index])
        times, values = _order_in_time(rows, times, values, notes)
        load, step, grid_notes = _regularise(times, values, interval)
        notes += grid_notes
        source_format = "timestamped"
    else:
        if interval is None:
            what = f"index column {header[index_index]!r}" if index_index is not None else "no time column"
            raise TraceFormatError(
                path, None, None, f"{what}: pass --interval (e.g. 5m) to place rows in time"
            )
        if index_index is not None:
            positions = _parse_numbers(path, rows, index_index, header[index_index], allow_missing=False)
            _check_integral_increasing(path, positions, header[index_index])
            times = SYNTHETIC_START + pd.to_timedelta(positions * interval.total_seconds(), unit="s")
            load, step, grid_notes = _regularise(pd.DatetimeIndex(times), values, interval)
            notes += grid_notes
            source_format = "indexed"
        else:
            step = interval
            load = pd.Series(values, index=pd.date_range(SYNTHETIC_START, periods=len(values), freq=step))
            source_format = "untimed"
        notes.append(
            f"no calendar in the file: times start at {SYNTHETIC_START:%Y-%m-%d} (weekday is arbitrary)"
        )
    outage = _outage_mask(load, zero_outage, step, notes)
    load = load.mask(outage)
    notes += _describe_missing(load, outage, step)
    return Trace(
        name=path.stem, load=load, step=step, outage=outage, source_format=source_format, notes=tuple(notes)
    )


@dataclass(frozen=True, kw_only=True)
class Points:
    """A trace's rows as recorded, in file order: no grid, no merging (what an alerting backtest replays
    and what NAB scores row by row). `times` may repeat or go back where the file does (see `notes`)."""

    name: str
    column: str
    times: pd.DatetimeIndex
    values: np.ndarray
    notes: tuple[str, ...] = field(default=())


def load_points(
    path: str | Path, *, column: str | None = None, interval: pd.Timedelta | None = None
) -> Points:
    """Read a CSV trace's rows with their own times (a timestamp column, ISO or epoch seconds). A file
    without one (NASA's `minute_index`, an index column, bare values) is placed in time by `load_trace`
    (`interval` as there) and its known grid slots are the rows."""
    path = Path(path)
    header, rows = _read_rows(path)
    lowered = tuple(name.strip().lower() for name in header)
    time_index = next((i for i, name in enumerate(lowered) if name in TIME_COLUMN_NAMES), None)
    index_index = next((i for i, name in enumerate(lowered) if name in INDEX_COLUMN_NAMES), None)
    value_index = _value_column(path, header, column, skip={time_index, index_index})
    if time_index is None:
        trace = load_trace(path, column=column, interval=interval)
        known = trace.load.dropna()
        return Points(
            name=trace.name,
            column=header[value_index],
            times=pd.DatetimeIndex(known.index),
            values=known.to_numpy(dtype=float),
            notes=trace.notes,
        )
    values = _parse_numbers(path, rows, value_index, header[value_index], allow_missing=True)
    times = _parse_times(path, rows, time_index, header[time_index])
    notes: list[str] = []
    steps = np.diff(times.asi8)
    backwards = np.flatnonzero(steps < 0)
    if len(backwards):
        first_line, _ = rows[int(backwards[0]) + 1]
        notes.append(f"timestamps go back in time {len(backwards)} time(s), first at line {first_line}")
    if (steps == 0).any():
        notes.append(f"{int((steps == 0).sum())} row(s) repeat the previous row's timestamp")
    return Points(name=path.stem, column=header[value_index], times=times, values=values, notes=tuple(notes))


def trace_from_series(
    values: Sequence[float] | np.ndarray | pd.Series, *, step: pd.Timedelta, name: str = "series"
) -> Trace:
    """Wrap in-memory values (a Series with a DatetimeIndex is regularised; other inputs are given times)."""
    if isinstance(values, pd.Series) and isinstance(values.index, pd.DatetimeIndex):
        load, step, notes = _regularise(values.index, values.to_numpy(dtype=float), step)
    else:
        array = np.asarray(values, dtype=float)
        load = pd.Series(array, index=pd.date_range(SYNTHETIC_START, periods=len(array), freq=step))
        notes = []
    outage = pd.Series(False, index=load.index)
    return Trace(name=name, load=load, step=step, outage=outage, source_format="memory", notes=tuple(notes))


def mark_zero_outages(load: pd.Series, *, min_steps: int) -> pd.Series:
    """True on runs of exact zeros at least `min_steps` long: a down server, not a quiet period."""
    values = load.to_numpy(dtype=float)
    zero = values == 0
    mask = np.zeros(len(values), dtype=bool)
    start = None
    for i, is_zero in enumerate(np.append(zero, False)):
        if is_zero and start is None:
            start = i
        elif not is_zero and start is not None:
            if i - start >= min_steps:
                mask[start:i] = True
            start = None
    return pd.Series(mask, index=load.index)


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise TraceFormatError(path, None, None, f"cannot open: {exc.strerror or exc}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            if header is None or not any(cell.strip() for cell in header):
                raise TraceFormatError(path, 1, None, "empty file: expected a header line")
            header = [cell.strip() for cell in header]
            rows = []
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise TraceFormatError(
                        path,
                        reader.line_num,
                        None,
                        f"expected {len(header)} fields like the header, got {len(row)}",
                    )
                rows.append((reader.line_num, row))
        except UnicodeDecodeError as exc:
            raise TraceFormatError(path, None, None, f"not UTF-8 text: {exc.reason}") from exc
        except csv.Error as exc:
            raise TraceFormatError(path, reader.line_num, None, f"CSV syntax: {exc}") from exc
    if not rows:
        raise TraceFormatError(path, 2, None, "no data rows after the header")
    return header, rows


def _value_column(path: Path, header: list[str], column: str | None, *, skip: set[int | None]) -> int:
    if column is not None:
        if column not in header:
            raise TraceFormatError(path, 1, column, f"no such column; the header has {', '.join(header)}")
        return header.index(column)
    candidates = [i for i in range(len(header)) if i not in skip]
    if len(candidates) == 1:
        return candidates[0]
    for preferred in ("value", "requests", "load"):
        for i in candidates:
            if header[i].lower() == preferred:
                return i
    if not candidates:
        raise TraceFormatError(path, 1, None, "no value column besides the time column")
    names = ", ".join(header[i] for i in candidates)
    raise TraceFormatError(path, 1, None, f"several value columns ({names}): choose one with --column")


def _parse_numbers(
    path: Path, rows: list[tuple[int, list[str]]], index: int, name: str, *, allow_missing: bool
) -> np.ndarray:
    cells = [row[index].strip() for _, row in rows]
    values = pd.to_numeric(pd.Series(cells, dtype=object), errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if allow_missing:
        blank = np.array([cell == "" or cell.lower() in ("nan", "na", "null") for cell in cells])
        bad &= ~blank
    if bad.any():
        position = int(np.flatnonzero(bad)[0])
        line, _ = rows[position]
        raise TraceFormatError(path, line, name, f"expected a finite number, got {cells[position]!r}")
    return np.asarray(values)


def _parse_times(path: Path, rows: list[tuple[int, list[str]]], index: int, name: str) -> pd.DatetimeIndex:
    cells = pd.Series([row[index].strip() for _, row in rows], dtype=object)
    numeric = pd.to_numeric(cells, errors="coerce")
    if numeric.notna().all():
        times = pd.to_datetime(numeric.to_numpy(dtype=float), unit="s")
    else:
        parsed = pd.to_datetime(cells, errors="coerce", format="ISO8601", utc=True)
        if parsed.isna().any():
            position = int(np.flatnonzero(parsed.isna().to_numpy())[0])
            line, _ = rows[position]
            raise TraceFormatError(
                path, line, name, f"expected an ISO timestamp or epoch seconds, got {cells.iloc[position]!r}"
            )
        times = pd.DatetimeIndex(parsed).tz_convert(None)
    return pd.DatetimeIndex(times).as_unit("ns")


def _order_in_time(
    rows: list[tuple[int, list[str]]], times: pd.DatetimeIndex, values: np.ndarray, notes: list[str]
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Rows that go back in time (a clock reset, a repeated hour) are sorted in, and the note says where."""
    backwards = np.flatnonzero(np.diff(times.asi8) < 0)
    if not len(backwards):
        return times, values
    first_line, _ = rows[int(backwards[0]) + 1]
    notes.append(
        f"timestamps go back in time {len(backwards)} time(s), first at line {first_line}: rows sorted, "
        "repeated slots averaged"
    )
    order = np.argsort(times.asi8, kind="stable")
    return times[order], values[order]


def _check_integral_increasing(path: Path, positions: np.ndarray, name: str) -> None:
    steps = np.diff(positions)
    bad = np.flatnonzero((steps <= 0) | (positions[1:] != np.round(positions[1:])))
    if len(bad):
        raise TraceFormatError(path, int(bad[0]) + 3, name, "index must be whole numbers that increase")


def _regularise(
    times: pd.DatetimeIndex, values: np.ndarray, interval: pd.Timedelta | None
) -> tuple[pd.Series, pd.Timedelta, list[str]]:
    notes: list[str] = []
    deltas = np.diff(times.asi8)
    positive = deltas[deltas > 0]
    if interval is None:
        if len(positive) == 0:
            raise TraceFormatError(
                "<trace>", None, None, "cannot infer the sampling interval: pass --interval"
            )
        step = pd.Timedelta(int(np.median(positive)), unit="ns").round("s")
        if step <= pd.Timedelta(0):
            step = pd.Timedelta(seconds=1)
    else:
        step = interval
    start = times[0]
    slots = ((times - start) // step).to_numpy(dtype=np.int64)
    series = pd.Series(values, index=slots)
    per_slot = series.groupby(level=0).mean()
    grid = pd.date_range(start, periods=int(slots[-1]) + 1, freq=step)
    load = pd.Series(np.nan, index=grid)
    load.iloc[per_slot.index.to_numpy()] = per_slot.to_numpy()
    off_grid = int(np.count_nonzero((times - start) % step != pd.Timedelta(0)))
    merged = len(values) - len(per_slot)
    if off_grid or merged:
        notes.append(
            f"irregular timestamps: {off_grid} off the {format_duration(step)} grid, "
            f"{merged} rows merged into shared slots (mean per slot)"
        )
    return load, step, notes


def _outage_mask(
    load: pd.Series, zero_outage: pd.Timedelta | None, step: pd.Timedelta, notes: list[str]
) -> pd.Series:
    if zero_outage is None:
        return pd.Series(False, index=load.index)
    min_steps = max(1, math.ceil(zero_outage / step))
    mask = mark_zero_outages(load, min_steps=min_steps)
    for start, stop in _runs(mask.to_numpy()):
        notes.append(
            f"outage: {stop - start} zero readings from {load.index[start]} to {load.index[stop - 1]} "
            "treated as missing (a down server, not a quiet period)"
        )
    return mask


def _describe_missing(load: pd.Series, outage: pd.Series, step: pd.Timedelta) -> list[str]:
    runs = _runs((load.isna() & ~outage).to_numpy())
    if len(runs) > 5:
        longest = max(runs, key=lambda run: run[1] - run[0])
        missing = sum(stop - start for start, stop in runs)
        return [
            f"gaps: {len(runs)} spans without data ({missing} of {len(load)} slots), the longest "
            f"{format_duration(step * (longest[1] - longest[0]))} from {load.index[longest[0]]}; missing"
        ]
    notes = []
    for start, stop in runs:
        span = format_duration(step * (stop - start))
        notes.append(
            f"gap: no data from {load.index[start]} to {load.index[stop - 1]} ({span}), kept as missing"
        )
    return notes


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    padded = np.concatenate(([False], mask.astype(bool), [False]))
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _load_nasa(path: Path, rows: list[tuple[int, list[str]]], *, zero_outage: pd.Timedelta) -> Trace:
    positions = _parse_numbers(path, rows, 0, "minute_index", allow_missing=False)
    values = _parse_numbers(path, rows, 1, "requests", allow_missing=True)
    _check_integral_increasing(path, positions, "minute_index")
    offsets = np.empty(len(positions), dtype="datetime64[ns]")
    for number, (first_row, start) in enumerate(NASA_SEGMENTS):
        last_row = NASA_SEGMENTS[number + 1][0] if number + 1 < len(NASA_SEGMENTS) else math.inf
        inside = (positions >= first_row) & (positions < last_row)
        minutes = (positions[inside] - first_row).astype(np.int64)
        offsets[inside] = (start + pd.to_timedelta(minutes, unit="min")).to_numpy()
    step = pd.Timedelta(minutes=1)
    load, _, _ = _regularise(pd.DatetimeIndex(offsets), values, step)
    notes = [
        "NASA KSC calendar: rows before 39,693 start 1995-07-01 00:00, row 39,693 is 1995-08-01 00:00 "
        "(the July log ends 1995-07-28 13:32)"
    ]
    outage = _outage_mask(load, zero_outage, step, notes)
    load = load.mask(outage)
    notes += _describe_missing(load, outage, step)
    return Trace(
        name=path.stem, load=load, step=step, outage=outage, source_format="nasa-http", notes=tuple(notes)
    )
