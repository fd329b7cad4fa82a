"""python -m collector_server server|migrate|manage|local [...]"""

import sys

from collector_server.cli import manage_main, migrate_main, server_main

if __name__ == "__main__":
    command, *rest = sys.argv[1:] or ["server"]
    if command == "local":
        from collector_server.localstack import main as local_main

        sys.exit(local_main(rest))
    commands = {"server": server_main, "migrate": migrate_main, "manage": manage_main}
    if command not in commands:
        sys.exit(f"usage: python -m collector_server {{server|migrate|manage|local}} [...] (got {command!r})")
    sys.exit(commands[command](rest))
