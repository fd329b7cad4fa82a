"""Search stored log records with filters and keyset (cursor) pagination.

Pages are ordered by (ts, id) and continue from the last row of the previous page
(``WHERE (ts, id) < (last_ts, last_id)``), so page 1,000 costs what page 1 costs.
The cursor token is opaque to clients: base64 of the last row's ts, id and the order.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import DataError, OperationalError, transaction
from django.http import QueryDict
from rest_framework.exceptions import APIException

from collector_server.logs import deferred_index, levels, regex_need, words
from collector_server.logs.api import params
from collector_server.monitoring import statement_timeout
from collector_server.monitoring.api import known_params
from collector_server.monitoring.api.errors import BadParameter
from collector_server.orgs import scope
from collector_server.replica import read_connection as connection  # the replica on API reads

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_PATTERN_CHARS = 1000
SEARCH_TIMEOUT_MS = 30_000
WORDS_WINDOW_MIN = 2000
WORDS_WINDOW_PER_ROW = 20
SEGMENTS_FIRST = 2  # step 2 of a sparse search: segments in its first statement,
SEGMENTS_GROWTH = 4  # times this many in each next one (2, 8, 32, ...)
ATTR_PREFIX = "attr."
ATTR_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
INVALID_REGEX_SQLSTATE = "2201B"
QUERY_CANCELED_SQLSTATE = "57014"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_STATEMENT_MS = 5  # with less of the budget left, a sparse search returns what it has
ALONE_WALK = timedelta(minutes=10)  # the log time a budgeted search's first statement walks
MIN_WALK = timedelta(minutes=1)  # the least of them a later statement takes
# A partial page's cursor marks a time boundary, not a row: (boundary, RESUME_OLDER) newest first
# continues with ts < boundary (ids start at 1), (boundary - 1 us, RESUME_NEWER) oldest first with
# ts >= boundary.
RESUME_OLDER = 0
RESUME_NEWER = 2**63 - 1
SELECT = (
    "SELECT id, ts, host, service, level, logger, message, request_id, trace_id, span_id, attrs "
    "FROM logs_entry"
)


class SearchTimeout(APIException):
    status_code = 503
    default_detail = "the search took too long; narrow the time range or add filters"
    default_code = "search_timeout"


@dataclass
class LogQuery:
    """A validated search."""

    start: datetime | None = None
    end: datetime | None = None
    levels: list[str] = field(default_factory=list)
    min_level: int | None = None
    hosts: list[str] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    loggers: list[str] = field(default_factory=list)
    pattern: str | None = None
    case_sensitive: bool = False
    words: str | None = None
    request_id: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    attrs: list[tuple[str, str]] = field(default_factory=list)
    newest_first: bool = True
    limit: int = DEFAULT_LIMIT
    after: tuple[datetime, int] | None = None
    # What every match of `words` must contain (see logs.words); set by run() (via _sparse_page) from Postgres' tsquery.
    words_need: words.Need | None = None
    # What every match of `pattern` must contain (see logs.regex_need); set by run().
    pattern_need: words.Need | None = None


def parse(query: QueryDict | dict[str, str]) -> LogQuery:
    """Validate search parameters; raise BadParameter naming the first bad one."""
    get = query.get
    known_params.reject_nul(query)  # parse is also called outside the API (benchmarks, tests)
    q = LogQuery(start=params.timestamp("start", get("start")), end=params.timestamp("end", get("end")))
    if q.start and q.end and q.start >= q.end:
        raise BadParameter("start", "must be before end")
    q.levels = [_level("level", name) for name in params.text_list("level", get("level"))]
    if get("min_level") is not None:
        q.min_level = levels.LEVELS[_level("min_level", get("min_level"))]
    q.hosts = _column_values("host", get("host"))
    q.services = _column_values("service", get("service"))
    q.loggers = _column_values("logger", get("logger"))
    q.pattern = _pattern(get("pattern"))
    q.case_sensitive = params.boolean("case_sensitive", get("case_sensitive"))
    q.words = _words(get("q"))
    q.request_id = _single("request_id", get("request_id"))
    q.trace_id = _single("trace_id", get("trace_id"))
    q.span_id = _single("span_id", get("span_id"))
    q.attrs = _attrs(query)
    q.newest_first = params.choice("order", get("order"), ("newest", "oldest"), "newest") == "newest"
    q.limit = params.integer("limit", get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
    q.after = decode_cursor(get("cursor"), q.newest_first)
    return q


def _column_values(name: str, raw: str | None) -> list[str]:
    """host/service/logger: a comma-separated list; an empty value matches records without one.

    (Records of tailed files often have no service; an alert grouped by service links to them
    with ``service=``.)
    """
    if raw is not None and raw.strip() == "":
        return [""]
    return params.text_list(name, raw)


def _level(name: str, raw: str | None) -> str:
    level = levels.normalize(raw)
    if raw is None or level is None:
        raise BadParameter(name, f"{raw!r} is not a level (one of {', '.join(levels.LEVELS)})")
    return level


def _pattern(raw: str | None) -> str | None:
    if raw is None:
        return None
    if raw == "" or len(raw) > MAX_PATTERN_CHARS:
        raise BadParameter("pattern", f"must be 1 to {MAX_PATTERN_CHARS} characters")
    try:
        re.compile(raw)
    except re.error as exc:
        raise BadParameter("pattern", f"is not a valid regular expression: {exc}") from None
    return raw


def _words(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not re.search(r"\w", raw) or len(raw) > MAX_PATTERN_CHARS:
        raise BadParameter("q", f"must hold at least one word (and at most {MAX_PATTERN_CHARS} characters)")
    return raw


def _single(name: str, raw: str | None) -> str | None:
    if raw is None:
        return None
    if not raw.strip() or len(raw) > 200:
        raise BadParameter(name, "must be 1 to 200 characters")
    return raw.strip()


def _attrs(query: QueryDict | dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for name in sorted(query.keys()):
        if name.startswith(ATTR_PREFIX):
            key = name[len(ATTR_PREFIX) :]
            if not ATTR_KEY_RE.match(key):
                raise BadParameter(name, "attribute names are 1 to 100 letters, digits or _ . : -")
            out.append((key, query.get(name)))
    return out


def encode_cursor(ts: datetime, row_id: int, newest_first: bool) -> str:
    micros = (ts - EPOCH) // timedelta(microseconds=1)
    raw = json.dumps([micros, row_id, "n" if newest_first else "o"], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str | None, newest_first: bool) -> tuple[datetime, int] | None:
    if token is None or token == "":
        return None
    try:
        micros, row_id, order = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        ts = EPOCH + timedelta(microseconds=int(micros))
        row_id = int(row_id)
    except (ValueError, TypeError, binascii.Error, OverflowError):
        raise BadParameter("cursor", "is not a cursor returned by this API") from None
    if order != ("n" if newest_first else "o"):
        raise BadParameter("cursor", "was issued for the other order; keep 'order' the same while paging")
    return ts, row_id


def build_sql(q: LogQuery) -> tuple[str, list[Any]]:
    """Return the SQL and parameters of one page (limit + 1 rows, to know whether more follow)."""
    where, args = _filters(q)
    clause, values = _sparse_filter(q)
    if clause:
        where.append(clause)
        args.extend(values)
    return _page_sql(q, where), [*args, q.limit + 1]


def build_window_sql(q: LogQuery, window: int) -> tuple[str, list[Any]]:
    """Return SQL walking the first `window` rows of every filter but the sparse ones, in page order.

    Each row comes back with two more columns: whether the sparse filters (words, pattern,
    attributes) match, and its place in the walk; only matches and the last row of the window
    (its place is `window`) are returned.
    """
    where, args = _filters(q)
    inner = _page_sql(q, where)
    hit_sql, hit_args = _sparse_filter(q)
    sql = (
        f"SELECT * FROM (SELECT w.*, {hit_sql} AS hit, row_number() OVER () AS place FROM ({inner}) AS w) "
        "AS walk WHERE hit OR place = %s LIMIT %s"
    )
    return sql, [*hit_args, *args, window, window, q.limit + 2]


def build_segments_sql(q: LogQuery, segments: list[tuple[datetime, datetime]]) -> tuple[str, list[Any]]:
    """Return SQL for one page over these time segments: one subquery per segment, UNION ALL.

    Each subquery bounds ts by its segment with literal timestamps, so Postgres can prove that
    a partial trigram index of that hour covers it (see logs.deferred_index); the page order is
    applied once, over the union.
    """
    where, args = _filters(q)
    clause, values = _sparse_filter(q)
    where.append(clause)
    args.extend(values)
    parts = []
    all_args: list[Any] = []
    for start, end in segments:
        bounds = f"ts >= {deferred_index.sql_time(start)} AND ts < {deferred_index.sql_time(end)}"
        parts.append(f"({SELECT} WHERE {' AND '.join([*where, bounds])})")
        all_args.extend(args)
    direction = "DESC" if q.newest_first else "ASC"
    sql = f"SELECT * FROM ({' UNION ALL '.join(parts)}) AS segment ORDER BY ts {direction}, id {direction} LIMIT %s"
    return sql, [*all_args, q.limit + 1]


def _page_sql(q: LogQuery, where: list[str]) -> str:
    direction = "DESC" if q.newest_first else "ASC"
    sql = SELECT + (" WHERE " + " AND ".join(where) if where else "")
    return sql + f" ORDER BY ts {direction}, id {direction} LIMIT %s"


def has_sparse(q: LogQuery) -> bool:
    """Whether `q` has a filter whose selectivity the planner cannot know (words, pattern, attributes)."""
    return q.words is not None or q.pattern is not None or bool(q.attrs)


def _sparse_filter(q: LogQuery) -> tuple[str, list[Any]]:
    """The words, pattern and attribute conditions, AND-ed ("" when there is none)."""
    clauses: list[str] = []
    args: list[Any] = []
    if q.words is not None:
        clause, values = _words_filter(q)
        clauses.append(clause)
        args.extend(values)
    if q.pattern is not None:
        if q.pattern_need is not None:
            # First, so that the cheaper ILIKE rejects most rows before the regex runs.
            clause, values = words.ilike_sql(q.pattern_need)
            clauses.append(clause)
            args.extend(values)
        regex = f"message {'~' if q.case_sensitive else '~*'} %s"
        if q.pattern_need is not None and q.pattern_need.op == "or":
            # Alternative pieces ([7-9], a|b) can only narrow through a BitmapOr of their ILIKEs;
            # with the regex indexable too, the planner takes the regex's trigrams alone (every
            # row holding "refused" and "attempt" for 'refused \(attempt [7-9]\)') and tests the
            # pieces as a filter. Written as a boolean test, the regex is not indexable.
            regex = f"({regex}) IS TRUE"
        clauses.append(regex)
        args.append(q.pattern)
    for key, value in q.attrs:
        candidates = _attr_candidates(key, value)
        clauses.append("(" + " OR ".join(["attrs @> %s::jsonb"] * len(candidates)) + ")")
        args.extend(candidates)
    if not clauses:
        return "", []
    return "(" + " AND ".join(clauses) + ")", args


def _words_filter(q: LogQuery) -> tuple[str, list[Any]]:
    """The word search: trigram-indexable ILIKEs every match needs, then the exact full-text test."""
    clauses: list[str] = []
    args: list[Any] = []
    if q.words_need is not None:
        clause, args = words.ilike_sql(q.words_need)
        clauses.append(clause)
    clauses.append("to_tsvector('simple'::regconfig, message) @@ websearch_to_tsquery('simple', %s)")
    return "(" + " AND ".join(clauses) + ")", [*args, q.words]


def _filters(q: LogQuery) -> tuple[list[str], list[Any]]:
    """Every condition of `q` except the sparse ones (words, pattern, attributes), with their parameters."""
    where: list[str] = []
    args: list[Any] = []

    def add(clause: str, *values: Any) -> None:
        where.append(clause)
        args.extend(values)

    org_clause, org_args = scope.sql_filter("organization_id")
    add(org_clause, *org_args)

    if q.start:
        add("ts >= %s", q.start)
    if q.end:
        add("ts < %s", q.end)
    if q.levels:
        add("level_no = ANY(%s)", [levels.LEVELS[name] for name in q.levels])
    if q.min_level is not None:
        add("level_no >= %s", q.min_level)
    for column, values in (("host", q.hosts), ("service", q.services), ("logger", q.loggers)):
        if values:
            add(f"{column} = ANY(%s)", values)
    for column in ("request_id", "trace_id", "span_id"):
        if getattr(q, column) is not None:
            add(f"{column} = %s", getattr(q, column))
    if q.after is not None:
        add(f"(ts, id) {'<' if q.newest_first else '>'} (%s, %s)", *q.after)
    return where, args


def _attr_candidates(key: str, value: str) -> list[str]:
    """The attribute as a string, and as a JSON number/boolean/null when it reads as one."""
    out = [json.dumps({key: value})]
    try:
        parsed = json.loads(value)
    except ValueError:
        return out
    if parsed is None or isinstance(parsed, bool | int | float):
        out.append(json.dumps({key: parsed}))
    return out


@dataclass
class Page:
    """One page of a search: its rows, the cursor of the next page (None on the last page), and
    whether the page is partial (the search budget ran out before it was full: `rows` are every
    match up to where the search stopped, and `next_cursor` resumes exactly there)."""

    rows: list[dict[str, Any]]
    next_cursor: str | None
    partial: bool = False
    # On a partial page: how far the search got (newest first: it searched back to this time;
    # oldest first: up to it), ISO 8601 UTC.
    searched_until: str | None = None


def run(q: LogQuery) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of rows and the cursor of the next page (None on the last page)."""
    result = page(q)
    return result.rows, result.next_cursor


