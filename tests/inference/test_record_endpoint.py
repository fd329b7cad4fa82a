"""POST /api/monitoring/dashboard/inference: validation, hostile input, stored counters, log record, roles."""

from __future__ import annotations

from decimal import Decimal

import pytest

from collector_server.inference.models import ModelPrice
from collector_server.logs.models import LogEntry
from collector_server.monitoring.models import Series
from tests.inference.conftest import client_for, drain

SEED_PATH = "/api/monitoring/dashboard/inference"
V1_PATH = "/api/v1/monitoring/inference"
MODELS = "/api/v1/monitoring/models"


def post(client, body, path=SEED_PATH):
    return client.post(path, body, format="json")


@pytest.mark.django_db(transaction=True)
def test_recorded_inferences_show_in_the_models_api_with_exact_figures(operator, viewer, redis_client):
    ModelPrice.objects.create(model="qwen2.5:7b", input_per_1k=Decimal("0.5"), output_per_1k=Decimal("1.5"))
    # The seed's call (duration in ms), then two with tokens and no cost (priced), one failing.
    assert (
        post(
            operator, {"model": "qwen2.5:7b", "duration": 120, "cost": 0.001, "organization": "swag"}
        ).status_code
        == 202
    )
    r = post(
        operator,
        {
            "model": "qwen2.5:7b",
            "duration_seconds": 0.3,
            "organization": "swag",
            "input_tokens": 1000,
            "output_tokens": 200,
            "time_to_first_token": 0.04,
            "request_id": "req-inf-1",
            "user": "u-17",
        },
        V1_PATH,
    )
    assert r.status_code == 202, r.content
    assert r.json()["cost_source"] == "price_table"
    assert (
        post(
            operator, {"model": "qwen2.5:7b", "duration_ms": 7000, "status": "error", "input_tokens": 10}
        ).status_code
        == 202
    )
    drain(redis_client)

    body = viewer.get(MODELS, {"hours": 1}).json()
    assert body["count"] == 1
    row = body["models"][0]
    assert row["model"] == "qwen2.5:7b"
    assert (row["requests"], row["errors"]) == (3, 1)
    assert row["input_tokens"] == 1010 and row["output_tokens"] == 200
    # 0.001 reported + (1000/1000*0.5 + 200/1000*1.5) + 10/1000*0.5
    assert row["cost_usd"] == pytest.approx(0.001 + 0.5 + 0.3 + 0.005)
    assert row["cost_reported_usd"] == pytest.approx(0.001)
    assert row["time_to_first_token_seconds"]["p50"] is not None
    assert [h["host"] for h in row["hosts"]] == ["inference-api"]
    # No user or request id ever becomes a label.
    for series in Series.objects.filter(name__startswith="llm_"):
        assert set(series.labels) <= {"model", "organization", "status", "le", "instance", "host"}
    by_org = viewer.get(MODELS, {"hours": 1, "by": "organization"}).json()["models"]
    assert {(r["organization"], r["requests"]) for r in by_org} == {("swag", 2), ("", 1)}
    only = viewer.get(MODELS, {"hours": 1, "organization": "swag"}).json()["models"]
    assert only[0]["requests"] == 2
    # The request-level detail is one log record found by its request id.
    entry = LogEntry.objects.get(request_id="req-inf-1")
    assert entry.attrs["user"] == "u-17" and entry.attrs["input_tokens"] == 1000


HOSTILE = [
    ({}, "model"),
    ({"model": "m"}, "duration"),
    ({"model": "", "duration": 1}, "model"),
    ({"model": "   ", "duration": 1}, "model"),
    ({"model": 5, "duration": 1}, "model"),
    ({"model": ["m"], "duration": 1}, "model"),
    ({"model": "m\x00x", "duration": 1}, "model"),
    ({"model": "m" * 201, "duration": 1}, "model"),
    ({"model": "m", "duration": "1"}, "duration"),
    ({"model": "m", "duration": True}, "duration"),
    ({"model": "m", "duration": -1}, "duration"),
    ({"model": "m", "duration": 1e300}, "duration"),
    ({"model": "m", "duration": 1, "duration_ms": 1000}, "duration_ms"),
    ({"model": "m", "duration": 1, "duration_ms": 1000}, "duration"),
    ({"model": "m", "duration": 1000, "duration_seconds": 1}, "duration_seconds"),
    ({"model": "m", "duration_seconds": 86401}, "duration_seconds"),
    ({"model": "m", "duration_ms": -1}, "duration_ms"),
    ({"model": "m", "duration": 1, "cost": -0.1}, "cost"),
    ({"model": "m", "duration": 1, "cost": "free"}, "cost"),
    ({"model": "m", "duration": 1, "input_tokens": 1.5}, "input_tokens"),
    ({"model": "m", "duration": 1, "output_tokens": -3}, "output_tokens"),
    ({"model": "m", "duration": 1, "status": "maybe"}, "status"),
    ({"model": "m", "duration": 1, "organization": {"a": 1}}, "organization"),
    ({"model": "m", "duration": 1000, "time_to_first_token": 2}, "time_to_first_token"),
    ({"model": "m", "duration": 1, "user_id": "x"}, "user_id"),
    ({"model": "m", "duration": 1, "request_id": "r" * 1000}, "request_id"),
]


