"""The SDK and the agent's log shipping must not pull Django (or the agent's collectors) into an app."""

from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_importing_the_sdk_and_log_shipping_loads_neither_django_nor_redis():
    code = (
        "import sys, agent.sdk, agent.logs, shared.jsonlog, shared.redaction; "
        "print(sorted(m for m in ('django', 'redis', 'psutil') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
