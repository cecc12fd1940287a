"""PrometheusSource against the real Prometheus scraping a real exporter, and against loopback HTTP peers
that answer as a broken, slow or guarded Prometheus would."""

from __future__ import annotations

import base64
import math
import time
from urllib.parse import parse_qs

import pytest

from automation.alerting.series import Matcher, Selector
from automation.alerting.sources.prometheus import PrometheusSource
from automation.errors import ConfigurationError, SourceError
from tests.conftest import free_port, wait_for
from tests.peers import Answer, HttpPeer

PASSWORD = "s3cret-pw-do-not-show"
TOKEN = "tok-do-not-show"


def _vector(value: str = "1") -> dict:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"__name__": "up", "job": "x"}, "value": [1.0, value]}],
        },
    }


# -- against the real Prometheus -----------------------------------------------------------------------


def _scraped(prometheus_server, selector: str, count: int) -> None:
    """Wait until Prometheus holds at least `count` samples of every series of `selector`."""

    def enough() -> bool:
        result = prometheus_server.instant(f"count_over_time({selector}[5m])")
        return bool(result) and all(float(r["value"][1]) >= count for r in result)

    wait_for(enough, timeout=60)


def test_select_returns_the_exporters_samples_with_their_labels_and_times(exporter, prometheus_server):
    cpu = exporter.gauge("source_test_cpu_usage", ["host"])
    cpu.labels(host="a").set(91.5)
    cpu.labels(host="b").set(10)
    _scraped(prometheus_server, "source_test_cpu_usage", 4)
    end = time.time()

    def host(op, value):
        return Selector("source_test_cpu_usage", (Matcher("host", op, value),))

    with PrometheusSource(prometheus_server.url) as source:
        [series] = source.select(host("=", "a"), end - 120, end)
        by_regex = source.select(host("=~", "a|b"), end - 120, end)
        others = source.select(host("!=", "a"), end - 120, end)
        nothing = source.select(host("=", "c"), end - 120, end)

    assert series.metric == "source_test_cpu_usage"
    assert series.label_map == {"host": "a", "job": "exporter", "instance": exporter.target}
    assert len(series.samples) >= 4
    assert {s.value for s in series.samples} == {91.5}
    times = [s.at for s in series.samples]
    assert times == sorted(times)
    assert end - 120 <= times[0] and times[-1] <= end
    assert end - times[-1] < 10  # the newest scrape is recent: times are epoch seconds, not milliseconds
    assert all(0.5 < later - earlier < 5 for earlier, later in zip(times, times[1:], strict=False))
    assert sorted(s.label_map["host"] for s in by_regex) == ["a", "b"]
    assert [s.label_map["host"] for s in others] == ["b"]
    assert {s.value for s in others[0].samples} == {10.0}
    assert nothing == []


def test_select_includes_both_bounds_and_nothing_outside(exporter, prometheus_server):
    exporter.gauge("source_test_bounds").set(3)
    _scraped(prometheus_server, "source_test_bounds", 5)
    selector = Selector("source_test_bounds")
    with PrometheusSource(prometheus_server.url) as source:
        [everything] = source.select(selector, time.time() - 300, time.time())
        inner = everything.samples[1:-1]
        [cut] = source.select(selector, inner[0].at, inner[-1].at)
        assert source.select(selector, inner[-1].at, inner[0].at) == []

    assert cut.samples == inner


def test_select_sees_a_new_value_after_the_next_scrape(exporter, prometheus_server):
    load = exporter.gauge("source_test_load")
    load.set(1)
    _scraped(prometheus_server, "source_test_load", 1)
    load.set(2)
    with PrometheusSource(prometheus_server.url) as source:

        def newest() -> float:
            [series] = source.select(Selector("source_test_load"), time.time() - 60, time.time())
            return series.samples[-1].value

        wait_for(lambda: newest() == 2, timeout=30)


def test_query_and_query_range_run_promql(exporter, prometheus_server):
    depth = exporter.gauge("source_test_depth", ["queue"])
    depth.labels(queue="mail").set(5)
    depth.labels(queue="jobs").set(7)
    _scraped(prometheus_server, "source_test_depth", 3)
    now = time.time()
    with PrometheusSource(prometheus_server.url) as source:
        total = source.query("sum(source_test_depth)", now)
        each = source.query('source_test_depth{queue="mail"}', now)
        scalar = source.query("scalar(sum(source_test_depth)) * 2", now)
        start = now - 4
        [ranged] = source.query_range('source_test_depth{queue="jobs"}', start, now, 1)

    assert total == [({}, 12.0)]
    assert each == [
        (
            {
                "__name__": "source_test_depth",
                "queue": "mail",
                "job": "exporter",
                "instance": exporter.target,
            },
            5.0,
        )
    ]
    assert scalar == [({}, 24.0)]
    assert ranged.metric == "source_test_depth"
    assert ranged.label_map == {"queue": "jobs", "job": "exporter", "instance": exporter.target}
    assert {s.value for s in ranged.samples} == {7.0}
    assert [round(s.at - start, 3) for s in ranged.samples] == [0, 1, 2, 3, 4][-len(ranged.samples) :]
    assert len(ranged.samples) >= 2