def page(q: LogQuery) -> Page:
    """Return one page of `q` (see Page)."""
    pattern_param = "pattern" if q.pattern is not None else None
    resume: datetime | None = None
    if has_sparse(q):
        rows, resume = _sparse_page(q, pattern_param)
    else:
        sql, args = build_sql(q)
        rows = fetch(sql, args, pattern_param=pattern_param)
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    if more:
        next_cursor = encode_cursor(rows[-1][1], rows[-1][0], q.newest_first)
    elif resume is not None:
        next_cursor = resume_cursor(resume, q.newest_first)
    else:
        next_cursor = None
    partial = resume is not None and not more
    until = _iso(resume) if partial and resume is not None else None
    return Page([as_dict(row) for row in rows], next_cursor, partial=partial, searched_until=until)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def resume_cursor(boundary: datetime, newest_first: bool) -> str:
    """The cursor of a partial page: every row older (newest first) or from `boundary` on (oldest first)."""
    if newest_first:
        return encode_cursor(boundary, RESUME_OLDER, True)
    return encode_cursor(boundary - timedelta(microseconds=1), RESUME_NEWER, False)


def search_budget_ms(q: LogQuery | None = None) -> float:
    """How long a sparse search may search before it returns a partial page (inf: no budget).

    LOG_SEARCH_BUDGET_MS, or LOG_SEARCH_MORE_BUDGET_MS when `q` continues from a partial page's
    cursor (the user asked for more: a search whose every day costs more than the first page's
    budget still gets through a day or more per call).
    """
    budget = int(getattr(settings, "LOG_SEARCH_BUDGET_MS", 0) or 0)
    if budget <= 0:
        return float("inf")
    if q is not None and q.after is not None and q.after[1] in (RESUME_OLDER, RESUME_NEWER):
        budget = max(budget, int(getattr(settings, "LOG_SEARCH_MORE_BUDGET_MS", 0) or 0))
    return float(budget)


