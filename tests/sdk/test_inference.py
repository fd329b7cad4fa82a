"""record_inference, InferenceMetrics, the decorator and the context manager (no agent: in memory)."""

from __future__ import annotations

import asyncio
import logging
import math
from types import SimpleNamespace

import pytest

from agent.sdk import InferenceMetrics, InferenceRecorder, inference, track_inference, usage_of


def values(metrics: InferenceMetrics, ts: float = 2000.0) -> dict:
    """{(name, labels without service/instance): last value}."""
    out = {}
    for s in metrics.series(ts=ts):
        labels = tuple(sorted((k, v) for k, v in s["labels"].items() if k not in ("service", "instance")))
        out[(s["name"], labels)] = s["points"][-1][1]
    return out


def key(name, **labels):
    return (name, tuple(sorted(labels.items())))


def test_records_aggregate_into_bounded_cumulative_series():
    m = InferenceMetrics("chat")
    m.record(
        "qwen",
        0.3,
        input_tokens=100,
        output_tokens=20,
        cost=None,
        organization="acme",
        time_to_first_token=0.04,
    )
    m.record("qwen", 7.0, input_tokens=10, output_tokens=None, cost=0.5, organization="acme", status="error")
    m.record("qwen", 0.01, organization="")
    got = values(m)
    acme = {"model": "qwen", "organization": "acme"}
    assert got[key("llm_requests_total", **acme, status="ok")] == 1
    assert got[key("llm_requests_total", **acme, status="error")] == 1
    assert got[key("llm_requests_total", model="qwen", organization="", status="ok")] == 1
    assert got[key("llm_input_tokens_total", **acme)] == 110
    assert got[key("llm_output_tokens_total", **acme)] == 20
    assert got[key("llm_cost_usd_total", **acme)] == 0.5
    # tokens of the inference without a cost are left for the server's price table
    assert got[key("llm_unpriced_input_tokens_total", **acme)] == 100
    assert got[key("llm_unpriced_output_tokens_total", **acme)] == 20
    # cumulative buckets: 0.3 s falls in le=0.5, 7 s in le=10.0
    assert got[key("llm_request_duration_seconds_bucket", **acme, le="0.25")] == 0
    assert got[key("llm_request_duration_seconds_bucket", **acme, le="0.5")] == 1
    assert got[key("llm_request_duration_seconds_bucket", **acme, le="10.0")] == 2
    assert got[key("llm_request_duration_seconds_bucket", **acme, le="+Inf")] == 2
    assert got[key("llm_request_duration_seconds_count", **acme)] == 2
    assert got[key("llm_request_duration_seconds_sum", **acme)] == pytest.approx(7.3)
    assert got[key("llm_time_to_first_token_seconds_bucket", **acme, le="0.05")] == 1
    for s in m.series():
        assert set(s["labels"]) <= {"service", "instance", "model", "organization", "status", "le"}


def test_new_series_carry_a_zero_point_once_and_again_after_a_failed_send():
    m = InferenceMetrics("chat")
    m.record("a", 1.0, input_tokens=5)
    first = m.series(reset_max=True)
    assert all(s["points"][0][1] == 0.0 and len(s["points"]) == 2 for s in first)
    m.record("a", 1.0, input_tokens=5, status="error")
    second = {(s["name"], s["labels"].get("status")): s["points"] for s in m.series(reset_max=True)}
    assert len(second[("llm_requests_total", "ok")]) == 1  # sent before
    assert second[("llm_requests_total", "error")][0][1] == 0.0  # new: starts from zero
    m.restore_max(m.series(reset_max=True))  # nothing new: nothing to restore
    m.record("b", 1.0)
    failed = m.series(reset_max=True)
    m.restore_max(failed)
    again = [s for s in m.series() if s["labels"]["model"] == "b"]
    assert all(len(s["points"]) == 2 for s in again)


def test_model_and_organisation_pairs_are_capped():
    m = InferenceMetrics("chat", max_series=3)
    for i in range(10):
        m.record(f"m{i}", 0.1, organization=f"o{i}")
    models = {s["labels"]["model"] for s in m.series()}
    assert models == {"m0", "m1", "m2", "__other__"}
    assert m.folded == 7


def test_usage_is_read_from_openai_and_anthropic_shapes_dict_or_object():
    assert usage_of({"usage": {"prompt_tokens": 12, "completion_tokens": 3}}) == (12, 3)
    assert usage_of(SimpleNamespace(usage=SimpleNamespace(input_tokens=7, output_tokens=9))) == (7, 9)
    assert usage_of({"usage": {"prompt_tokens": "12", "completion_tokens": True}}) == (None, None)
    assert usage_of(None) == (None, None)
    assert usage_of({"choices": []}) == (None, None)


def test_the_decorator_times_reads_usage_and_counts_exceptions_as_errors():
    recorder = InferenceRecorder("chat", client=None)

    @track_inference(organization=lambda prompt, org: org, recorder=recorder)
    def ask(prompt, org):
        if prompt == "boom":
            raise RuntimeError("model down")
        return {"model": "gpt-x", "usage": {"prompt_tokens": 40, "completion_tokens": 2}}

    ask("hi", "acme")
    with pytest.raises(RuntimeError):
        ask("boom", "acme")
    got = values(recorder.metrics)
    assert got[key("llm_requests_total", model="gpt-x", organization="acme", status="ok")] == 1
    assert got[key("llm_requests_total", model="unknown", organization="acme", status="error")] == 1
    assert got[key("llm_input_tokens_total", model="gpt-x", organization="acme")] == 40


def test_async_decorator_and_context_manager_with_first_token():
    recorder = InferenceRecorder("chat", client=None)

    @track_inference(model="llama3", recorder=recorder)
    async def ask():
        await asyncio.sleep(0)
        return SimpleNamespace(usage=SimpleNamespace(input_tokens=3, output_tokens=4))

    asyncio.run(ask())
    with inference("llama3", organization="o", recorder=recorder, cost=0.25) as call:
        call.first_token()
        call.tokens(input=10, output=20)
    got = values(recorder.metrics)
    assert got[key("llm_requests_total", model="llama3", organization="", status="ok")] == 1
    assert got[key("llm_output_tokens_total", model="llama3", organization="")] == 4
    assert got[key("llm_cost_usd_total", model="llama3", organization="o")] == 0.25
    assert got[key("llm_time_to_first_token_seconds_count", model="llama3", organization="o")] == 1


def test_request_id_and_user_go_to_one_log_record_never_a_label(caplog):
    recorder = InferenceRecorder("chat", client=None)
    with caplog.at_level(logging.INFO, logger="fleetwatch.inference"):
        recorder.record("m", 0.2, input_tokens=3, organization="acme", request_id="req-9", user="u-1")
        recorder.record("m", 0.2)  # neither: no log record
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.getMessage() == "model_inference m"
    labels = {k for s in recorder.metrics.series() for k in s["labels"]}
    assert "user" not in labels and "request_id" not in labels


def test_a_broken_record_never_raises_into_the_app():
    recorder = InferenceRecorder("chat", client=None)
    recorder.record("m", "not a number")  # type: ignore[arg-type]
    # refused before it reaches the aggregates: counted by reason, nothing raised
    assert recorder.metrics.refused == {"duration": 1}
    assert recorder.errors == 0


