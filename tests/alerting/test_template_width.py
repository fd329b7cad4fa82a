"""Format widths and precisions in annotation templates are capped, at validation and at render time."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from alerting_worker.alerting.evaluate import render
from collector_server.alerts.format_spec import MAX_FORMAT_WIDTH
from collector_server.alerts.models import AlertRule


def rule(summary: str) -> AlertRule:
    return AlertRule(
        name="wide", query={"metric": "cpu", "window": 60}, threshold=1, annotations={"summary": summary}
    )


@pytest.mark.parametrize(
    "template,part",
    [
        ("{value:>900000000}", "width 900000000"),
        ("{value:.65f}", "precision 65"),
        ("{host:x<65}", "width 65"),
    ],
)
def test_a_width_or_precision_over_the_cap_is_refused_naming_it(db, template, part):
    with pytest.raises(ValidationError) as raised:
        rule(template).full_clean()
    assert f"format {part}" in raised.value.message_dict["annotations"][0]


def test_widths_up_to_the_cap_are_accepted(db):
    rule(f"{{value:>{MAX_FORMAT_WIDTH}.{MAX_FORMAT_WIDTH}f}} {{host:*^10}}").full_clean()


def test_a_width_slipping_through_a_nested_spec_is_clamped_at_render_time():
    text = render("[{value:>{width}}]", {"width": "900000000"}, 1.5)
    assert text == "[" + "1.5".rjust(MAX_FORMAT_WIDTH) + "]"
    assert len(render("{value:.900f}", {}, 1.0)) == len(f"{1.0:.{MAX_FORMAT_WIDTH}f}")
