"""Record LLM inferences: counters aggregated in the process, flushed through the agent's socket.

    from agent.sdk import record_inference, track_inference, inference

    record_inference("qwen2.5:7b", 0.84, input_tokens=812, output_tokens=95, organization="acme")

    @track_inference(model="gpt-4o-mini", organization="acme")   # reads usage from the response
    def ask(prompt): return client.chat.completions.create(...)

    with inference("llama3", organization="acme") as call:
        for chunk in stream:
            call.first_token()         # time to first token
        call.tokens(input=812, output=95)

Series (docs/inference.md): llm_requests_total{model,organization,status}, the duration and
time-to-first-token histograms, llm_input/output_tokens_total, llm_cost_usd_total (costs the
caller gave) and llm_unpriced_input/output_tokens_total (tokens of inferences without a cost:
the server prices them with its price table). Every series also has ``service`` and ``instance``
(one per process, as the API metrics). A record is a few dictionary updates under a lock (no
socket write); the flusher sends cumulative values every ``flush_interval`` seconds. A series'
first flush also carries a zero point at the time it was created, so the server counts its
first inferences. The user, API key label and request id never become labels: with
``request_id`` or ``user`` given, one log record (logger ``fleetwatch.inference``, INFO) carries
them, through the app's logging (cheap when that logger is not enabled).
"""

from __future__ import annotations

import functools
import inspect
import logging
import numbers
import os
import re
import threading
import time
import weakref
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from agent.sdk import context
from agent.sdk.metrics import DEFAULT_FLUSH_INTERVAL, MetricsFlusher, new_instance_id
from shared import inference as c
from shared.jsonlog import CONTEXT_ATTR, FIELDS_ATTR, TRUSTED_ATTR
from shared.wire import COUNTER

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_MAX_SERIES = 1000  # (model, organization) pairs; beyond: folded into OTHER
OTHER = "__other__"
LOGGER = "fleetwatch.inference"
ZERO_OFFSET = 0.001  # the zero point sits this long before a series' creation time
REFUSED = "llm_sdk_records_refused_total"  # {service, instance, reason}: records not counted
MAX_DURATION_S = 86_400.0  # duration and time to first token, as the HTTP endpoint
MAX_TOKENS = 10**9
MAX_COST = 1e6
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LES_DURATION = tuple(c.bucket_labels(c.DURATION_BUCKETS))
_LES_TTFT = tuple(c.bucket_labels(c.TTFT_BUCKETS))


class _Pair:
    """The counters of one (model, organization)."""

    __slots__ = (
        "cost",
        "created",
        "dur_buckets",
        "dur_count",
        "dur_sum",
        "errors",
        "input_tokens",
        "last_flush",
        "ok",
        "output_tokens",
        "sent",
        "ttft_buckets",
        "ttft_count",
        "ttft_sum",
        "unpriced_input",
        "unpriced_output",
    )

    def __init__(self, created: float) -> None:
        self.created = created
        self.last_flush: float | None = None
        self.sent: set[str] = set()
        self.ok = 0
        self.errors = 0
        self.dur_buckets = [0] * (len(c.DURATION_BUCKETS) + 1)
        self.dur_sum = 0.0
        self.dur_count = 0
        self.ttft_buckets = [0] * (len(c.TTFT_BUCKETS) + 1)
        self.ttft_sum = 0.0
        self.ttft_count = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost = 0.0
        self.unpriced_input = 0
        self.unpriced_output = 0


