"""A breach on a freshly ingested metric does not wait behind a long periodic cycle.

The periodic job passes ``alert_trigger.run_if_requested`` to ``evaluate_all`` as ``between``:
between the selections of the cycle, the rules on metrics ingest has just written are
evaluated at once, across organisations, whatever organisation the cycle is on.
"""

from __future__ import annotations

from django.utils import timezone

from alerting_worker.alerting import evaluate
from alerting_worker.ingest import alert_trigger
from collector_server.alerts.models import Alert, AlertRule, Notification
from collector_server.orgs import scope
from tests.alerting.conftest import disable_seeded_rules
from tests.members import organization


def make_rule(name: str, metric: str, threshold: float) -> AlertRule:
    rule = AlertRule(
        name=name,
        query={"metric": metric, "aggregation": "max", "window": 60, "group_by": ["host"]},
        threshold=threshold,
        for_seconds=0,
    )
    rule.full_clean()
    rule.save()
    return rule


def firing(rule: AlertRule) -> list[str]:
    return sorted(a.labels_key for a in Alert.objects.filter(rule=rule, state=Alert.FIRING))


def test_between_runs_after_every_selection_and_the_fast_path_takes_the_ingested_names(
    db, metrics, redis_client
):
    disable_seeded_rules()
    now = timezone.now()
    rules = [make_rule(f"background {i}", f"background_{i}", 1000) for i in range(3)]
    target = make_rule("target", "target_metric", 90)
    for i in range(3):
        metrics.gauge(f"background_{i}", now, 5, host="h1")
    metrics.gauge("target_metric", now, 99, host="h1")
    alert_trigger.notify(redis_client, {"target_metric"})
    assert alert_trigger.requested(redis_client)

    seen_firing: list[list[str]] = []

    def between() -> None:
        alert_trigger.run_if_requested()
        seen_firing.append(firing(target))

    stats = evaluate.evaluate_all(now, between=between)

    assert stats.rules == len(rules) + 1
    assert len(seen_firing) >= 4  # one call after each of the four selections' scans
    # The fast path ran at the first opportunity, before the cycle reached the target rule itself.
    assert seen_firing[0] == ["host=h1"]
    assert not alert_trigger.requested(redis_client)
    assert alert_trigger.take(redis_client) == []
    assert firing(target) == ["host=h1"]


def test_the_fast_path_inside_a_cycle_sees_every_organisation_and_delivers_at_once(
    db, metrics, redis_client, webhook_channel
):
    """No notifications worker runs here: the webhook is posted by the fast path itself."""
    channel, receiver = webhook_channel
    disable_seeded_rules()
    now = timezone.now()
    target = make_rule("target", "target_metric", 90)  # the default organisation's rule
    target.channels.add(channel)
    metrics.gauge("target_metric", now, 99, host="h1")
    alert_trigger.notify(redis_client, {"target_metric"})
    other = organization("another-org")
    with scope.use_organization(other.pk):  # where a cycle working on another organisation stands
        result = alert_trigger.run_if_requested()
    assert result is not None and result["rules"] == 1 and result["notifications"] == 1
    assert firing(target) == ["host=h1"]
    posted = receiver.wait(1, timeout=5)
    assert len(posted) == 1
    assert [a["labels"]["alertname"] for a in posted[0].body["alerts"]] == ["target"]
    assert Notification.objects.get().status == Notification.SENT
    assert alert_trigger.run_if_requested() is None  # nothing asked any more: one GET, no evaluation
