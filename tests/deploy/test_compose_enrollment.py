"""The Compose stack's enroll-agent step, run for real: its script (as Compose resolves it) with
the real `fleetwatch-manage` against the test database, then the agent's own settings loader
reading what it wrote."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .test_compose import enroll_script

STATE_DIR = "/var/lib/fleetwatch-agent"
HOSTNAME_FILE = "/host/etc/hostname"


def run_enroll(script: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    from django.db import connection

    db = connection.settings_dict
    local = script.replace(STATE_DIR, str(tmp_path / "state")).replace(
        HOSTNAME_FILE, str(tmp_path / "hostname")
    )
    base = {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DEBUG": "true",
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "FLEETWATCH_AGENT_HOST": "",
        "FLEETWATCH_AGENT_ORGANIZATION": "",
        "FLEETWATCH_AGENT_CREDENTIAL": "",
    }
    return subprocess.run(
        ["/bin/sh", "-c", local], env=base | env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.django_db(transaction=True)
def test_the_enroll_step_enrolls_the_hosts_name_once_and_the_agent_reads_the_credential(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    from agent.config import load_config
    from collector_server.enrollments.models import Enrollment
    from tests.members import organization

    script = enroll_script(compose)
    (tmp_path / "hostname").write_text("compose-box-q7\n")
    acme = organization("acme-q7")
    try:
        first = run_enroll(script, tmp_path)
        assert first.returncode == 0, first.stderr
        credential = tmp_path / "state" / "credential"
        assert stat.S_IMODE(credential.stat().st_mode) == 0o600
        enrolled = Enrollment.objects.get(host_name="compose-box-q7")
        assert enrolled.organization.slug == "default"
        config = load_config(env={"FLEETWATCH_AGENT_STATE_DIR": str(tmp_path / "state")})
        assert config.credential is not None and config.credential.key_id == enrolled.key_id

        again = run_enroll(script, tmp_path)  # every later start: nothing enrolled again
        assert again.returncode == 0, again.stderr
        assert "already holds a credential" in again.stdout
        assert Enrollment.objects.filter(host_name="compose-box-q7").count() == 1

        # FLEETWATCH_AGENT_HOST and the organisation from .env; a fresh volume.
        other = tmp_path / "other"
        other.mkdir()
        (other / "hostname").write_text("ignored\n")
        named = run_enroll(
            script, other, FLEETWATCH_AGENT_HOST="box-env-q7", FLEETWATCH_AGENT_ORGANIZATION="acme-q7"
        )
        assert named.returncode == 0, named.stderr
        assert Enrollment.objects.get(host_name="box-env-q7").organization_id == acme.pk

        # An unknown organisation stops the step (and so the agent) naming it.
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "hostname").write_text("box-bad-q7\n")
        refused = run_enroll(script, bad, FLEETWATCH_AGENT_ORGANIZATION="nope-q7")
        assert refused.returncode != 0
        assert "nope-q7" in refused.stderr
        assert not (bad / "state" / "credential").exists()

        # A credential of one's own in .env: the step enrolls nothing.
        own = tmp_path / "own"
        own.mkdir()
        (own / "hostname").write_text("box-own-q7\n")
        skipped = run_enroll(script, own, FLEETWATCH_AGENT_CREDENTIAL="abc.def")
        assert skipped.returncode == 0, skipped.stderr
        assert not Enrollment.objects.filter(host_name="box-own-q7").exists()
    finally:
        Enrollment.objects.filter(host_name__endswith="-q7").delete()
        acme.delete()