BAD_RECORDS = [
    ({"model": None}, "model"),
    ({"model": 5}, "model"),
    ({"model": ""}, "model"),
    ({"model": " \x00\n "}, "model"),
    ({"duration": float("nan")}, "duration"),
    ({"duration": float("inf")}, "duration"),
    ({"duration": -0.1}, "duration"),
    ({"duration": True}, "duration"),
    ({"duration": "1"}, "duration"),
    ({"time_to_first_token": float("nan")}, "time_to_first_token"),
    ({"time_to_first_token": -1}, "time_to_first_token"),
    ({"cost": float("inf")}, "cost"),
    ({"cost": -0.5}, "cost"),
    ({"cost": "0.1"}, "cost"),
    ({"input_tokens": 1.5}, "input_tokens"),
    ({"input_tokens": -3}, "input_tokens"),
    ({"input_tokens": True}, "input_tokens"),
    ({"output_tokens": float("nan")}, "output_tokens"),
    ({"output_tokens": "12"}, "output_tokens"),
    ({"status": "maybe"}, "status"),
    ({"status": None}, "status"),
    ({"organization": None}, "organization"),
    ({"organization": 7}, "organization"),
    ({"organization": "ac\x00me"}, "organization"),
    ({"organization": "ac\nme"}, "organization"),
]


class Capture:
    def __init__(self) -> None:
        self.sent: list[list[dict]] = []

    def send_metrics(self, series: list[dict]) -> bool:
        self.sent.append(series)
        return True


@pytest.mark.parametrize(("bad", "reason"), BAD_RECORDS)
def test_a_bad_record_is_refused_counted_and_never_poisons_the_aggregates(bad, reason):
    client = Capture()
    recorder = InferenceRecorder("chat", client=client, flush_interval=3600)
    try:
        args = {"model": "qwen", "duration": 0.3, "input_tokens": 10, "organization": "acme", **bad}
        recorder.record(args.pop("model"), args.pop("duration"), **args)
        assert recorder.metrics.refused == {reason: 1}
        assert recorder.errors == 0
        recorder.record("qwen", 0.5, input_tokens=10, output_tokens=2, cost=0.01, organization="acme")
        assert recorder.flush()
        flushed = {
            (
                s["name"],
                tuple(sorted((k, v) for k, v in s["labels"].items() if k not in ("service", "instance"))),
            ): s
            for s in client.sent[-1]
        }
        acme = {"model": "qwen", "organization": "acme"}
        assert flushed[key("llm_requests_total", **acme, status="ok")]["points"][-1][1] == 1
        assert flushed[key("llm_input_tokens_total", **acme)]["points"][-1][1] == 10
        assert flushed[key("llm_request_duration_seconds_sum", **acme)]["points"][-1][1] == 0.5
        assert flushed[key("llm_cost_usd_total", **acme)]["points"][-1][1] == 0.01
        refused = flushed[key("llm_sdk_records_refused_total", reason=reason)]
        assert refused["type"] == "counter"
        assert [p[1] for p in refused["points"]] == [0.0, 1.0]  # first flush: from a zero point
        for s in client.sent[-1]:
            for value in (p[1] for p in s["points"]):
                assert math.isfinite(value) and value >= 0
        recorder.record(
            "qwen", 0.5, organization=bad.get("organization", "acme"), status=bad.get("status", "ok")
        )
        assert recorder.flush()
        again = [s for s in client.sent[-1] if s["name"] == "llm_sdk_records_refused_total"]
        expected = 2 if reason in ("organization", "status") else 1
        assert [s["points"] for s in again] == [[[again[0]["points"][0][0], float(expected)]]]
    finally:
        recorder.close()


def test_numbers_of_other_real_and_integral_types_are_accepted():
    from fractions import Fraction

    m = InferenceMetrics("chat")
    assert m.record("m", Fraction(1, 2), input_tokens=Fraction(6, 1).numerator, cost=Fraction(1, 4)) is True
    got = values(m)
    assert got[key("llm_request_duration_seconds_sum", model="m", organization="")] == 0.5
    assert got[key("llm_cost_usd_total", model="m", organization="")] == 0.25
    assert m.refused == {}


def test_a_model_name_is_cleaned_and_cut_not_refused():
    m = InferenceMetrics("chat")
    assert m.record("qw\x00en\n" + "x" * 300, 0.1, organization="o" * 300) is True
    (labels,) = {(s["labels"]["model"], s["labels"]["organization"]) for s in m.series()}
    assert labels[0] == ("qwen" + "x" * 300)[:200] and len(labels[1]) == 200
    assert m.refused == {}
