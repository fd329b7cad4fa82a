"""Forged RQ jobs, written the way an attacker with Redis access would, run nothing on a real worker."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rq.registry import FailedJobRegistry

from alerting_worker import jobs_guard
from alerting_worker.ingest import stats
from alerting_worker.queues import ALL_QUEUES
from collector_server.monitoring import prometheus
from tests.ingest.test_processes import ROOT, process_env

FORGED_FUNCTIONS = ("os.system", "subprocess.call", "builtins.eval", "evilmod.run")


class PickleBomb:
    """Unpickling this runs its command: what a pickled forged job really carries."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def forge(client, queue: str, job_id: str, data: bytes, **extra: str) -> None:
    """HSET rq:job:<id> and RPUSH rq:queue:<name>: all an attacker needs."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fields = {
        "data": data,
        "origin": queue,
        "status": "queued",
        "created_at": stamp,
        "enqueued_at": stamp,
        "description": "forged",
        "timeout": "60",
        **extra,
    }
    client.hset(f"rq:job:{job_id}", mapping=fields)
    client.rpush(f"rq:queue:{queue}", job_id)
    client.sadd("rq:queues", f"rq:queue:{queue}")


def forged_jobs(client, marker: Path) -> dict[str, list[str]]:
    """Every kind of forged job in every queue; return the job ids per queue."""
    touch = f"touch {marker}"
    ids: dict[str, list[str]] = {}
    for queue in ALL_QUEUES:
        jobs = {
            f"{queue}-pickle-bomb": pickle.dumps(PickleBomb(touch)),
            f"{queue}-pickle-call": pickle.dumps(("os.system", None, (touch,), {})),
        }
        for func in FORGED_FUNCTIONS:
            args = [f"__import__('os').system({touch!r})"] if func == "builtins.eval" else [touch]
            jobs[f"{queue}-json-{func.replace('.', '-')}"] = json.dumps([func, None, args, {}]).encode()
        # An allowed function that fails: a failure callback the job names must not be imported.
        jobs[f"{queue}-json-callback"] = json.dumps(
            ["alerting_worker.ingest.jobs.drain", None, ["no-such-stream"], {}]
        ).encode()
        for job_id, data in jobs.items():
            extra = {"failure_callback_name": "evilmod.run"} if job_id.endswith("callback") else {}
            forge(client, queue, job_id, data, **extra)
        ids[queue] = list(jobs)
    return ids


@pytest.mark.django_db
def test_forged_pickle_and_json_jobs_in_every_queue_run_nothing(redis_client, redis_url, tmp_path):
    marker = tmp_path / "marker"
    # A module that proves an import: importing it creates the marker too.
    (tmp_path / "evilmod.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\n\ndef run(*a, **k):\n    open({str(marker)!r}, 'w').write('ran')\n"
    )
    ids = forged_jobs(redis_client, marker)
    env = process_env(redis_url)
    env["PYTHONPATH"] = f"{tmp_path}:{ROOT}"
    proc = subprocess.run(
        [sys.executable, "-m", "alerting_worker", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert not marker.exists(), log
    total = 0
    for queue, job_ids in ids.items():
        failed = set(FailedJobRegistry(queue, connection=redis_client).get_job_ids())
        assert failed == set(job_ids), (queue, log)
        total += len(job_ids)
    refused = total - len(ids)  # the callback jobs failed on their own, not refused
    assert stats.read(redis_client)[jobs_guard.REFUSED_COUNTER] == refused
    assert "not in the allow-list" in log and "not JSON" in log
    families = {f.name: f for f in prometheus.redis_families(redis_client)}
    assert families["fleetwatch_jobs_refused_total"].samples == [({}, refused)]


def test_allowed_function_is_imported_and_a_forged_name_is_not(redis_client):
    queue = jobs_guard.get_queue("maintenance", redis_client)
    good = queue.enqueue("alerting_worker.maintenance.upkeep.trim_streams")
    raw = redis_client.hget(f"rq:job:{good.id}", "data")
    assert json.loads(zlib.decompress(raw))[0] == good.func_name  # stored as (zlib'd) JSON
    assert callable(good.func)
    forged = queue.enqueue("os.system", "true")
    with pytest.raises(jobs_guard.ForbiddenJob, match="not in the allow-list"):
        forged.func  # noqa: B018 - the property is the check
