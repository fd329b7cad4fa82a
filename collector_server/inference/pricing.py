"""Prices in force at a time: cost = input tokens / 1000 x input price + output tokens / 1000 x output price."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from collector_server.inference.models import ModelPrice


@dataclass(frozen=True)
class Price:
    valid_from: float  # unix seconds
    input_per_1k: float
    output_per_1k: float


class PriceTable:
    """The price history of some models in the active scope, looked up by time."""

    def __init__(self, models: list[str] | None = None) -> None:
        rows = ModelPrice.objects.all()
        if models is not None:
            rows = rows.filter(model__in=models)
        self.prices: dict[str, list[Price]] = {}
        for row in rows.order_by("model", "valid_from"):
            self.prices.setdefault(row.model, []).append(
                Price(row.valid_from.timestamp(), float(row.input_per_1k), float(row.output_per_1k))
            )
        self._starts = {m: [p.valid_from for p in ps] for m, ps in self.prices.items()}

    def at(self, model: str, ts: float) -> Price | None:
        """The price of ``model`` valid at ``ts``, None when the table has none yet."""
        starts = self._starts.get(model)
        if not starts:
            return None
        index = bisect_right(starts, ts) - 1
        return self.prices[model][index] if index >= 0 else None

    def cost(self, model: str, ts: float, input_tokens: float, output_tokens: float) -> float | None:
        price = self.at(model, ts)
        if price is None:
            return None
        return input_tokens / 1000.0 * price.input_per_1k + output_tokens / 1000.0 * price.output_per_1k
