"""Import a JSON-lines log file (the JSONFormatter format) into logs_entry.

Each line is one JSON object: timestamp (ISO 8601, or seconds since 1970), level,
logger, message, module, function, line, thread, process and any extra fields.
Lines that cannot be stored are reported with their number and the reason.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from django.db import connection, transaction

from collector_server.logs import writer
from collector_server.logs.records import RecordRejected, Row, Window, to_row
from collector_server.orgs.scope import default_organization_id

CHUNK_ROWS = 10_000
TIMESTAMP_FIELDS = ("timestamp", "ts", "time", "@timestamp", "asctime")
LEVEL_FIELDS = ("level", "levelname", "severity")
MESSAGE_FIELDS = ("message", "msg")


@dataclass
class ImportReport:
    imported: int = 0
    blank: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


def parse_line(text: str, host: str | None, service: str | None) -> dict[str, Any]:
    """Return the wire-format record of one JSON line; raise RecordRejected saying why not."""
    try:
        entry = json.loads(text)
    except ValueError as exc:
        raise RecordRejected(f"not valid JSON: {exc}") from None
    if not isinstance(entry, dict):
        raise RecordRejected(f"expected a JSON object, got {type(entry).__name__}")
    record = {k: v for k, v in entry.items() if k not in TIMESTAMP_FIELDS + LEVEL_FIELDS + MESSAGE_FIELDS}
    record["ts"] = _seconds(_first(entry, TIMESTAMP_FIELDS, "timestamp"))
    record["level"] = _first(entry, LEVEL_FIELDS, "level")
    record["message"] = _first(entry, MESSAGE_FIELDS, "message")
    if host:
        record["host"] = host
    if service:
        record["service"] = service
    return record


def _first(entry: dict[str, Any], names: tuple[str, ...], label: str) -> Any:
    for name in names:
        if name in entry:
            return entry[name]
    raise RecordRejected(f"missing {label} (looked for {', '.join(names)})")


def _seconds(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise RecordRejected(f"timestamp must be ISO 8601 text or seconds since 1970, got {value!r}")
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        raise RecordRejected(f"timestamp {value!r} is not ISO 8601") from None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def import_lines(
    lines: Iterable[str],
    host: str | None = None,
    service: str | None = None,
    window: Window | None = None,
    organization_id: int | None = None,
) -> ImportReport:
    """Store every valid line in ``organization_id`` (default: the default organisation),
    CHUNK_ROWS per transaction; report rejected lines by number."""
    report = ImportReport()
    window = window or writer.current_window()
    fallback_host = socket.gethostname()
    org_text = str(organization_id if organization_id is not None else default_organization_id())
    pending: list[Row] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            report.blank += 1
            continue
        try:
            row = to_row(parse_line(text, host, service), fallback_host, window, org_text)
        except RecordRejected as exc:
            report.rejected.append((number, str(exc)))
            continue
        pending.append(row)
        if len(pending) >= CHUNK_ROWS:
            report.imported += _store(pending)
            pending = []
    report.imported += _store(pending)
    return report


def _store(rows: list[Row]) -> int:
    if not rows:
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        return writer.copy_rows(cursor.cursor, rows)


def import_file(
    handle: IO[str], host: str | None = None, service: str | None = None, organization_id: int | None = None
) -> ImportReport:
    return import_lines(handle, host, service, organization_id=organization_id)


class OrganizationNeeded(ValueError):
    """The organisation to import into cannot be decided: the message names --organization."""


def target_organization(slug: str | None) -> int:
    """The id of organisation ``slug``; without one, of the only organisation there is.

    With more than one organisation, importing into the default one by accident would show a
    tenant's logs to another: the slug is required then.
    """
    from collector_server.orgs.models import Organization

    slugs = sorted(Organization.objects.values_list("slug", flat=True))
    if slug:
        found = Organization.objects.filter(slug=slug).values_list("pk", flat=True).first()
        if found is None:
            raise OrganizationNeeded(
                f"no organisation {slug!r} (--organization): valid slugs are {', '.join(slugs) or 'none'}"
            )
        return found
    if len(slugs) > 1:
        raise OrganizationNeeded(
            f"there are {len(slugs)} organisations: name the one to import into with "
            f"--organization SLUG (one of: {', '.join(slugs)})"
        )
    return default_organization_id()