@pytest.mark.django_db(transaction=True)
def test_the_seeds_call_sends_duration_in_milliseconds(operator, viewer, redis_client):
    # Seed 004: recordModelInference('qwen2.5:7b', 120, 0.001, 'swaggystacks') -> duration 120 ms.
    body = {"model": "qwen2.5:7b", "duration": 120, "cost": 0.001, "organization": "swaggystacks"}
    assert post(operator, {**body, "request_id": "req-seed-ms"}).status_code == 202
    drain(redis_client)
    row = viewer.get(MODELS, {"hours": 1}).json()["models"][0]
    # 0.12 s lies in the (0.1, 0.25] bucket; read as seconds it would be past the 60 s bucket.
    assert 0.1 < row["latency_seconds"]["p50"] <= 0.25
    attrs = LogEntry.objects.get(request_id="req-seed-ms").attrs
    # logPerformance('model_inference', {modelName, duration, organization, cost}): the seed's names.
    assert attrs["modelName"] == "qwen2.5:7b" and attrs["duration"] == 120
    assert attrs["duration_ms"] == 120 and attrs["organization"] == "swaggystacks"
    assert attrs["cost"] == 0.001


@pytest.mark.django_db(transaction=True)
def test_duration_seconds_and_the_duration_ms_alias_mean_the_same(operator, viewer, redis_client):
    assert post(operator, {"model": "s", "duration_seconds": 0.12, "request_id": "r-s"}).status_code == 202
    assert post(operator, {"model": "s", "duration_ms": 120, "request_id": "r-ms"}).status_code == 202
    drain(redis_client)
    for rid in ("r-s", "r-ms"):
        attrs = LogEntry.objects.get(request_id=rid).attrs
        assert attrs["duration"] == 120 and attrs["duration_ms"] == 120


def test_two_duration_fields_at_once_are_a_400_naming_both(operator, redis_client):
    r = post(operator, {"model": "m", "duration": 120, "duration_seconds": 0.12})
    assert r.status_code == 400
    assert "duration" in r.json()["detail"] and "duration_seconds" in r.json()["detail"], r.json()


@pytest.mark.parametrize(("body", "field"), HOSTILE)
def test_bad_bodies_are_a_400_naming_the_field(operator, redis_client, body, field):
    r = post(operator, body)
    assert r.status_code == 400, r.content
    assert field in r.json()["detail"], r.json()


def test_non_object_bodies_are_refused(operator, redis_client):
    for raw in (b"[1,2]", b"null", b'"text"', b"{bad json"):
        r = operator.post(SEED_PATH, raw, content_type="application/json")
        assert r.status_code == 400, (raw, r.content)


def test_recording_needs_the_operator_role(db, redis_client):
    viewer = client_for("inf-view-2", "viewer")
    assert post(viewer, {"model": "m", "duration": 1}).status_code == 403
    from rest_framework.test import APIClient

    assert post(APIClient(), {"model": "m", "duration": 1}).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_another_organisation_sees_nothing(operator, redis_client):
    assert post(operator, {"model": "secret-model", "duration": 1, "cost": 1.0}).status_code == 202
    drain(redis_client)
    other = client_for("inf-b-viewer", "viewer", "org-b")
    assert other.get(MODELS, {"hours": 1}).json()["models"] == []
    assert b"secret-model" not in other.get("/api/v1/monitoring/models/series", {"figure": "cost"}).content
    assert b"secret-model" not in other.get("/api/v1/monitoring/models/daily-cost").content


def test_new_label_sets_beyond_the_cap_are_a_429_and_known_ones_still_count(
    operator, redis_client, monkeypatch
):
    from collector_server.inference import recording

    monkeypatch.setattr(recording, "MAX_SERIES", 20)
    assert post(operator, {"model": "a", "duration": 1}).status_code == 202  # 14 series + the clock field
    refused = post(operator, {"model": "b", "duration": 1})
    assert refused.status_code == 429
    assert "model" in refused.json()["detail"] and "limit 20" in refused.json()["error"]
    assert post(operator, {"model": "a", "duration": 2}).status_code == 202