def test_nan_and_infinite_values_come_back_as_floats(exporter, prometheus_server):
    odd = exporter.gauge("source_test_odd", ["kind"])
    odd.labels(kind="nan").set(math.nan)
    odd.labels(kind="inf").set(math.inf)
    odd.labels(kind="-inf").set(-math.inf)
    _scraped(prometheus_server, "source_test_odd", 2)
    now = time.time()
    with PrometheusSource(prometheus_server.url) as source:
        instant = {labels["kind"]: value for labels, value in source.query("source_test_odd", now)}
        raw = {
            s.label_map["kind"]: s.samples[-1].value
            for s in source.select(Selector("source_test_odd"), now - 60, now)
        }

    for values in (instant, raw):
        assert math.isnan(values["nan"])
        assert values["inf"] == math.inf
        assert values["-inf"] == -math.inf


def test_prometheus_refusing_a_query_is_not_retryable_and_names_host_and_query(prometheus_server):
    with PrometheusSource(prometheus_server.url) as source, pytest.raises(SourceError) as refused:
        source.query("sum(source_test_cpu_usage", time.time())
    assert refused.value.retryable is False
    message = str(refused.value)
    assert prometheus_server.url.removeprefix("http://") in message
    assert "sum(source_test_cpu_usage" in message
    assert "bad_data" in message


def test_a_range_vector_is_not_an_instant_result(prometheus_server):
    with PrometheusSource(prometheus_server.url) as source, pytest.raises(SourceError) as refused:
        source.query("up[1m]", time.time())
    assert "expected an instant vector or a scalar, got matrix" in str(refused.value)
    assert refused.value.retryable is False


# -- against loopback peers ----------------------------------------------------------------------------


@pytest.fixture
def answering():
    """`answering(Answer(...))`: a loopback peer giving that answer to every request."""
    peers = []

    def start(answer: Answer) -> HttpPeer:
        peer = HttpPeer(lambda _: answer)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.close()


def test_a_bearer_token_is_sent_and_the_query_posted_as_a_form(answering):
    peer = answering(Answer(body=_vector("3")))
    with PrometheusSource(peer.url + "/prom/", bearer_token=TOKEN) as source:
        assert source.query("up", 1700000000.5) == [({"__name__": "up", "job": "x"}, 3.0)]
    [request] = peer.received
    assert request.method == "POST"
    assert request.path == "/prom/api/v1/query"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert parse_qs(request.body) == {"query": ["up"], "time": ["1700000000.5"]}


@pytest.mark.parametrize("in_url", [False, True], ids=["arguments", "userinfo"])
def test_basic_auth_is_sent_from_arguments_or_the_urls_userinfo(answering, in_url):
    peer = answering(Answer(body=_vector()))
    if in_url:
        source = PrometheusSource(peer.url.replace("http://", f"http://ops:{PASSWORD}@"))
    else:
        source = PrometheusSource(peer.url, username="ops", password=PASSWORD)
    with source:
        source.query("up", time.time())
        assert PASSWORD not in repr(source)
    expected = base64.b64encode(f"ops:{PASSWORD}".encode()).decode()
    assert peer.received[0].headers["Authorization"] == f"Basic {expected}"


def test_select_asks_for_the_raw_samples_of_a_range_selector_at_its_end(answering):
    matrix = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {"__name__": "offset", "host": 'a"b'},
                    "values": [[99.5, "1"], [100, "2"], [130, "NaN"], [160, "+Inf"], [160.5, "4"]],
                }
            ],
        },
    }
    peer = answering(Answer(body=matrix))
    selector = Selector("offset", (Matcher("host", "=~", 'a"b|c\\d'),))
    with PrometheusSource(peer.url) as source:
        [series] = source.select(selector, 100, 160)
    form = parse_qs(peer.received[0].body)
    assert form == {"query": ['{__name__="offset", host=~"a\\"b|c\\\\d"}[60001ms]'], "time": ["160.0"]}
    assert series.metric == "offset"
    assert series.label_map == {"host": 'a"b'}
    assert [s.at for s in series.samples] == [100, 130, 160]  # the peer's extra samples are cut off
    assert series.samples[0].value == 2 and math.isnan(series.samples[1].value)
    assert series.samples[2].value == math.inf