class Refused(ValueError):
    """A record's argument that would poison the aggregates; ``reason`` names it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


def _number(reason: str, value: Any, maximum: float) -> float:
    kind = type(value)
    if kind is not float and kind is not int:  # the fast path; numpy's floats and ints are Real too
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise Refused(reason, f"must be a number, not {kind.__name__}")
        value = float(value)
    if not (0.0 <= value <= maximum):  # also false for NaN
        raise Refused(reason, f"must be finite, 0..{maximum:g}, got {value!r}")
    return value


def _tokens(reason: str, value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise Refused(reason, f"must be a whole number, not {type(value).__name__}")
        value = int(value)
    if not (0 <= value <= MAX_TOKENS):
        raise Refused(reason, f"must be 0..{MAX_TOKENS}, got {value!r}")
    return value


def checked(
    model: Any,
    duration: Any,
    input_tokens: Any,
    output_tokens: Any,
    cost: Any,
    organization: Any,
    status: Any,
    time_to_first_token: Any,
) -> tuple[str, float, int | None, int | None, float | None, str, str, float | None]:
    """The record's arguments made safe to aggregate, or ``Refused`` naming the first bad one.

    model: a non-empty str, control characters removed, cut to 200 characters; duration, time to
    first token (seconds, <= 86400) and cost (USD, <= 1e6): finite numbers >= 0; tokens: whole
    numbers 0..1e9 (bools refused); status: ok or error; organization: a str without control
    characters, cut to 200 characters.
    """
    if not isinstance(model, str):
        raise Refused("model", f"must be a string, not {type(model).__name__}")
    if _CONTROL.search(model):
        model = _CONTROL.sub("", model)
    model = model[: c.MAX_MODEL_LENGTH]
    if not model.strip():
        raise Refused("model", "must not be blank")
    duration = _number("duration", duration, MAX_DURATION_S)
    if time_to_first_token is not None:
        time_to_first_token = _number("time_to_first_token", time_to_first_token, MAX_DURATION_S)
    if cost is not None:
        cost = _number("cost", cost, MAX_COST)
    input_tokens = _tokens("input_tokens", input_tokens)
    output_tokens = _tokens("output_tokens", output_tokens)
    if status not in c.STATUSES or not isinstance(status, str):
        raise Refused("status", f"must be one of {', '.join(c.STATUSES)}, got {status!r:.40}")
    if not isinstance(organization, str):
        raise Refused("organization", f"must be a string, not {type(organization).__name__}")
    if _CONTROL.search(organization):
        raise Refused("organization", "must not contain control characters")
    organization = organization[: c.MAX_ORGANIZATION_LENGTH]
    return model, duration, input_tokens, output_tokens, cost, organization, status, time_to_first_token


class InferenceMetrics:
    """Thread-safe inference counters by (model, organization); bounded to ``max_series`` pairs."""

    def __init__(
        self, service: str = "app", instance: str | None = None, max_series: int = DEFAULT_MAX_SERIES
    ) -> None:
        self.service = service
        self.instance = instance or new_instance_id()
        self.max_series = max_series
        self.folded = 0  # records counted under OTHER because max_series was reached
        self.recorded = 0
        # reason -> [refused records, created at, sent once, last flush]: llm_sdk_records_refused_total
        self._refused: dict[str, list[Any]] = {}
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._lock = threading.Lock()
        _live.add(self)

    @property
    def refused(self) -> dict[str, int]:
        """Records refused by reason (the argument that was bad)."""
        with self._lock:
            return {reason: entry[0] for reason, entry in self._refused.items()}

    def refuse(self, reason: str) -> None:
        with self._lock:
            entry = self._refused.get(reason)
            if entry is None:
                self._refused[reason] = [1, time.time(), False, None]
            else:
                entry[0] += 1

    def _after_fork_in_child(self) -> None:
        self.instance = new_instance_id()
        self._lock = threading.Lock()
        self._pairs = {}
        self._refused = {}
        self.folded = 0
        self.recorded = 0

    def record(
        self,
        model: str,
        duration: float,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost: float | None = None,
        organization: str = "",
        status: str = c.OK,
        time_to_first_token: float | None = None,
    ) -> bool:
        """Count one inference (duration and time to first token in seconds, cost in USD).

        Arguments that would poison the aggregates (see ``checked``) are not counted: the record
        is refused, counted by reason in ``llm_sdk_records_refused_total``, and False returned.
        """
        try:
            model, duration, input_tokens, output_tokens, cost, organization, status, time_to_first_token = (
                checked(
                    model,
                    duration,
                    input_tokens,
                    output_tokens,
                    cost,
                    organization,
                    status,
                    time_to_first_token,
                )
            )
        except Refused as refused:
            self.refuse(refused.reason)
            return False
        dur_slot = bisect_left(c.DURATION_BUCKETS, duration)
        ttft_slot = -1 if time_to_first_token is None else bisect_left(c.TTFT_BUCKETS, time_to_first_token)
        key = (model, organization)
        with self._lock:
            pair = self._pairs.get(key)
            if pair is None:
                pair = self._new_pair(key)
            if status == c.ERROR:
                pair.errors += 1
            else:
                pair.ok += 1
            pair.dur_buckets[dur_slot] += 1
            pair.dur_sum += duration
            pair.dur_count += 1
            if ttft_slot >= 0:
                pair.ttft_buckets[ttft_slot] += 1
                pair.ttft_sum += time_to_first_token  # type: ignore[operator]
                pair.ttft_count += 1
            if input_tokens:
                pair.input_tokens += input_tokens
            if output_tokens:
                pair.output_tokens += output_tokens
            if cost is not None:
                pair.cost += cost
            else:
                if input_tokens:
                    pair.unpriced_input += input_tokens
                if output_tokens:
                    pair.unpriced_output += output_tokens
            self.recorded += 1
        return True

    def _new_pair(self, key: tuple[str, str]) -> _Pair:
        if len(self._pairs) >= self.max_series:
            self.folded += 1
            key = (OTHER, OTHER)
            pair = self._pairs.get(key)
            if pair is not None:
                return pair
        pair = self._pairs[key] = _Pair(time.time())
        return pair

    def series(self, ts: float | None = None, reset_max: bool = False) -> list[dict[str, Any]]:
        """Every series with its cumulative value.

        A series not sent before also gets a zero point at the previous flush (or just before its
        pair was created), so the server counts its first increase. ``reset_max=True`` (the
        flusher) marks them sent; ``restore_max`` undoes that when the send failed.
        """
        now = time.time() if ts is None else ts
        with self._lock:
            snapshot = []
            for (model, org), p in self._pairs.items():
                zero_at = p.last_flush if p.last_flush is not None else p.created - ZERO_OFFSET
                snapshot.append((model, org, zero_at, set(p.sent), _values(p)))
                if reset_max:
                    p.sent.update(part for part, *_ in _parts(_values(p)))
                    p.last_flush = now
            refused = []
            for reason, entry in self._refused.items():
                count, created, sent, last_flush = entry
                zero_at = last_flush if last_flush is not None else created - ZERO_OFFSET
                refused.append((reason, count, None if sent else zero_at))
                if reset_max:
                    entry[2] = True
                    entry[3] = now
        out: list[dict[str, Any]] = []
        for reason, count, zero_at in refused:
            points = [[now, float(count)]] if zero_at is None else [[zero_at, 0.0], [now, float(count)]]
            labels = {"service": self.service, "instance": self.instance, "reason": reason}
            out.append({"name": REFUSED, "type": COUNTER, "labels": labels, "points": points})
        for model, org, zero_at, sent, values in snapshot:
            base = {"service": self.service, "instance": self.instance, "model": model, "organization": org}
            for part, name, extra, value in _parts(values):
                points = [[now, float(value)]] if part in sent else [[zero_at, 0.0], [now, float(value)]]
                out.append({"name": name, "type": COUNTER, "labels": {**base, **extra}, "points": points})
        return out

    def restore_max(self, series: list[dict[str, Any]]) -> None:
        """A flush that was not delivered: its new series send their zero point again next time."""
        with self._lock:
            for item in series:
                if len(item["points"]) > 1:
                    labels = item["labels"]
                    if item["name"] == REFUSED:
                        entry = self._refused.get(labels["reason"])
                        if entry is not None:
                            entry[2] = False
                        continue
                    pair = self._pairs.get((labels["model"], labels["organization"]))
                    if pair is not None:
                        pair.sent.discard(_part_of(item["name"], labels))


def _values(p: _Pair) -> tuple:
    return (
        p.ok, p.errors, tuple(p.dur_buckets), p.dur_sum, p.dur_count, tuple(p.ttft_buckets), p.ttft_sum,
        p.ttft_count, p.input_tokens, p.output_tokens, p.cost, p.unpriced_input, p.unpriced_output,
    )  # fmt: skip


def _parts(values: tuple) -> list[tuple[str, str, dict[str, str], float]]:
    """(part, series name, extra labels, value) of every series a pair sends now."""
    ok, errors, dur_b, dur_sum, dur_n, ttft_b, ttft_sum, ttft_n, t_in, t_out, cost, u_in, u_out = values
    out: list[tuple[str, str, dict[str, str], float]] = [(c.OK, c.REQUESTS, {"status": c.OK}, ok)]
    if errors:
        out.append((c.ERROR, c.REQUESTS, {"status": c.ERROR}, errors))
    for part, name, les, buckets, total, count in (
        ("dur", c.DURATION, _LES_DURATION, dur_b, dur_sum, dur_n),
        ("ttft", c.TTFT, _LES_TTFT, ttft_b, ttft_sum, ttft_n),
    ):
        if not count:
            continue
        running = 0
        for le, value in zip(les, buckets, strict=True):
            running += value
            out.append((part, name + "_bucket", {"le": le}, running))
        out.append((part, name + "_sum", {}, total))
        out.append((part, name + "_count", {}, count))
    for part, name, value in (
        ("in", c.INPUT_TOKENS, t_in),
        ("out", c.OUTPUT_TOKENS, t_out),
        ("cost", c.COST, cost),
        ("u_in", c.UNPRICED_INPUT_TOKENS, u_in),
        ("u_out", c.UNPRICED_OUTPUT_TOKENS, u_out),
    ):
        if value:
            out.append((part, name, {}, value))
    return out


_PART_OF_NAME = {
    c.INPUT_TOKENS: "in",
    c.OUTPUT_TOKENS: "out",
    c.COST: "cost",
    c.UNPRICED_INPUT_TOKENS: "u_in",
    c.UNPRICED_OUTPUT_TOKENS: "u_out",
}


def _part_of(name: str, labels: Mapping[str, str]) -> str:
    if name == c.REQUESTS:
        return labels.get("status", c.OK)
    if name.startswith(c.DURATION):
        return "dur"
    if name.startswith(c.TTFT):
        return "ttft"
    return _PART_OF_NAME.get(name, name)


_live: weakref.WeakSet[InferenceMetrics] = weakref.WeakSet()


def _reset_after_fork() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    for metrics in list(_live):
        metrics._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


class InferenceRecorder:
    """InferenceMetrics plus its flusher (through an AgentClient) and the per-inference log record."""

    def __init__(
        self,
        service: str = "app",
        client: Any = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        metrics: InferenceMetrics | None = None,
        logger: logging.Logger | str = LOGGER,
    ) -> None:
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be > 0 seconds, got {flush_interval}")
        self.metrics = metrics or InferenceMetrics(service)
        self.client = client
        self.flusher = MetricsFlusher(self.metrics, client, flush_interval) if client is not None else None
        self.logger = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
        self._started = False
        self.errors = 0

    def record(
        self,
        model: str,
        duration: float,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cost: float | None = None,
        organization: str = "",
        status: str = c.OK,
        time_to_first_token: float | None = None,
        request_id: str | None = None,
        user: str | None = None,
    ) -> None:
        if not self._started and self.flusher is not None:
            self._started = True
            self.flusher.start()
        try:
            counted = self.metrics.record(
                model, duration, input_tokens, output_tokens, cost, organization, status, time_to_first_token
            )
            if counted and (request_id or user) and self.logger.isEnabledFor(logging.INFO):
                self._log(model, duration, input_tokens, output_tokens, cost, organization, status,
                          time_to_first_token, request_id, user)  # fmt: skip
        except Exception:  # recording must never break the app's call; the count shows it happened
            self.errors += 1

    def _log(
        self,
        model: str,
        duration: float,
        input_tokens: int | None,
        output_tokens: int | None,
        cost: float | None,
        organization: str,
        status: str,
        ttft: float | None,
        request_id: str | None,
        user: str | None,
    ) -> None:
        trusted: dict[str, Any] = {
            "event": "model_inference",
            "status": status,
            "duration_ms": round(duration * 1000, 3),
        }
        for name, value in (
            ("input_tokens", input_tokens),
            ("output_tokens", output_tokens),
            ("cost", cost),
            ("time_to_first_token", ttft),
        ):
            if value is not None:
                trusted[name] = value
        fields: dict[str, Any] = {"model": model, "organization": organization}
        if user:
            fields["user"] = user
        extra: dict[str, Any] = {FIELDS_ATTR: fields, TRUSTED_ATTR: trusted}
        if request_id:
            extra[CONTEXT_ATTR] = {**context.get_context(), "request_id": request_id}
        level = logging.ERROR if status == c.ERROR else logging.INFO
        record = self.logger.makeRecord(
            self.logger.name,
            level,
            __file__,
            0,
            f"model_inference {model}",
            (),
            None,
            func="record_inference",
            extra=extra,
        )
        self.logger.handle(record)

    def flush(self) -> bool:
        return self.flusher.flush() if self.flusher is not None else True

    def close(self) -> None:
        if self.flusher is not None and self._started:
            self.flusher.stop(final_flush=True)


_default: InferenceRecorder | None = None
_default_lock = threading.Lock()


def configure_inference(
    service: str = "app", client: Any = ..., flush_interval: float = DEFAULT_FLUSH_INTERVAL, **options: Any
) -> InferenceRecorder:
    """Set the process-wide recorder ``record_inference`` uses (client: an AgentClient; None: keep in process)."""
    global _default
    if client is ...:
        from agent.sdk.client import AgentClient

        client = AgentClient()
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = InferenceRecorder(service, client, flush_interval, **options)
        return _default


def default_recorder() -> InferenceRecorder:
    global _default
    recorder = _default
    if recorder is None:
        with _default_lock:
            if _default is None:
                from agent.sdk.client import AgentClient

                _default = InferenceRecorder(client=AgentClient())
            recorder = _default
    return recorder


def record_inference(
    model: str,
    duration: float,
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    cost: float | None = None,
    organization: str = "",
    status: str = c.OK,
    time_to_first_token: float | None = None,
    request_id: str | None = None,
    user: str | None = None,
) -> None:
    """Count one inference in the process-wide recorder (see the module docstring)."""
    recorder = _default or default_recorder()
    recorder.record(
        model,
        duration,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost=cost,
        organization=organization,
        status=status,
        time_to_first_token=time_to_first_token,
        request_id=request_id,
        user=user,
    )


def usage_of(response: Any) -> tuple[int | None, int | None]:
    """Input and output tokens of an OpenAI/Anthropic-style response (dict or object), or (None, None)."""
    usage = _get(response, "usage")
    if usage is None:
        return None, None
    tokens_in = _get(usage, "prompt_tokens")
    if tokens_in is None:
        tokens_in = _get(usage, "input_tokens")
    tokens_out = _get(usage, "completion_tokens")
    if tokens_out is None:
        tokens_out = _get(usage, "output_tokens")
    return _count(tokens_in), _count(tokens_out)


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class InferenceCall:
    """One timed inference (``with inference(...) as call``); recorded when the block ends."""

    def __init__(
        self,
        model: str,
        organization: str = "",
        recorder: InferenceRecorder | None = None,
        request_id: str | None = None,
        user: str | None = None,
        cost: float | None = None,
    ) -> None:
        self.model = model
        self.organization = organization
        self.recorder = recorder
        self.request_id = request_id
        self.user = user
        self.cost = cost
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.status = c.OK
        self.start = 0.0
        self.first_token_at: float | None = None

    def first_token(self) -> None:
        """Mark the first token's arrival (the first one counts)."""
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def tokens(self, input: int | None = None, output: int | None = None) -> None:
        if input is not None:
            self.input_tokens = input
        if output is not None:
            self.output_tokens = output

    def set_response(self, response: Any) -> Any:
        """Read the token counts (and the model, when not given) from the response; return it."""
        tokens_in, tokens_out = usage_of(response)
        self.tokens(tokens_in, tokens_out)
        if not self.model:
            model = _get(response, "model")
            if isinstance(model, str) and model:
                self.model = model
        return response

    def __enter__(self) -> InferenceCall:
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        end = time.perf_counter()
        if exc_type is not None:
            self.status = c.ERROR
        ttft = None if self.first_token_at is None else self.first_token_at - self.start
        recorder = self.recorder or _default or default_recorder()
        recorder.record(
            self.model or "unknown",
            end - self.start,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost=self.cost,
            organization=self.organization,
            status=self.status,
            time_to_first_token=ttft,
            request_id=self.request_id,
            user=self.user,
        )

    async def __aenter__(self) -> InferenceCall:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.__exit__(exc_type, exc, tb)


def inference(
    model: str = "",
    *,
    organization: str = "",
    recorder: InferenceRecorder | None = None,
    request_id: str | None = None,
    user: str | None = None,
    cost: float | None = None,
) -> InferenceCall:
    """A context manager (sync or async) timing one inference; see InferenceCall."""
    return InferenceCall(model, organization, recorder, request_id, user, cost)


def track_inference(
    func: F | None = None,
    *,
    model: str = "",
    organization: str | Callable[..., str] = "",
    recorder: InferenceRecorder | None = None,
) -> Any:
    """Decorate a function returning a model response: time it, read its usage, record it.

    ``model`` empty: the response's ``model``. ``organization`` may be a callable given the
    call's arguments. An exception is recorded with status ``error`` and re-raised.
    """

    def decorate(target: F) -> F:
        def org_of(args: tuple, kwargs: dict) -> str:
            return organization(*args, **kwargs) if callable(organization) else organization

        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with InferenceCall(model, org_of(args, kwargs), recorder) as call:
                    return call.set_response(await target(*args, **kwargs))

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(target)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with InferenceCall(model, org_of(args, kwargs), recorder) as call:
                return call.set_response(target(*args, **kwargs))

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate
