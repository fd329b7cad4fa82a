"""Outside the tests, workers require signed batches unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.ingest.test_processes import ROOT

READ = (
    "import django; django.setup(); from django.conf import settings; print(settings.REQUIRE_SIGNED_BATCHES)"
)


def require_signed(**env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k != "FLEETWATCH_REQUIRE_SIGNED_BATCHES"}
    base.update(DJANGO_SETTINGS_MODULE="collector_server.settings", SECRET_KEY="x", **env)
    proc = subprocess.run([sys.executable, "-c", READ], cwd=ROOT, env=base, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_signed_batches_are_required_by_default_and_can_be_turned_off():
    assert require_signed() == "True"
    assert require_signed(FLEETWATCH_REQUIRE_SIGNED_BATCHES="false") == "False"