def _sparse_page(q: LogQuery, pattern_param: str | None) -> tuple[list[tuple], datetime | None]:
    """Up to limit + 1 rows of a search with words, a pattern or attributes, and where it stopped.

    The second value is None when the search covered everything; otherwise it is the time
    boundary the search budget (LOG_SEARCH_BUDGET_MS) stopped it at, with fewer than limit + 1
    rows: every match before the boundary in page order is among them (see `resume_cursor`).

    The planner has no useful statistics for these filters (a regex, words without a full-text
    index, one value of one attribute key): when it guesses them frequent it walks the primary
    key newest first and tests every row, which for a rare match means millions of rows. So the
    search runs in two steps whose plans do not depend on that guess:

    1. the first WORDS_WINDOW rows of the other filters, in page order, are tested (frequent
       matches fill the page there in a few milliseconds);
    2. when they do not, the rest is searched through the indexes only (bitmap scans: the trigram
       index, the attrs GIN, a btree), segment by segment in page order, newest first by default:
       2, 8, 32... segments per statement, each a day whose partition has its whole-day GIN
       indexes or else an hour (which can use its hourly partial indexes), until the page is
       full. Hours without their indexes yet (the open hour; every hour if the maintenance job
       logs.deferred_index.build_closed does not run) are walked through the primary key instead.

    Step 2 is bounded by the search budget: each statement runs with the budget's remainder as its
    statement timeout, and once the budget is spent, or a statement is cancelled by it, the search
    returns the matches of the segments it completed and the boundary of the last one. A no-match
    regex whose trigrams are all common (it reads every candidate row of the table) thus answers
    within the budget, page after page, instead of reading ten million rows in one request.
    Every call makes progress: the first statement of step 2 walks the primary key over the first
    ALONE_WALK of log time under the search's own timeout (bounded by the rows in that span); later
    ones run under the budget's remainder and take no more than it can search at the pace so far.
    A search with nothing an index serves walks every segment through the primary key.
    """
    started = time.monotonic()
    budget = search_budget_ms(q)
    if q.words is not None and q.words_need is None:
        q.words_need = words.required(tsquery_text(q.words))
    if q.pattern is not None and q.pattern_need is None:
        q.pattern_need = regex_need.required(q.pattern)
    window = max(WORDS_WINDOW_MIN, WORDS_WINDOW_PER_ROW * (q.limit + 1))
    sql, args = build_window_sql(q, window)
    walked = fetch(sql, args, pattern_param=pattern_param)
    hits = [row[:-2] for row in walked if row[-2]]
    if len(hits) > q.limit or not walked or walked[-1][-1] != window:
        return hits, None
    last = walked[-1]
    rest = replace(q, after=(last[1], last[0]), limit=q.limit - len(hits))
    segments = search_segments(rest)
    if not _index_helps(q):
        # Nothing an index serves (a regex without a literal piece, such as `x` or `[0-9]+`; words
        # without a lexeme of 3 characters): the bitmap would come from the whole GIN index of each
        # day, slower than walking the rows, so every segment is walked through the primary key.
        segments = [(start, end, False) for start, end, _ in segments]
    batch = SEGMENTS_FIRST
    boundary: datetime | None = None  # the far edge of the segments completed in this call
    # Per kind of statement (bitmap or ordered walk): time spent on completed ones, and the log
    # time they covered; their ratio is the pace that sizes the next statement to the budget left.
    spent = {True: 0.0, False: 0.0}
    covered = {True: 0.0, False: 0.0}
    while segments and len(hits) <= q.limit:
        left_ms = budget - (time.monotonic() - started) * 1000
        # The first statement of a budgeted search is the progress guarantee: one closed day's
        # first hour or ALONE_WALK of hours without GIN indexes, under the search's own timeout only.
        alone = boundary is None and budget != float("inf")
        if not alone and left_ms < MIN_STATEMENT_MS:
            return hits, boundary
        if alone:
            # A walk of the primary key over ALONE_WALK of log time: its cost is bounded by the
            # rows in that span whatever the filters (a bitmap scan reads the GIN posting lists
            # of the whole day, all of them for a regex without trigrams).
            segments = _cut_first(segments, rest, ALONE_WALK)
            if not segments:
                break
            count, bitmap_only = 1, False
        elif not segments[0][2]:
            # Hours without their GIN indexes yet (the open hour): one statement walking the
            # primary key in page order, which stops as soon as the page is full and at worst
            # reads those hours' rows (a bitmap would read them all, then sort).
            count = next((i for i, segment in enumerate(segments) if segment[2]), len(segments))
            bitmap_only = False
            if covered[False] and left_ms != float("inf"):
                pace = spent[False] / covered[False]
                count = _fitting(segments[:count], left_ms, pace)
                if count == 0:  # not even the first: the span of it the budget left can walk
                    span = timedelta(seconds=max(MIN_WALK.total_seconds(), left_ms / 1000 / pace))
                    segments = _cut_first(segments, rest, span)
                    count = 1
        else:
            count = next((i for i, segment in enumerate(segments[:batch]) if not segment[2]), batch)
            if covered[True] and left_ms != float("inf"):
                # No more segments than the rest of the budget can search at the pace so far:
                # a statement cancelled by the budget loses all its work.
                count = max(1, _fitting(segments[:count], left_ms, spent[True] / covered[True]))
            bitmap_only = True
            batch *= SEGMENTS_GROWTH
        chunk = segments[:count]
        sql, args = build_segments_sql(rest, [(start, end) for start, end, _ in chunk])
        began = time.monotonic()
        try:
            found = fetch(
                sql,
                args,
                pattern_param=pattern_param,
                bitmap_only=bitmap_only,
                ordered_only=not bitmap_only,
                timeout_ms=None if alone or left_ms == float("inf") else max(1, int(left_ms)),
            )
        except SearchTimeout:
            if boundary is None:
                raise  # one segment over the search's own timeout
            return hits, boundary
        spent[bitmap_only] += time.monotonic() - began
        covered[bitmap_only] += sum((end - start).total_seconds() for start, end, _ in chunk)
        segments = segments[count:]
        boundary = chunk[-1][0] if q.newest_first else chunk[-1][1]
        hits.extend(found)
        rest = replace(rest, limit=rest.limit - len(found))
    return hits, None


