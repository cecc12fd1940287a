"""Trace loaders: the NAB and NASA formats with their quirks, generic CSV, and malformed input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automation.forecasting import TraceFormatError, load_trace, mark_zero_outages, trace_from_series

DATA = Path(__file__).resolve().parent / "data"
# Rows 38,000-44,012 of the NASA trace, `minute_index` as in the full file (see tests/data/README.md).
NASA = DATA / "nasa-http" / "requests_per_minute_rows_38000-44012.csv"
NAB = DATA / "nab"


def test_nasa_jump_becomes_a_gap_and_the_outage_is_missing() -> None:
    trace = load_trace(NASA)
    assert trace.step == pd.Timedelta(minutes=1)
    load = trace.load
    # the first row keeps its place in the July log: minute 38,000 after 1995-07-01 00:00
    assert load.index[0] == pd.Timestamp("1995-07-01 00:00") + pd.Timedelta(minutes=38_000)
    # row 39,692 is the last July minute, row 39,693 is 1995-08-01 00:00: three and a half days of nothing
    assert load[pd.Timestamp("1995-07-28 13:32")] == 72
    assert load[pd.Timestamp("1995-08-01 00:00")] == 39
    gap = load[pd.Timestamp("1995-07-28 13:33") : pd.Timestamp("1995-07-31 23:59")]
    assert len(gap) == 4947 and gap.isna().all()
    # rows 40,585-42,847 are zeros of a down server: missing, not quiet
    outage = trace.outage[trace.outage]
    assert len(outage) == 42_847 - 40_585 + 1
    assert outage.index[0] == pd.Timestamp("1995-08-01 14:52")
    assert load[outage.index].isna().all()
    assert load[pd.Timestamp("1995-08-01 14:51")] == 1  # the minute before the outage is data
    assert load[pd.Timestamp("1995-08-03 04:35")] == 6
    assert load[pd.Timestamp("1995-08-03 04:37")] == 0  # a lone zero after the outage stays data
    # the last row, 44,012, is minute 4,319 of the August log
    assert load.index[-1] == pd.Timestamp("1995-08-03 23:59")
    assert any("outage" in note for note in trace.notes) and any("gap" in note for note in trace.notes)


def test_nab_traces_load_on_their_own_grid() -> None:
    taxi = load_trace(NAB / "realKnownCause" / "nyc_taxi.csv")
    assert taxi.step == pd.Timedelta(minutes=30)
    assert len(taxi.load) == 48 * 21 and taxi.load.notna().all()  # the three weeks kept in tests/data
    assert taxi.load.iloc[0] == 10_844
    asg = load_trace(NAB / "realKnownCause" / "cpu_utilization_asg_misconfiguration.csv")
    assert asg.step == pd.Timedelta(minutes=5) and len(asg.load) == 288 * 6  # the six days kept
    assert asg.load.index[0] == pd.Timestamp("2014-05-14 01:14")


def test_irregular_traffic_trace_is_resampled_and_says_so() -> None:
    trace = load_trace(NAB / "realTraffic" / "speed_6005.csv", interval=pd.Timedelta(minutes=10))
    assert trace.step == pd.Timedelta(minutes=10)
    assert (np.diff(trace.load.index.asi8) == pd.Timedelta(minutes=10).value).all()
    assert any("irregular timestamps" in note for note in trace.notes)


def test_generic_csv_epoch_iso_index_and_untimed(tmp_path: Path) -> None:
    epoch = tmp_path / "epoch.csv"
    epoch.write_text("ts,cpu\n1700000000,1\n1700000300,2\n1700000600,3\n1700001200,5\n")
    trace = load_trace(epoch)
    assert trace.step == pd.Timedelta(minutes=5)
    assert trace.load.index[0] == pd.Timestamp("2023-11-14 22:13:20")
    assert (
        trace.load.tolist()[:3] == [1.0, 2.0, 3.0]
        and np.isnan(trace.load.iloc[3])
        and trace.load.iloc[4] == 5.0
    )

    iso = tmp_path / "iso.csv"
    iso.write_text("time,a,b\n2024-01-01T00:00:00Z,1,10\n2024-01-01T00:01:00Z,2,20\n")
    assert load_trace(iso, column="b").load.tolist() == [10.0, 20.0]

    indexed = tmp_path / "indexed.csv"
    indexed.write_text("index,requests\n0,5\n1,6\n3,8\n")
    trace = load_trace(indexed, interval=pd.Timedelta(minutes=5))
    assert len(trace.load) == 4 and np.isnan(trace.load.iloc[2])

    untimed = tmp_path / "untimed.csv"
    untimed.write_text("requests\n5\n\n6\n7\n")
    trace = load_trace(untimed, interval=pd.Timedelta(minutes=5))
    assert trace.load.tolist() == [5.0, 6.0, 7.0]
    assert any("no calendar" in note for note in trace.notes)


@pytest.mark.parametrize(
    ("content", "line", "column", "words"),
    [
        (
            "timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:05,abc\n",
            3,
            "value",
            "expected a finite number",
        ),
        ("timestamp,value\n2024-01-01 00:00,1\nyesterday,2\n", 3, "timestamp", "ISO timestamp"),
        ("timestamp,value\n2024-01-01 00:00,1,7\n", 2, None, "expected 2 fields"),
        ("timestamp,value\n2024-01-01 00:00,inf\n", 2, "value", "finite"),
    ],
)
def test_malformed_input_names_file_line_and_column(
    tmp_path: Path, content: str, line: int, column: str | None, words: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(TraceFormatError) as caught:
        load_trace(path)
    error = caught.value
    assert (error.line, error.column) == (line, column)
    assert words in str(error) and "bad.csv" in str(error) and f"line {line}" in str(error)


def test_rows_back_in_time_are_sorted_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "clock.csv"
    path.write_text("timestamp,value\n2024-01-01 00:00,1\n2024-01-01 00:10,3\n2024-01-01 00:05,2\n")
    trace = load_trace(path)
    assert trace.load.tolist() == [1.0, 2.0, 3.0]
    assert any("back in time 1 time(s), first at line 4" in note for note in trace.notes)


def test_missing_interval_and_unknown_column_are_errors(tmp_path: Path) -> None:
    single = tmp_path / "single.csv"
    single.write_text("a\n1\n")
    with pytest.raises(TraceFormatError, match="--interval"):
        load_trace(single)
    path = tmp_path / "untimed.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(TraceFormatError, match="no such column"):
        load_trace(path, column="c", interval=pd.Timedelta(minutes=1))
    with pytest.raises(TraceFormatError, match="several value columns"):
        load_trace(path, interval=pd.Timedelta(minutes=1))
    with pytest.raises(TraceFormatError, match="cannot open"):
        load_trace(tmp_path / "absent.csv")


def test_zero_runs_become_outages_only_when_long() -> None:
    load = pd.Series([5.0, 0, 0, 4, 0, 0, 0, 0, 3], index=pd.date_range("2024-01-01", periods=9, freq="1min"))
    assert mark_zero_outages(load, min_steps=3).tolist() == [False] * 4 + [True] * 4 + [False]


def test_in_memory_series_is_regularised() -> None:
    index = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 00:05", "2024-01-01 00:15"])
    trace = trace_from_series(pd.Series([1.0, 2.0, 3.0], index=index), step=pd.Timedelta(minutes=5))
    assert len(trace.load) == 4 and np.isnan(trace.load.iloc[2])
