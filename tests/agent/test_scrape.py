"""The agent scrapes Prometheus exporters listed as [[scrape]] in its config."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from agent.scrape.config import ScrapeTarget, scrape_targets
from agent.scrape.scraper import Scraper
from shared.config import ConfigError
from shared.wire import decode_batch
from tests.agent.conftest import agent_env, free_port, wait_until

PREFIX = "scrape"
STREAM = f"{PREFIX}:stream:metrics"


@pytest.fixture
def exporter() -> Iterator[str]:
    """A real exporter: prometheus_client's HTTP server over a registry of our own."""
    registry = CollectorRegistry()
    Counter("shop_orders", "Orders placed.", ["method"], registry=registry).labels("card").inc(7)
    Gauge("shop_queue_depth", "Jobs waiting.", ["host"], registry=registry).labels("worker-9").set(3)
    Histogram("shop_latency_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry).observe(0.5)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    thread.join(timeout=5)


def target(url: str, **extra) -> ScrapeTarget:
    return scrape_targets({"scrape": [{"url": url, "name": "shop", "labels": {"service": "shop"}, **extra}]})[
        0
    ]


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"url": "ftp://x/metrics"}, "url"),
        ({"url": "http://x/metrics", "interval": 1, "timeout": 5}, "timeout"),
        ({"url": "http://x/metrics", "labels": {"host": "a"}}, "'host'"),
        ({"url": "http://x/metrics", "interval": "soon"}, "interval"),
        ({"url": "http://x/metrics", "scrape_interval": 5}, "scrape_interval"),
    ],
)
def test_bad_scrape_tables_are_refused_naming_the_key(table, named):
    with pytest.raises(ConfigError, match=named):
        scrape_targets({"scrape": [table]})


def test_a_scrape_ships_every_sample_with_its_kind_and_the_target_labels(exporter):
    sent: list[bytes] = []
    scraper = Scraper([target(exporter)], "agent-1", "web-1", lambda b: sent.append(b) or True)
    assert scraper.scrape(scraper.targets[0])
    batch = decode_batch(sent[0])
    assert batch.agent_id == "agent-1/scrape"
    assert batch.host == "web-1"
    by_name = {(s.name, tuple(sorted(s.labels.items()))): s for s in batch.series}
    orders = by_name[
        (
            "shop_orders_total",
            (("instance", exporter.split("/")[2]), ("job", "shop"), ("method", "card"), ("service", "shop")),
        )
    ]
    assert orders.type == "counter"
    assert orders.points[0][1] == 7
    queue = next(s for s in batch.series if s.name == "shop_queue_depth")
    assert queue.type == "gauge"
    assert queue.labels["exported_host"] == "worker-9"
    buckets = [s for s in batch.series if s.name == "shop_latency_seconds_bucket"]
    assert sorted(s.labels["le"] for s in buckets) == ["+Inf", "0.1", "1.0"]
    assert all(s.type == "counter" for s in buckets)
    health = {(s["name"]): s["points"][0][1] for s in scraper.health_series(1.0)}
    assert health["agent_scrape_up"] == 1.0
    assert health["agent_scrape_samples"] == len(batch.series)
    assert health["agent_scrape_errors_total"] == 0.0


def test_an_unreachable_target_is_down_and_counted_not_fatal():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    scraper = Scraper([target(f"http://127.0.0.1:{port}/metrics", timeout=1)], "a", "h", lambda b: True)
    assert not scraper.scrape(scraper.targets[0])
    assert not scraper.scrape(scraper.targets[0])
    health = {s["name"]: s["points"][0][1] for s in scraper.health_series(1.0)}
    assert health["agent_scrape_up"] == 0.0
    assert health["agent_scrape_errors_total"] == 2.0


@pytest.mark.slow
def test_the_agent_process_scrapes_a_test_exporter(tmp_path, state_dir, private_redis, start_agent, exporter):
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[logs]\nsocket_enabled = false\n\n[[scrape]]\nurl = "{exporter}"\nname = "shop"\ninterval = 0.2\n'
    )
    env = agent_env(
        state_dir,
        private_redis.url,
        FLEETWATCH_AGENT_CONFIG=str(config),
        FLEETWATCH_STREAM_PREFIX=PREFIX,
        FLEETWATCH_AGENT_INTERVAL="0.2",
        FLEETWATCH_AGENT_COLLECTORS="load",
    )
    agent = start_agent(env)

    def batches():
        return [decode_batch(f[b"b"]) for _, f in private_redis.client().xrange(STREAM)]

    def scraped():
        found = [b for b in batches() if b.agent_id.endswith("/scrape")]
        return found if len(found) >= 2 else None

    scrapes = wait_until(scraped, timeout=20)
    assert any(s.name == "shop_orders_total" and s.labels["job"] == "shop" for s in scrapes[0].series)
    assert [b.seq for b in scrapes[:2]] == [0, 1]

    def counted():
        for b in batches():
            for s in b.all_series():  # the agent's own batches are wire version 2
                if s.name == "agent_scrape_up" and s.points[0][1] == 1.0:
                    return s
        return None

    assert wait_until(counted, timeout=20).labels == {"target": "shop", "instance": exporter.split("/")[2]}
    code, stderr = agent.stop()
    assert code == 0, stderr
