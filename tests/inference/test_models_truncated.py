"""GET /api/v1/monitoring/models says when it read only part of the series (figures.MAX_SERIES)."""

from __future__ import annotations

import logging

import pytest

from collector_server.inference import figures
from tests.inference.conftest import drain

MODELS = "/api/v1/monitoring/models"


@pytest.mark.django_db(transaction=True)
def test_the_models_answer_says_truncated_when_the_series_limit_is_hit(
    operator, viewer, redis_client, monkeypatch, caplog
):
    for model in ("a", "b", "c"):
        body = {"model": model, "duration": 100, "input_tokens": 5, "cost": 0.01}
        assert operator.post("/api/v1/monitoring/inference", body, format="json").status_code == 202
    drain(redis_client)
    whole = viewer.get(MODELS, {"hours": 1}).json()
    assert whole["truncated"] is False and whole["count"] == 3

    monkeypatch.setattr(figures, "MAX_SERIES", 20)  # one model has 14 counter series, three 42
    monkeypatch.setattr(figures, "_logged_truncation", False)
    caplog.set_level(logging.WARNING, logger=figures.__name__)
    logger = logging.getLogger(figures.__name__)
    monkeypatch.setattr(logger, "propagate", True)
    for _ in range(2):
        cut = viewer.get(MODELS, {"hours": 1}).json()
        assert cut["truncated"] is True
    warnings = [r for r in caplog.records if r.name == figures.__name__ and "truncated" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # logged once, said every time
    assert "20 series" in warnings[0].getMessage()

    # Narrowed below the limit: whole again.
    narrow = viewer.get(MODELS, {"hours": 1, "model": "a"}).json()
    assert narrow["truncated"] is False and narrow["models"][0]["requests"] == 1


def test_the_schema_documents_truncated():
    from collector_server.inference.api.serializers import ModelsAnswerSerializer

    field = ModelsAnswerSerializer().fields["truncated"]
    assert "50,000" in field.help_text
