"""fleetwatch-manage import_logs FILE [--organization SLUG] [--host H] [--service S]"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from collector_server.logs.importer import OrganizationNeeded, import_file, target_organization

MAX_REASONS_SHOWN = 1000


class Command(BaseCommand):
    help = "Import a JSON-lines log file (one JSON object per line) into the log store."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="path of the JSON-lines file ('-' reads standard input)")
        parser.add_argument("--host", help="host of every line (default: the line's host, else this machine)")
        parser.add_argument("--service", help="service of every line (default: each line's 'service')")
        parser.add_argument(
            "--organization",
            metavar="SLUG",
            help="organisation whose logs these are (required when more than one organisation exists)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            org_id = target_organization(options.get("organization"))
        except OrganizationNeeded as exc:
            raise CommandError(str(exc)) from None
        try:
            if path == "-":
                report = import_file(self.stdin_lines(), options["host"], options["service"], org_id)
            else:
                with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                    report = import_file(handle, options["host"], options["service"], org_id)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        for number, reason in report.rejected[:MAX_REASONS_SHOWN]:
            self.stderr.write(f"line {number}: rejected: {reason}")
        hidden = len(report.rejected) - MAX_REASONS_SHOWN
        if hidden > 0:
            self.stderr.write(f"... and {hidden} more rejected lines")
        self.stdout.write(f"imported {report.imported} lines, rejected {len(report.rejected)}")

    def stdin_lines(self) -> TextIO:
        return sys.stdin
