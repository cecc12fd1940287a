"""Pushed metrics: the text exposition format and JSON read into samples, each bad input named."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest

from automation.alerting.exposition import (
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_SAMPLES,
    PushedSample,
    parse_json,
    parse_pushed,
    parse_text,
)
from automation.errors import InvalidFieldsError

NOW = 1_795_946_400.0  # 2026-11-29T10:00:00Z


def refused(parse, document) -> list[tuple[str, str]]:
    with pytest.raises(InvalidFieldsError) as error:
        parse(document, now=NOW)
    return error.value.errors


# -- the text format -----------------------------------------------------------------------------------


def test_text_with_and_without_timestamps_help_type_and_comments():
    text = (
        "# HELP cpu_usage CPU use in percent, with a \\\\ and a \\n in its help.\n"
        "# TYPE cpu_usage gauge\n"
        "# a plain comment: anything goes { here\n"
        "\n"
        'cpu_usage{host="db-1",region="eu"} 91.5 1795946395000\n'
        'cpu_usage{host="db-2"} 12\n'
        "  uptime_seconds   3e3  \r\n"
        "jobs:done:rate5m -0.25 1795946399999\n"
    )
    assert parse_text(text, now=NOW) == [
        PushedSample("cpu_usage", {"host": "db-1", "region": "eu"}, 91.5, NOW - 5),
        PushedSample("cpu_usage", {"host": "db-2"}, 12.0, NOW),
        PushedSample("uptime_seconds", {}, 3000.0, NOW),
        PushedSample("jobs:done:rate5m", {}, -0.25, NOW - 0.001),
    ]


def test_label_values_with_escapes_commas_braces_and_blanks():
    text = (
        'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",'
        'error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9\n'
        'odd{ a = "x, }{ =y" , b="é 😀",} 1\n'
        "empty{} 2\n"
        'tabbed{a="1"}\t3\n'
    )
    assert parse_text(text, now=NOW) == [
        PushedSample(
            "msdos_file_access_time_seconds",
            {"path": "C:\\DIR\\FILE.TXT", "error": 'Cannot find file:\n"FILE.TXT"'},
            1458255915.0,
            NOW,
        ),
        PushedSample("odd", {"a": "x, }{ =y", "b": "é 😀"}, 1.0, NOW),
        PushedSample("empty", {}, 2.0, NOW),
        PushedSample("tabbed", {"a": "1"}, 3.0, NOW),
    ]


def test_histograms_summaries_and_counters_are_flattened_as_prometheus_names_them():
    registry = CollectorRegistry()
    latency = Histogram("req_seconds", "latency", ["route"], buckets=(0.1, 1.0), registry=registry)
    latency.labels(route="/a").observe(0.05)
    latency.labels(route="/a").observe(0.5)
    size = Summary("req_bytes", "size", registry=registry)
    size.observe(100)
    size.observe(300)
    Counter("jobs", "jobs done", registry=registry).inc(4)
    Gauge("temperature", "temperature", registry=registry).set(-3.5)

    found = {
        (s.metric, tuple(sorted(s.labels.items()))): s.value
        for s in parse_text(generate_latest(registry).decode(), now=NOW)
    }
    assert found[("req_seconds_bucket", (("le", "0.1"), ("route", "/a")))] == 1
    assert found[("req_seconds_bucket", (("le", "1.0"), ("route", "/a")))] == 2
    assert found[("req_seconds_bucket", (("le", "+Inf"), ("route", "/a")))] == 2
    assert found[("req_seconds_count", (("route", "/a"),))] == 2
    assert found[("req_seconds_sum", (("route", "/a"),))] == pytest.approx(0.55)
    assert found[("req_bytes_count", ())] == 2
    assert found[("req_bytes_sum", ())] == 400
    assert found[("jobs_total", ())] == 4
    assert found[("temperature", ())] == -3.5


def test_a_nan_sample_is_skipped_as_the_formats_no_value():
    text = 'rpc_seconds{quantile="0.5"} NaN\nrpc_seconds_count 0\n'
    assert parse_text(text, now=NOW) == [PushedSample("rpc_seconds_count", {}, 0.0, NOW)]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1cpu 2", "starts with a metric name"),
        ("cpu-usage 2", "'-' cannot follow the metric name cpu"),
        ("cpu", "no value after cpu"),
        ('cpu{host="a"}', "no value after cpu"),
        ("cpu 1_000", "value '1_000' is not a number"),
        ("cpu abc", "value 'abc' is not a number"),
        ("cpu +Inf", "value +Inf is not finite"),
        ("cpu -Inf", "value -Inf is not finite"),
        ("cpu 1 2 3", "unexpected text after the timestamp: '3'"),
        ('cpu 1 # {trace_id="x"} 2', "unexpected text after the timestamp"),
        ("cpu 1 1.5", "timestamp '1.5' is not an integer number of milliseconds"),
        ("cpu 1 -1000", "timestamp -1000: before 1970"),
        ("cpu 1 1795947400000", "timestamp 1795947400000: 1000 s ahead of the server's clock"),
        ('cpu{host="a" 1', "column 14: expected ',' or '}' after the value of host"),
        ("cpu{host=a} 1", "column 10: expected '\"' to open the value of host"),
        ('cpu{host:x="a"} 1', "column 9: expected '=' after label name host"),
        ('cpu{"host"="a"} 1', "column 5: expected a label name or '}'"),
        ('cpu{host="a} 1', "the value of label host is not closed by a quote"),
        ('cpu{host="a\\tb"} 1', "column 12: invalid escape \\t in the value of host"),
        ('cpu{host="a",host="b"} 1', "label host given twice"),
        ('cpu{__name__="x"} 1', "label __name__: names starting with __ are reserved"),
        ("# TYPE cpu meter", "type 'meter' of cpu is not one of counter, gauge, histogram, summary, untyped"),
        ("# TYPE 9cpu gauge", "'9cpu' is not a metric name"),
        ("# HELP", "HELP line without a metric name"),
    ],
)
def test_each_bad_line_is_named_with_its_reason(line, reason):
    text = "# HELP ok fine\nok 1\n" + line + "\n"
    [(place, why)] = refused(parse_text, text)
    assert place == "line 3"
    assert reason in why


def test_a_second_type_line_for_a_metric_is_refused():
    assert refused(parse_text, "# TYPE a gauge\n# TYPE a counter\n") == [("line 2", "second TYPE line for a")]


def test_every_bad_line_is_listed_up_to_a_bound():
    errors = refused(parse_text, "ok 1\n" + "bad\n" * 30)
    assert [place for place, _ in errors[:3]] == ["line 2", "line 3", "line 4"]
    assert len(errors) == 21
    assert errors[-1] == ("errors", "10 more not listed")


def test_text_bounds_on_labels_names_and_sample_count():
    many = ",".join(f'l{i}="v"' for i in range(MAX_LABELS + 1))
    long_value = "x" * (MAX_LABEL_VALUE_LENGTH + 1)
    long_name = "m" * 201
    errors = refused(parse_text, f'a{{{many}}} 1\nb{{l="{long_value}"}} 1\n{long_name} 1\n')
    assert errors == [
        ("line 1", f"more than {MAX_LABELS} labels"),
        ("line 2", f"label l: value is {MAX_LABEL_VALUE_LENGTH + 1} characters long; at most 1024"),
        ("line 3", "metric name is 201 characters long; at most 200"),
    ]
    assert len(parse_text("m 1\n" * MAX_SAMPLES, now=NOW)) == MAX_SAMPLES
    assert refused(parse_text, "# c\n" + "m 1\n" * (MAX_SAMPLES + 1)) == [
        (f"line {MAX_SAMPLES + 2}", f"more than {MAX_SAMPLES} samples in one request")
    ]


# -- JSON ----------------------------------------------------------------------------------------------


def test_json_samples_with_and_without_timestamps():
    document = {
        "samples": [
            {
                "metric": "cpu_usage",
                "labels": {"host": "db-1"},
                "value": 91.5,
                "timestamp": "2026-11-29T10:00:00Z",
            },
            {"metric": "cpu_usage", "labels": {"host": "db-2"}, "value": 12, "timestamp": 1795946390.5},
            {"metric": "cpu_usage", "value": 3, "timestamp": "2026-11-29T11:59:00+02:00"},
            {"metric": "queue:depth", "value": -1e3},
        ]
    }
    expected = [
        PushedSample("cpu_usage", {"host": "db-1"}, 91.5, NOW),
        PushedSample("cpu_usage", {"host": "db-2"}, 12.0, NOW - 9.5),
        PushedSample("cpu_usage", {}, 3.0, NOW - 60),
        PushedSample("queue:depth", {}, -1000.0, NOW),
    ]
    assert parse_json(document, now=NOW) == expected
    assert parse_json(json.dumps(document), now=NOW) == expected
    assert parse_json(json.dumps(document).encode(), now=NOW) == expected


@pytest.mark.parametrize(
    ("sample", "field", "reason"),
    [
        ({"value": 1}, "samples[1].metric", "required: a metric name"),
        ({"metric": "cpu usage", "value": 1}, "samples[1].metric", "is not a metric name"),
        ({"metric": "cpu"}, "samples[1].value", "required: a number"),
        ({"metric": "cpu", "value": "91.5"}, "samples[1].value", "required: a number"),
        ({"metric": "cpu", "value": True}, "samples[1].value", "required: a number"),
        ({"metric": "cpu", "value": float("nan")}, "samples[1].value", "must be a finite number"),
        ({"metric": "cpu", "value": float("inf")}, "samples[1].value", "must be a finite number"),
        ({"metric": "cpu", "value": 10**400}, "samples[1].value", "must be a finite number"),
        ({"metric": "cpu", "value": 1, "labels": ["a"]}, "samples[1].labels", "must be an object"),
        ({"metric": "cpu", "value": 1, "labels": {"host": 1}}, "samples[1].labels.host", "must be a string"),
        (
            {"metric": "cpu", "value": 1, "labels": {"ho-st": "a"}},
            "samples[1].labels.ho-st",
            "not a label name",
        ),
        ({"metric": "cpu", "value": 1, "labels": {"__x": "a"}}, "samples[1].labels.__x", "reserved"),
        (
            {"metric": "cpu", "value": 1, "timestamp": "yesterday"},
            "samples[1].timestamp",
            "not an RFC 3339 time",
        ),
        (
            {"metric": "cpu", "value": 1, "timestamp": "2026-11-29T10:00:00"},
            "samples[1].timestamp",
            "no time zone",
        ),
        ({"metric": "cpu", "value": 1, "timestamp": [1]}, "samples[1].timestamp", "epoch seconds (a number)"),
        ({"metric": "cpu", "value": 1, "timestamp": NOW * 1000}, "samples[1].timestamp", "not milliseconds?"),
        ({"metric": "cpu", "value": 1, "timestamp": -5}, "samples[1].timestamp", "before 1970"),
        ({"metric": "cpu", "value": 1, "unit": "%"}, "samples[1].unit", "unknown field"),
        ("cpu 1", "samples[1]", "must be an object"),
    ],
)
def test_each_bad_json_field_is_named(sample, field, reason):
    document = {"samples": [{"metric": "ok", "value": 1}, sample]}
    [(place, why)] = refused(parse_json, document)
    assert place == field
    assert reason in why


def test_json_documents_that_are_not_sample_lists():
    assert refused(parse_json, b"{not json") == [
        ("body", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")
    ]
    assert refused(parse_json, "[1, 2]") == [("body", 'must be an object: {"samples": [...]}')]
    assert refused(parse_json, {"sample": []}) == [
        ("sample", "unknown field (known: samples)"),
        ("samples", "required: a list of samples"),
    ]
    assert refused(parse_json, {"samples": [{"metric": "m", "value": 1}] * (MAX_SAMPLES + 1)}) == [
        ("samples", f"{MAX_SAMPLES + 1} samples; at most {MAX_SAMPLES} in one request")
    ]
    assert parse_json({"samples": []}, now=NOW) == []


def test_json_label_bounds():
    labels = {f"l{i}": "v" for i in range(MAX_LABELS + 1)}
    errors = refused(parse_json, {"samples": [{"metric": "m", "value": 1, "labels": labels}]})
    assert errors == [(f"samples[0].labels.l{MAX_LABELS}", f"more than {MAX_LABELS} labels")]


# -- by content type -----------------------------------------------------------------------------------


def test_a_body_is_read_by_its_content_type():
    assert parse_pushed(b"m 1\n", "text/plain; version=0.0.4; charset=utf-8", now=NOW) == [
        PushedSample("m", {}, 1.0, NOW)
    ]
    assert parse_pushed(b'{"samples": [{"metric": "m", "value": 2}]}', "application/json", now=NOW) == [
        PushedSample("m", {}, 2.0, NOW)
    ]
    assert refused(lambda body, now: parse_pushed(body, "text/plain", now=now), b"m 1\n\xff") == [
        ("body", "not UTF-8 text (byte 4)")
    ]
    assert refused(lambda body, now: parse_pushed(body, "application/x-protobuf", now=now), b"") == [
        (
            "Content-Type",
            "'application/x-protobuf' is not text/plain (the exposition format) or application/json",
        )
    ]
