"""Run the agent with ``python -m agent``."""

from __future__ import annotations

from agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
