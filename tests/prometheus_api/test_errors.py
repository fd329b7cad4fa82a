"""Bad requests get Prometheus' error shape with a 4xx naming the problem, never a 5xx."""

from __future__ import annotations

import pytest
import snappy
from rest_framework.test import APIClient

from collector_server.prometheus_api.remote_pb import WriteRequest
from shared import streams


def error_of(response, status: int = 400) -> str:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] == "error"
    assert body["errorType"] == {400: "bad_data", 401: "unauthorized", 422: "execution"}[status]
    return body["error"]


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("query", {}, '"query"'),
        ("query", {"query": "up", "time": "yesterday"}, '"time"'),
        ("query", {"query": "sum(up"}, "parse error"),
        ("query", {"query": 'up{a=~"(?P<n>x)"}'}, "regular expression"),
        ("query", {"query": "up @ 100"}, "@ modifier"),
        ("query", {"query": "rate(up[5m:1m])"}, "subquer"),
        ("query", {"query": 'count_values("v", up)'}, "count_values"),
        ("query_range", {"query": "up", "start": "10", "end": "5", "step": "1"}, "end timestamp"),
        ("query_range", {"query": "up", "start": "0", "end": "5", "step": "0"}, "step"),
        ("query_range", {"query": "up", "start": "0", "end": "86400", "step": "1"}, "11,000 points"),
        ("query_range", {"query": "up", "start": "0", "end": "5", "step": "soon"}, '"step"'),
        ("query_range", {"query": "up[5m]", "start": "0", "end": "5", "step": "1"}, "range vector"),
        ("series", {}, "match[]"),
        ("series", {"match[]": "sum(up)"}, "match[]"),
        ("labels", {"match[]": "up", "start": "x"}, '"start"'),
        ("metadata", {"limit": "many"}, '"limit"'),
    ],
)
def test_bad_parameters_are_bad_data_naming_the_problem(api, path, params, named):
    assert named in error_of(api.get(f"/prometheus/api/v1/{path}", params))


def test_nul_in_a_parameter_is_refused(api):
    assert '"query"' in error_of(api.get("/prometheus/api/v1/query", {"query": "up\x00"}))


def test_a_request_without_credentials_is_unauthorized_in_prometheus_shape(db):
    assert error_of(APIClient().get("/prometheus/api/v1/query", {"query": "up"}), 401)


def _write(api, body: bytes, encoding: str = "snappy"):
    return api.generic(
        "POST",
        "/prometheus/api/v1/write",
        body,
        content_type="application/x-protobuf",
        HTTP_CONTENT_ENCODING=encoding,
    )


def test_remote_write_refuses_what_is_not_snappy_protobuf(api, redis_client):
    request = WriteRequest()
    request.timeseries.add().labels.add(name="__name__", value="up")
    assert "snappy" in error_of(_write(api, request.SerializeToString(), encoding="gzip"))
    assert "snappy" in error_of(_write(api, b"not snappy at all"))
    assert "WriteRequest" in error_of(_write(api, snappy.compress(b"\xff\xff\xff")))


def test_remote_write_refuses_an_invalid_metric_name_naming_it(api, redis_client):
    request = WriteRequest()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value="bad name")
    series.samples.add(value=1.0, timestamp=1)
    assert "'bad name'" in error_of(_write(api, snappy.compress(request.SerializeToString())))
    assert redis_client.xlen(streams.stream_key(streams.METRICS)) == 0


def test_remote_write_skips_and_counts_staleness_markers(api, redis_client):
    import struct
    import time

    from alerting_worker.ingest import stats

    stale = struct.unpack(">d", struct.pack(">Q", 0x7FF0000000000002))[0]
    request = WriteRequest()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value="up")
    series.labels.add(name="instance", value="db-1:9100")
    now = int(time.time() * 1000)
    series.samples.add(value=1.0, timestamp=now - 1000)
    series.samples.add(value=stale, timestamp=now)
    assert _write(api, snappy.compress(request.SerializeToString())).status_code == 204
    counted = stats.read(redis_client)
    assert counted["remote_write_stale_markers"] == 1
    assert counted["remote_write_samples_queued"] == 1