def _fitting(segments: list[tuple[datetime, datetime, bool]], left_ms: float, pace: float) -> int:
    """How many of `segments` fit in `left_ms` at `pace` (seconds of search per second of log time)."""
    total = 0.0
    for count, (start, end, _) in enumerate(segments):
        total += (end - start).total_seconds() * pace * 1000
        if total > left_ms:
            return count
    return len(segments)


def _cut_first(
    segments: list[tuple[datetime, datetime, bool]], q: LogQuery, span: timedelta
) -> list[tuple[datetime, datetime, bool]]:
    """`segments` with the first one cut after `span` of `q`'s range in page order: its front, then
    the rest of it (for an hour with a partial GIN index, the rest's bounds still imply the index's)."""
    start, end, indexed = segments[0]
    low, high = _range(q)
    if q.newest_first:
        top = end if high is None else max(start, min(end, high))
        cut = max(start, top - span)
        parts = [(cut, end, indexed), (start, cut, indexed)]
    else:
        bottom = start if low is None else min(end, max(start, low))
        cut = min(end, bottom + span)
        parts = [(start, cut, indexed), (cut, end, indexed)]
    return [part for part in parts if part[0] < part[1]] + segments[1:]


def _index_helps(q: LogQuery) -> bool:
    """Whether step 2's bitmap scans have an index condition: an attribute, or a regex or words
    with a literal piece (logs.regex_need, logs.words) the trigram index serves."""
    return bool(q.attrs) or q.pattern_need is not None or q.words_need is not None


