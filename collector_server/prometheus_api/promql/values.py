"""The values a PromQL expression evaluates to, over the evaluation steps of a query.

An instant query is a range query with one step. Every value holds one entry per step:
a scalar is a list of floats, an instant vector a list of series each with a list of
floats or None (no sample at that step).
"""

from __future__ import annotations

from dataclasses import dataclass, field

Labels = dict[str, str]
NAME = "__name__"


class PromQLError(ValueError):
    """A query Prometheus would refuse: `kind` is its errorType (bad_data, execution)."""

    def __init__(self, message: str, kind: str = "bad_data") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Steps:
    """The evaluation timestamps, in integer milliseconds."""

    start_ms: int
    end_ms: int
    step_ms: int

    @property
    def count(self) -> int:
        return (self.end_ms - self.start_ms) // self.step_ms + 1

    def times_ms(self) -> list[int]:
        return list(range(self.start_ms, self.end_ms + 1, self.step_ms))


@dataclass
class Series:
    labels: Labels
    values: list[float | None]


@dataclass
class Vector:
    series: list[Series] = field(default_factory=list)


@dataclass
class Scalar:
    values: list[float]


@dataclass
class String:
    value: str


@dataclass
class RangeSamples:
    """A range vector at a single instant (an instant query of `x[5m]`): raw samples per series."""

    series: list[tuple[Labels, list[tuple[int, float]]]]


Value = Vector | Scalar | String | RangeSamples


def signature(labels: Labels, names: list[str] | None, include: bool) -> tuple[tuple[str, str], ...]:
    """Return the identity of `labels` for matching: on/by (include) or ignoring/without the names."""
    if include:
        wanted = names or []
        return tuple((k, labels.get(k, "")) for k in sorted(wanted) if labels.get(k, ""))
    drop = set(names or []) | {NAME}
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def without_name(labels: Labels) -> Labels:
    return {k: v for k, v in labels.items() if k != NAME}
