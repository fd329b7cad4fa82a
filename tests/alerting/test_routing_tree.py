"""The routing tree with Alertmanager's semantics, and rules' channel lists kept as generated routes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from alerting_worker.alerting import dispatch
from collector_server.alerts.matchers import labels_key
from collector_server.alerts.models import Alert, AlertRule, Channel, Notification, Route

pytestmark = pytest.mark.django_db


def channel(name: str, **extra) -> Channel:
    return Channel.objects.create(
        name=name, kind="webhook", config={"url": f"http://127.0.0.1:9/{name}"}, **extra
    )


def firing(name: str, at, **labels: str) -> Alert:
    return Alert.objects.create(
        name=name,
        labels={"alertname": name, **labels},
        labels_key=labels_key(labels),
        severity="high",
        state="firing",
        started_at=at,
        fired_at=at,
    )


def told(since_id: int = 0) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for note in Notification.objects.filter(pk__gt=since_id).select_related("channel").order_by("pk"):
        out.setdefault(note.channel.name, []).append(note.payload)
    return out


def route(parent: Route | None, matchers=None, **fields) -> Route:
    r = Route(parent=parent, matchers=matchers or [], **fields)
    r.full_clean()
    r.save()
    return r


def test_tree_routes_like_alertmanager(now, django_capture_on_commit_callbacks):
    ops, db, pager, web, prod = (channel(n) for n in ("ops", "db", "db-pager", "web", "prod"))
    with django_capture_on_commit_callbacks(execute=True):
        root = route(None, channel=ops, group_wait_seconds=0, name="root")
        team_db = route(
            root,
            [{"name": "team", "op": "=", "value": "db"}],
            channel=db,
            group_by=["alertname", "host"],
            group_wait_seconds=60,
            position=0,
        )
        route(team_db, [{"name": "severity", "op": "=", "value": "critical"}], channel=pager)
        route(
            root,
            [{"name": "service", "op": "=~", "value": "api|web"}],
            channel=web,
            continue_matching=True,
            position=1,
        )
        route(root, [{"name": "env", "op": "=", "value": "prod"}], channel=prod, position=2)
    firing("DiskFull", now, team="db", host="db-1", severity="high")
    firing("Replication", now, team="db", severity="critical")
    firing("Latency", now, service="api", env="prod")
    firing("Other", now)

    dispatch.dispatch_all(now)
    first = told()
    # group_wait 0 on the root (inherited by web and prod); 60 s on team=db and its child.
    assert sorted(first) == ["ops", "prod", "web"]
    assert [a["labels"]["alertname"] for a in first["ops"][0]["alerts"]] == ["Other"]
    assert first["web"][0]["groupKey"] == '{}/{service=~"api|web"}:{alertname="Latency"}'
    assert first["prod"][0]["groupKey"] == '{}/{env="prod"}:{alertname="Latency"}'

    last = Notification.objects.order_by("-pk").first().pk
    dispatch.dispatch_all(now + timedelta(seconds=60))
    later = told(last)
    assert sorted(later) == ["db", "db-pager"]  # the first match without continue stops the walk
    assert later["db"][0]["groupKey"] == '{}/{team="db"}:{alertname="DiskFull", host="db-1"}'
    assert (
        later["db-pager"][0]["groupKey"] == '{}/{team="db"}/{severity="critical"}:{alertname="Replication"}'
    )


def test_rules_channel_lists_become_generated_routes_with_the_same_effect(
    now, django_capture_on_commit_callbacks
):
    a, b, _default = (
        channel("a", group_wait_seconds=0),
        channel("b", group_wait_seconds=0),
        channel("d", group_wait_seconds=0, is_default=True),
    )
    with_channels = AlertRule.objects.create(name="with channels", query={"metric": "cpu"}, threshold=1)
    without = AlertRule.objects.create(name="without", query={"metric": "cpu"}, threshold=1)
    with_channels.channels.add(a, b)
    for alert in (
        firing("with channels", now, host="x"),
        firing("without", now, host="x"),
        firing("manual", now),
    ):
        alert.rule = {"with channels": with_channels, "without": without}.get(alert.name)
        alert.save()
    dispatch.dispatch_all(now)
    legacy = {
        name: sorted(x["labels"]["alertname"] for p in payloads for x in p["alerts"])
        for name, payloads in told().items()
    }
    Notification.objects.all().delete()
    from collector_server.alerts.models import NotificationGroup

    NotificationGroup.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=True):
        route(None, name="root")  # turning the tree on generates the routes
    generated = list(Route.objects.filter(generated=True).order_by("position"))
    assert [(r.name, r.continue_matching) for r in generated] == [
        ("rule with channels → a", True),
        ("rule with channels → b", False),
        ("default channel d", True),
    ]
    dispatch.dispatch_all(now)
    routed = {
        name: sorted(x["labels"]["alertname"] for p in payloads for x in p["alerts"])
        for name, payloads in told().items()
    }
    assert routed == legacy == {"a": ["with channels"], "b": ["with channels"], "d": ["manual", "without"]}

    with django_capture_on_commit_callbacks(execute=True):
        with_channels.channels.remove(b)  # editing a rule's channels still works
    assert list(Route.objects.filter(generated=True, channel=b)) == []


def test_second_root_and_root_matchers_are_refused():
    route(None, name="root")
    with pytest.raises(Exception, match="already a root"):
        route(None, name="another")
    with pytest.raises(Exception, match="takes no matchers"):
        Route(matchers=[{"name": "a", "op": "=", "value": "b"}]).clean()
