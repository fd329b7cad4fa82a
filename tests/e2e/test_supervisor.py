"""`make up` (fleetwatch-local): a process that dies is restarted, with backoff, and its log says so."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from collector_server.localstack import ROOT, Stack, Supervisor
from tests.ingest.own_servers import wait_until


class CrashingStack(Stack):
    """Every process exits at once with code 3."""

    def command(self, name: str) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.exit(3)"]


def test_a_dead_process_is_restarted_with_growing_delays(tmp_path: Path):
    supervisor = Supervisor(CrashingStack(var=tmp_path, env=dict(os.environ)), ("worker",))
    supervisor._start("worker")
    now, delays = 1000.0, []
    for _ in range(4):
        supervisor.stack.procs["worker"].wait(timeout=30)
        supervisor.check(now)  # notices the exit: schedules the restart
        delays.append(supervisor.restart_at["worker"] - now)
        supervisor.check(now + 0.5)  # not yet
        assert "worker" in supervisor.restart_at
        now = supervisor.restart_at["worker"]
        supervisor.check(now)  # restarts it
    assert delays == [1.0, 2.0, 4.0, 8.0]  # backoff, not a hot loop
    log = (tmp_path / "log" / "worker.log").read_text()
    assert log.count("exited with code 3; restarting in") == 4
    assert "restarted worker as pid" in log and "(restart 4)" in log
    supervisor.stack.stop()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_fleetwatch_local_restarts_a_killed_scheduler(tmp_path: Path, redis_client, redis_url):
    db = connection.settings_dict
    env = dict(
        os.environ,
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        REDIS_URL=redis_url,
        LOG_FORMAT="text",
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "collector_server.localstack", "supervise", "--var", str(tmp_path), "--processes", "scheduler"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pid_file = tmp_path / "run" / "scheduler.pid"
    try:
        wait_until(pid_file.exists, 30, "the scheduler to start")
        first = int(pid_file.read_text())
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: int(pid_file.read_text()) != first, 30, "the scheduler to be restarted")
        second = int(pid_file.read_text())
        os.kill(second, 0)  # running
        log = (tmp_path / "log" / "scheduler.log").read_text()
        assert f"scheduler (pid {first}) exited with code -9; restarting in 1s" in log
        assert f"restarted scheduler as pid {second} (restart 1)" in log
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(timeout=60)
    assert supervisor.returncode == 0
    # The supervisor stopped (and reaped) its scheduler before exiting.
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)