def test_a_selector_that_is_not_promql_is_refused_before_asking(answering):
    peer = answering(Answer(body=_vector()))
    with PrometheusSource(peer.url) as source, pytest.raises(SourceError) as refused:
        source.select(Selector("up or vector(1)"), 0, 10)
    assert refused.value.retryable is False
    assert "is not a Prometheus metric name" in str(refused.value)
    assert peer.received == []


@pytest.mark.parametrize(
    ("answer", "retryable", "shown"),
    [
        (
            Answer(400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
            False,
            "parse error",
        ),
        (
            Answer(422, {"status": "error", "errorType": "execution", "error": "too many samples"}),
            False,
            "422",
        ),
        (
            Answer(503, {"status": "error", "errorType": "timeout", "error": "query timed out"}),
            True,
            "timed out",
        ),
        (Answer(500, "<html>internal error</html>"), True, "HTTP 500, not a Prometheus answer"),
        (Answer(502, "bad gateway"), True, "bad gateway"),
        (Answer(429, "slow down"), True, "429"),
        (Answer(404, "not found"), False, "404"),
        (
            Answer(401, {"status": "error", "errorType": "auth", "error": "unauthorized"}),
            False,
            "check the credentials",
        ),
        (Answer(200, "not json at all"), False, "HTTP 200, not a Prometheus answer"),
        (
            Answer(200, {"status": "success", "data": {"resultType": "string", "result": [1, "x"]}}),
            False,
            "string",
        ),
        (
            Answer(200, {"status": "success", "data": {"resultType": "vector", "result": [{"x": 1}]}}),
            False,
            "malformed",
        ),
    ],
    ids=["400", "422", "503", "500", "502", "429", "404", "401", "not-json", "string", "malformed"],
)
def test_a_bad_answer_is_a_source_error_naming_host_and_query(answering, answer, retryable, shown):
    peer = answering(answer)
    with PrometheusSource(peer.url, username="ops", password=PASSWORD, name="main") as source:
        with pytest.raises(SourceError) as failed:
            source.query('rate(http_requests_total{code="500"}[5m])', time.time())
    message = str(failed.value)
    assert failed.value.retryable is retryable
    assert message.startswith(f"main at 127.0.0.1:{peer.port}: ")
    assert 'rate(http_requests_total{code="500"}[5m])' in message
    assert shown in message
    assert PASSWORD not in message


def test_a_token_echoed_back_by_a_proxy_is_masked(answering):
    peer = answering(Answer(403, f"forbidden for Bearer {TOKEN}"))
    with PrometheusSource(peer.url, bearer_token=TOKEN) as source, pytest.raises(SourceError) as failed:
        source.query("up", time.time())
    assert TOKEN not in str(failed.value)
    assert "forbidden for Bearer ***" in str(failed.value)


def test_a_redirect_is_not_followed_and_its_target_shown_without_path(answering):
    peer = answering(Answer(302, "moved"))
    with PrometheusSource(peer.url, bearer_token=TOKEN) as source, pytest.raises(SourceError) as failed:
        source.query("up", time.time())
    assert "HTTP 302" in str(failed.value)
    assert "a redirect to a path on the same host" in str(failed.value)
    assert failed.value.retryable is False
    assert len(peer.received) == 1


def test_a_slow_server_times_out_retryably(answering):
    peer = answering(Answer(body=_vector(), delay=3))
    started = time.monotonic()
    with PrometheusSource(peer.url, timeout=0.3) as source, pytest.raises(SourceError) as failed:
        source.query("up", time.time())
    assert time.monotonic() - started < 2
    assert failed.value.retryable is True
    assert f"127.0.0.1:{peer.port}" in str(failed.value)
    assert "no answer within 0.3 s" in str(failed.value)


def test_a_refused_connection_is_retryable_and_shows_no_credentials():
    port = free_port()
    with PrometheusSource(f"http://ops:{PASSWORD}@127.0.0.1:{port}/prefix") as source:
        with pytest.raises(SourceError) as failed:
            source.select(Selector("up"), 0, 60)
    message = str(failed.value)
    assert failed.value.retryable is True
    assert f'prometheus at 127.0.0.1:{port}: query `{{__name__="up"}}[60001ms]`' in message
    assert "ConnectError" in message
    assert PASSWORD not in message and "ops:" not in message


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("ftp://example.org", {}, "url"),
        ("http://", {}, "url"),
        ("http://h:notaport", {}, "url"),
        ("http://example.org", {"bearer_token": "t", "username": "u", "password": "p"}, "bearer_token"),
        ("http://u:p@example.org", {"username": "v"}, "url"),
        ("http://example.org", {"password": "p"}, "username"),
        ("http://example.org", {"timeout": 0}, "timeout"),
    ],
)
def test_a_bad_configuration_names_its_field(url, options, field):
    with pytest.raises(ConfigurationError) as refused:
        PrometheusSource(url, **options)
    assert field in [path for path, _ in refused.value.errors]
    assert "notaport" not in str(refused.value)
