"""A server process exempts its loaded application from garbage collection (collector_server.gc_tuning)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_loading_the_wsgi_application_freezes_what_start_up_created():
    env = dict(
        os.environ, DJANGO_SETTINGS_MODULE="collector_server.settings", DEBUG="true", LOG_LEVEL="WARNING"
    )
    code = "import gc; import collector_server.wsgi; print(gc.get_freeze_count(), gc.isenabled())"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    frozen, enabled = out.stdout.split()
    # Django, DRF and the project's modules: tens of thousands of objects, none collected again;
    # the collector itself stays on for what requests create.
    assert int(frozen) > 20_000 and enabled == "True"