def search_segments(q: LogQuery) -> list[tuple[datetime, datetime, bool]]:
    """The time segments step 2 of a sparse search covers, in page order.

    A partition with its whole-day GIN indexes is one segment; any other is 24 hourly segments
    (so each hour can use its partial index, and an hour without one reads only that hour).
    Each is (start, end, whether it has its GIN indexes). Segments outside [start, end), beyond the
    cursor or beyond the table's oldest and newest records are left out.
    """
    low, high = _range(q)
    oldest, newest = fetch("SELECT min(ts), max(ts) FROM logs_entry", [])[0]
    if oldest is None:
        return []
    low = oldest if low is None else max(low, oldest)
    high = (
        newest + timedelta(microseconds=1) if high is None else min(high, newest + timedelta(microseconds=1))
    )
    segments = []
    for part in deferred_index.state():
        spans = (
            [(part.start, part.start + timedelta(days=1), True)]
            if part.whole_day
            else [(*deferred_index.hour_bounds(part.day, hour), hour in part.hours) for hour in range(24)]
        )
        for start, end, indexed in spans:
            if (low is None or end > low) and (high is None or start < high):
                segments.append((start, end, indexed))
    return segments[::-1] if q.newest_first else segments


def _range(q: LogQuery) -> tuple[datetime | None, datetime | None]:
    """[low, high) of the times `q` may still return: its start and end, narrowed by its cursor."""
    low = q.start
    high = q.end
    if q.after is not None:
        after_ts, after_id = q.after
        if q.newest_first:
            # (ts, id) < (t, RESUME_OLDER) holds no row with ts = t (ids start at 1)
            bound = after_ts + timedelta(microseconds=0 if after_id <= RESUME_OLDER else 1)
            high = bound if high is None else min(high, bound)
        else:
            # (ts, id) > (t, RESUME_NEWER) holds no row with ts = t
            bound = after_ts + timedelta(microseconds=1 if after_id >= RESUME_NEWER else 0)
            low = bound if low is None else max(low, bound)
    return low, high


