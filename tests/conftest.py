"""Shared fixtures: real Postgres and real Redis, isolated per test session.

Concurrent test sessions on one machine stay apart by setting
FLEETWATCH_TEST_DB_SUFFIX (the test database name) and FLEETWATCH_TEST_REDIS_DB
(the Redis database number, flushed at the start of each test).
"""

from __future__ import annotations

import os
import uuid

import pytest
import redis as redis_lib

TEST_REDIS_DB = int(os.environ.get("FLEETWATCH_TEST_REDIS_DB", "15"))
TEST_DB_SUFFIX = os.environ.get("FLEETWATCH_TEST_DB_SUFFIX", "main")
# Tests push unsigned batches unless they opt in (settings.REQUIRE_SIGNED_BATCHES, or this
# variable in a started process's environment); the settings default is the same under pytest.
os.environ.setdefault("FLEETWATCH_REQUIRE_SIGNED_BATCHES", "false")
# The machine's shared Redis keeps no append-only file: the processes the tests start (which
# copy this environment) must not report it as degraded. Tests of that report clear it.
os.environ.setdefault("FLEETWATCH_ALLOW_VOLATILE_REDIS", "true")
# Tests contact only receivers on loopback, which the egress guard refuses unless allowed
# (docs/security.md); processes a test starts inherit the variable.
LOOPBACK_TARGETS = "127.0.0.1/32,::1/128"
os.environ.setdefault("FLEETWATCH_ALLOWED_TARGETS", LOOPBACK_TARGETS)
# Processes a test starts run with DEBUG off, where ALLOWED_HOSTS is required.
os.environ.setdefault("ALLOWED_HOSTS", "*")


@pytest.fixture(scope="session", autouse=True)
def volatile_redis_allowed():
    """Settings were read before this file: opt out of the durability check for the whole session."""
    from django.conf import settings

    settings.ALLOW_VOLATILE_REDIS = True


@pytest.fixture(scope="session", autouse=True)
def _loopback_targets_allowed():
    from django.test import override_settings

    with override_settings(FLEETWATCH_ALLOWED_TARGETS=LOOPBACK_TARGETS.split(",")):
        yield


@pytest.fixture(scope="session")
def django_db_modify_db_settings():
    from django.conf import settings

    settings.DATABASES["default"]["TEST"]["NAME"] = f"test_fleetwatch_{TEST_DB_SUFFIX}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    return f"redis://127.0.0.1:6379/{TEST_REDIS_DB}"


@pytest.fixture
def redis_client(redis_url, settings):
    """A client on the test Redis database, flushed before the test; settings point at it."""
    from collector_server import redis_conn
    from shared import streams

    client = redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    prefix = f"fwtest-{uuid.uuid4().hex[:8]}"
    settings.REDIS_URL = redis_url
    settings.STREAM_PREFIX = prefix
    old_env = os.environ.get("FLEETWATCH_STREAM_PREFIX")
    os.environ["FLEETWATCH_STREAM_PREFIX"] = prefix
    redis_conn._client.cache_clear()
    assert streams.prefix() == prefix
    yield client
    if old_env is None:
        os.environ.pop("FLEETWATCH_STREAM_PREFIX", None)
    else:
        os.environ["FLEETWATCH_STREAM_PREFIX"] = old_env
    redis_conn._client.cache_clear()
    client.close()


@pytest.fixture
def partitions(db):
    """Make sure the partitions around today exist for a test using the database."""
    from collector_server.monitoring import partitions as parts

    parts.forget_cache()
    parts.ensure_ahead(days_ahead=2)
    yield parts
    parts.forget_cache()
