"""python -m alerting_worker worker|scheduler [...]"""

import sys

from alerting_worker.cli import scheduler_main, worker_main

if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["worker"]
    commands = {"worker": worker_main, "scheduler": scheduler_main}
    if command not in commands:
        sys.exit(f"usage: python -m alerting_worker {{worker|scheduler}} [options] (got {command!r})")
    sys.exit(commands[command](rest))