def tsquery_text(text: str) -> str:
    """Return Postgres' own reading of a word search, as tsquery text."""
    return fetch("SELECT websearch_to_tsquery('simple', %s)::text", [text])[0][0]


def fetch(
    sql: str,
    args: list[Any],
    pattern_param: str | None = None,
    bitmap_only: bool = False,
    ordered_only: bool = False,
    timeout_ms: int | None = None,
) -> list[tuple]:
    """Run a read query with a time limit; turn Postgres' regex errors into a 400.

    `bitmap_only` forbids ordered index scans for this statement (``enable_indexscan = off``), so
    the planner cannot choose to walk the primary key in page order testing every row (its choice
    when it guesses a sparse filter frequent); bitmap scans of every index stay available.
    `ordered_only` forbids bitmap and sequential scans instead (``enable_bitmapscan``,
    ``enable_seqscan = off``): for hours without their GIN indexes, a walk of the primary key in page
    order within the hour that stops when the page is full (never a scan of the whole day partition,
    which a small partition's costs can favour).
    JIT compilation is off for search statements: disabled scan kinds give plans costs above
    ``jit_above_cost``, and compiling (hundreds of milliseconds, not interruptible) made a statement
    overrun a budget's timeout by up to a second.
    `timeout_ms` lowers the statement timeout (the search's own, SEARCH_TIMEOUT_MS or
    QUERY_TIMEOUT_MS) for this statement.
    """
    limit_ms = statement_timeout.timeout_ms(SEARCH_TIMEOUT_MS)
    if timeout_ms is not None:
        limit_ms = min(limit_ms, timeout_ms) if limit_ms > 0 else timeout_ms
    try:
        nested = connection.in_atomic_block
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            # One round trip for the settings (SET LOCAL = set_config(..., true)), and their values before.
            cursor.execute(
                "SELECT current_setting('statement_timeout'), current_setting('enable_indexscan'), "
                "current_setting('enable_bitmapscan'), current_setting('enable_seqscan'), current_setting('jit'), "
                "set_config('statement_timeout', %s, true), set_config('enable_indexscan', %s, true), "
                "set_config('enable_bitmapscan', %s, true), set_config('enable_seqscan', %s, true), "
                "set_config('jit', 'off', true)",
                [
                    str(limit_ms),
                    "off" if bitmap_only else "on",
                    "off" if ordered_only else "on",
                    "off" if ordered_only else "on",
                ],
            )
            before = cursor.fetchone()[:5]
            cursor.execute(sql, args)
            rows = cursor.fetchall()
            if nested:
                # Inside a caller's transaction (a savepoint here) SET LOCAL outlives this block: put
                # the settings back, or a budget's few milliseconds would time out the caller's queries.
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), set_config('enable_indexscan', %s, true), "
                    "set_config('enable_bitmapscan', %s, true), set_config('enable_seqscan', %s, true), "
                    "set_config('jit', %s, true)",
                    list(before),
                )
            return rows
    except DataError as exc:
        if _regex_cancelled(exc):
            # Postgres' regex engine reports a cancel (statement_timeout) during a match as an
            # invalid regex ("invalid regular expression: operation cancelled").
            raise SearchTimeout() from None
        if pattern_param and getattr(exc.__cause__, "sqlstate", None) == INVALID_REGEX_SQLSTATE:
            raise BadParameter(pattern_param, f"is not a valid regular expression: {exc}") from None
        raise
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == QUERY_CANCELED_SQLSTATE:
            raise SearchTimeout() from None
        raise


def _regex_cancelled(exc: DataError) -> bool:
    cause = exc.__cause__
    if getattr(cause, "sqlstate", None) != INVALID_REGEX_SQLSTATE:
        return False
    diag = getattr(cause, "diag", None)
    message = (getattr(diag, "message_primary", None) or str(cause)).lower()
    return message.endswith("operation cancelled") or message.endswith("operation canceled")


def as_dict(row: tuple) -> dict[str, Any]:
    row_id, ts, host, service, level, logger, message, request_id, trace_id, span_id, attrs = row
    return {
        "id": row_id,
        "timestamp": ts.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "host": host,
        "service": service,
        "level": level,
        "logger": logger,
        "message": message,
        "request_id": request_id,
        "trace_id": trace_id,
        "span_id": span_id,
        "attributes": attrs if isinstance(attrs, dict) else json.loads(attrs),
    }


def request_records(request_id: str, max_rows: int) -> tuple[list[dict[str, Any]], bool]:
    """Every record of one request across hosts and services, oldest first; (rows, truncated)."""
    org_clause, org_args = scope.sql_filter("organization_id")
    sql = SELECT + f" WHERE request_id = %s AND {org_clause} ORDER BY ts, id LIMIT %s"
    rows = fetch(sql, [request_id, *org_args, max_rows + 1])
    return [as_dict(row) for row in rows[:max_rows]], len(rows) > max_rows
