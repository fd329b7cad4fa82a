"""The query planner's choice for each search shape, asserted on EXPLAIN output.

Why these assertions mean something on a modest table (60,000 rows over three day partitions,
ANALYZEd, so the planner works from real row counts and histograms, not defaults):

- The choices that made searches slow at 10 million rows were the planner's guesses about filters
  it has no statistics for (a regex, words, one attribute value): guessing them frequent, it walks
  the primary key in page order testing every row. The search no longer leaves that choice to it:
  step 1 is a walk bounded by LIMIT (asserted: an ordered primary-key scan, no bitmap over the
  table), step 2 runs with ordered index scans disabled (asserted: no Index Scan node at all, and
  the bitmap comes from the trigram, attrs or btree index). Those properties hold at any size.
- Which trigram index a step-2 segment uses follows from partition pruning and from Postgres
  proving that a segment's literal time bounds imply an hourly partial index's predicate; both
  are exact, not cost-based (asserted: the closed day's whole-day index, the closed hour's partial
  index, and for an hour with no trigram index a bitmap on the primary key over that hour only).
- The btree shapes (request id, a rare level, service or host, a time range) are chosen by cost:
  the values filtered on occur in 1 of 1,000 rows (request ids in 4), so at 60,000 rows the
  right index is already cheaper by a factor of hundreds, and the gap only grows with the table.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from collector_server.logs import deferred_index, search, writer
from collector_server.monitoring import partitions

ROWS = 60_000
SPAN_HOURS = 60
FILL = """
INSERT INTO logs_entry (ts, host, service, level, level_no, message, logger, request_id, attrs)
SELECT %(end)s::timestamptz - (i * %(step)s) * interval '1 microsecond',
    CASE WHEN i %% 1000 = 7 THEN 'rare-host' ELSE 'web-' || (i %% 20) END,
    CASE WHEN i %% 1000 = 3 THEN 'ledger' ELSE (ARRAY['api','billing','worker','auth','search'])[1 + i %% 5] END,
    CASE WHEN i %% 1000 = 5 THEN 'CRITICAL' ELSE (ARRAY['INFO','DEBUG','WARNING','ERROR'])[1 + i %% 4] END,
    CASE WHEN i %% 1000 = 5 THEN 50 ELSE (ARRAY[20,10,30,40])[1 + i %% 4] END,
    CASE i %% 4
        WHEN 0 THEN 'GET /api/v1/items/' || (i %% 9973) || ' completed in ' || (i %% 499) || 'ms'
        WHEN 1 THEN 'user ' || (i %% 5003) || ' logged in from 10.0.' || (i %% 251) || '.' || (i %% 241)
        WHEN 2 THEN 'database timeout after ' || (i %% 4999) || 'ms talking to db-' || (i %% 7)
        ELSE 'payment provider unreachable: connection refused (attempt ' || (i %% 5) || ')'
    END,
    'app', 'req-' || (i / 4), jsonb_build_object('user_id', i %% 5000, 'path', '/api/v1/items')
FROM generate_series(0::bigint, %(rows)s - 1) AS i
"""


@pytest.fixture(scope="module")
def planned(django_db_setup, django_db_blocker):
    """The filled, indexed and analysed table; `now` is 14:00 "today" as far as the indexes know.

    "Today" is the last day whose 14:00 has passed, and the rows end then: its partition holds
    14 hours of rows whatever the clock says (run just after midnight, today's partition
    would hold minutes of rows, which the planner rightly reads sequentially).
    """
    with django_db_blocker.unblock():
        partitions.forget_cache()
        today = (datetime.now(UTC) - timedelta(hours=14)).date()
        end = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=14, seconds=-1)
        writer.ensure_days(int((end - timedelta(days=d)).timestamp() // 86400) for d in range(-1, 4))
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE logs_entry")
            step = int(SPAN_HOURS * 3600 * 1e6 / ROWS)
            cursor.execute(FILL, {"end": end.isoformat(), "step": step, "rows": ROWS})
        # The maintenance job as it runs at 14:00 today: yesterday and before are closed days
        # (whole-day index), today's hours 0-12 are closed hours (partial index each), 13- open.
        index_time = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=14)
        deferred_index.build_closed(index_time)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE logs_entry")
            for part in deferred_index.state():
                cursor.execute(f'ANALYZE "{part.name}"')
            cursor.execute("SELECT DISTINCT tableoid::regclass::text FROM logs_entry")
            filled = {row[0] for row in cursor.fetchall()}
        yield {"today": today, "now": end, "filled": filled}
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE logs_entry")
            for name in deferred_index.index_names():
                cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        partitions.forget_cache()


def explain(
    sql: str, args: list[Any], bitmap_only: bool = False, ordered_only: bool = False
) -> list[dict[str, Any]]:
    """EXPLAIN (FORMAT JSON) under the settings the search runs with; return every plan node."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Every setting, each time: inside the test's transaction SET LOCAL outlives this block.
        cursor.execute(f"SET LOCAL enable_indexscan = {'off' if bitmap_only else 'on'}")
        cursor.execute(f"SET LOCAL enable_bitmapscan = {'off' if ordered_only else 'on'}")
        cursor.execute(f"SET LOCAL enable_seqscan = {'off' if ordered_only else 'on'}")
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, args)
        raw = cursor.fetchone()[0]
    plan = (raw if isinstance(raw, list) else json.loads(raw))[0]["Plan"]
    nodes = []

    def walk(node: dict[str, Any]) -> None:
        nodes.append(node)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan)
    return nodes


def kinds(nodes: list[dict[str, Any]]) -> set[str]:
    return {node["Node Type"] for node in nodes}


def seq_scanned(nodes: list[dict[str, Any]], planned: dict[str, Any]) -> set[str]:
    """Partitions holding rows that the plan reads sequentially (an empty one may be; it costs nothing)."""
    return {node["Relation Name"] for node in nodes if node["Node Type"] == "Seq Scan"} & planned["filled"]


def index_names(nodes: list[dict[str, Any]]) -> set[str]:
    return {node["Index Name"] for node in nodes if "Index Name" in node}


def partition_of(day) -> str:
    return partitions.partition_name(writer.LOGS_PARTITIONS, day)


def query(params: dict[str, str]) -> search.LogQuery:
    q = search.parse(params)
    if q.words is not None:
        q.words_need = search.words.required(search.tsquery_text(q.words))
    if q.pattern is not None:
        q.pattern_need = search.regex_need.required(q.pattern)
    return q


@pytest.mark.django_db
def test_the_maintenance_job_left_the_expected_deferred_indexes(planned) -> None:
    state = {part.day: part for part in deferred_index.state()}
    today = planned["today"]
    assert state[today - timedelta(days=1)].whole_day and not state[today - timedelta(days=1)].hours
    assert state[today].hours == frozenset(range(13)) and not state[today].whole_day
    assert state[today].kind_hours == {"trgm": frozenset(range(13)), "attrs": frozenset(range(13))}
    assert not state[today + timedelta(days=1)].whole_day and not state[today + timedelta(days=1)].hours


@pytest.mark.django_db
def test_request_id_uses_its_btree(planned) -> None:
    nodes = explain(*search.build_sql(query({"request_id": "req-1234"})))
    assert any("request_id" in name for name in index_names(nodes)), index_names(nodes)
    assert not seq_scanned(nodes, planned)


@pytest.mark.parametrize(
    ("params", "column"),
    [
        ({"min_level": "CRITICAL"}, "level_no"),
        ({"service": "ledger"}, "service"),
        ({"host": "rare-host"}, "host"),
    ],
)
@pytest.mark.django_db
def test_rare_level_service_host_use_their_btree(planned, params: dict[str, str], column: str) -> None:
    nodes = explain(*search.build_sql(query(params)))
    assert any(column in name for name in index_names(nodes)), index_names(nodes)
    assert not seq_scanned(nodes, planned)


@pytest.mark.django_db
def test_time_range_reads_only_its_partition_through_the_primary_key(planned) -> None:
    yesterday = datetime.combine(planned["today"] - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    params = {
        "start": (yesterday + timedelta(hours=3)).isoformat(),
        "end": (yesterday + timedelta(hours=5)).isoformat(),
    }
    nodes = explain(*search.build_sql(query(params)))
    relations = {node["Relation Name"] for node in nodes if "Relation Name" in node}
    assert relations == {partition_of(planned["today"] - timedelta(days=1))}
    assert {name for name in index_names(nodes)} and all(name.endswith("pkey") for name in index_names(nodes))
    assert not seq_scanned(nodes, planned)


SPARSE = [
    ({"pattern": "db-9"}, "trgm"),
    ({"pattern": "user 4242 logged"}, "trgm"),
    ({"pattern": "to db-[7-9]"}, "trgm"),  # alternative pieces: a BitmapOr of their ILIKEs
    ({"q": "user 4242"}, "trgm"),
    ({"q": '"timeout after 4321ms"'}, "trgm"),
    ({"attr.user_id": "4242"}, "attrs"),
]


@pytest.mark.parametrize(("params", "index"), SPARSE)
@pytest.mark.django_db
def test_sparse_step_one_is_a_bounded_walk_in_page_order(planned, params: dict[str, str], index: str) -> None:
    nodes = explain(*search.build_window_sql(query(params), 2020))
    assert any(node["Node Type"] == "Index Scan" and node["Index Name"].endswith("pkey") for node in nodes)
    assert not any(index in name for name in index_names(nodes)), "step 1 must not read a whole index"
    assert not seq_scanned(nodes, planned) and "Limit" in kinds(nodes)


@pytest.mark.parametrize(("params", "index"), SPARSE)
@pytest.mark.django_db
def test_sparse_step_two_uses_the_index_of_each_segment(planned, params: dict[str, str], index: str) -> None:
    today = planned["today"]
    day_start = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    yesterday = partition_of(today - timedelta(days=1))
    closed_hour = (day_start + timedelta(hours=5), day_start + timedelta(hours=6))
    open_hour = (day_start + timedelta(hours=13), day_start + timedelta(hours=14))
    q = query(params)
    # A closed day: its whole-day index (or the attrs GIN), by bitmap only.
    nodes = explain(
        *search.build_segments_sql(q, [(day_start - timedelta(days=1), day_start)]), bitmap_only=True
    )
    names = index_names(nodes)
    assert f"{yesterday}_{index}" in names, names
    if "[" in params.get("pattern", ""):
        assert "BitmapOr" in kinds(nodes)
    assert "Index Scan" not in kinds(nodes) and not seq_scanned(nodes, planned)
    # A closed hour of the open day: the trigram index is that hour's partial index.
    nodes = explain(*search.build_segments_sql(q, [closed_hour]), bitmap_only=True)
    names = index_names(nodes)
    if index == "trgm":
        assert f"{partition_of(today)}_trgm_h05" in names, names
    else:
        # One hour of a day: its rows through the primary key or the hour's attrs GIN, as costs say.
        assert f"{partition_of(today)}_attrs_h05" in names or any(name.endswith("pkey") for name in names), (
            names
        )
    assert "Index Scan" not in kinds(nodes) and not seq_scanned(nodes, planned)
    # The open hour has no GIN index: its statement walks the primary key in page order within
    # the hour (stopping when the page is full), never the whole partition.
    nodes = explain(*search.build_segments_sql(q, [open_hour]), ordered_only=True)
    walks = [
        node for node in nodes if node["Node Type"] == "Index Scan" and node["Index Name"].endswith("pkey")
    ]
    assert walks and all("ts >=" in node.get("Index Cond", "") for node in walks), [
        (n["Node Type"], n.get("Index Name"), n.get("Relation Name")) for n in nodes
    ]
    assert not seq_scanned(nodes, planned)


@pytest.mark.django_db
def test_step_two_with_several_segments_keeps_each_index(planned) -> None:
    today = planned["today"]
    day_start = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    segments = [(day_start + timedelta(hours=h), day_start + timedelta(hours=h + 1)) for h in (12, 11, 10)]
    segments.append((day_start - timedelta(days=1), day_start))
    nodes = explain(*search.build_segments_sql(query({"pattern": "db-9"}), segments), bitmap_only=True)
    part = partition_of(today)
    assert {f"{part}_trgm_h12", f"{part}_trgm_h11", f"{part}_trgm_h10"} <= index_names(nodes)
    assert f"{partition_of(today - timedelta(days=1))}_trgm" in index_names(nodes)


@pytest.mark.django_db
def test_searches_answer_the_same_as_a_plain_scan(planned) -> None:
    """The plans above return what a sequential scan returns (indexed and unindexed hours alike)."""
    for params, sql, args in [
        ({"pattern": "db-[7-9]"}, "message ~* %s", ["db-[7-9]"]),
        ({"pattern": "user 4242 logged"}, "message ~* %s", ["user 4242 logged"]),
        ({"attr.user_id": "4242"}, "attrs @> %s::jsonb", ['{"user_id": 4242}']),
    ]:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(f"SELECT id FROM logs_entry WHERE {sql} ORDER BY ts DESC, id DESC", args)
            expected = [row[0] for row in cursor.fetchall()]
        got, cursor_token = [], None
        while True:
            rows, cursor_token = search.run(
                search.parse(
                    {**params, "limit": "1000", **({"cursor": cursor_token} if cursor_token else {})}
                )
            )
            got += [row["id"] for row in rows]
            if cursor_token is None:
                break
        assert got == expected, params


def _walk(params: dict[str, str]) -> tuple[list[int], list[search.Page]]:
    """Every page of a search, following next_cursor; (ids in order, pages)."""
    got: list[int] = []
    pages: list[search.Page] = []
    token = None
    while len(pages) < 500:
        result = search.page(search.parse({**params, **({"cursor": token} if token else {})}))
        pages.append(result)
        got += [row["id"] for row in result.rows]
        token = result.next_cursor
        if token is None:
            return got, pages
    raise AssertionError("the walk made no progress")


@pytest.mark.parametrize("budget", [1, 15])
@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.django_db
def test_a_spent_budget_gives_partial_pages_that_resume_exactly(
    planned, settings, order: str, budget: int
) -> None:
    """With a 1 ms budget every call completes one segment and returns a partial page (with 15 ms,
    statements are also cancelled by the budget's timeout midway); walking the cursors returns
    exactly what a plain scan returns, in order, for a no-match regex made of common trigrams, a
    rare one, a frequent one, words and an attribute."""
    settings.LOG_SEARCH_BUDGET_MS = budget
    settings.LOG_SEARCH_MORE_BUDGET_MS = budget  # continuations too
    direction = "DESC" if order == "newest" else "ASC"
    for params, sql, args in [
        ({"pattern": "db-[7-9]"}, "message ~* %s", ["db-[7-9]"]),
        ({"pattern": "user 4242 logged"}, "message ~* %s", ["user 4242 logged"]),
        ({"pattern": "timeout after 4[0-9]{3}ms"}, "message ~* %s", ["timeout after 4[0-9]{3}ms"]),
        (
            {"q": "user 4242"},
            "to_tsvector('simple', message) @@ websearch_to_tsquery('simple', %s)",
            ["user 4242"],
        ),
        ({"attr.user_id": "4242"}, "attrs @> %s::jsonb", ['{"user_id": 4242}']),
    ]:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            cursor.execute(
                f"SELECT id FROM logs_entry WHERE {sql} ORDER BY ts {direction}, id {direction}", args
            )
            expected = [row[0] for row in cursor.fetchall()]
        got, pages = _walk({**params, "order": order, "limit": "50"})
        assert got == expected, params
        partial = [page for page in pages if page.partial]
        assert partial or budget > 1, params  # 60 hours of segments cannot all be searched in 1 ms
        assert all(page.next_cursor and len(page.rows) <= 50 for page in partial)
        full = [page for page in pages if not page.partial and page.next_cursor]
        assert all(len(page.rows) == 50 for page in full)


@pytest.mark.django_db
def test_a_search_within_its_budget_is_one_page(planned, settings) -> None:
    """No budget (0): the no-match regex answers in one call with no cursor, as before."""
    settings.LOG_SEARCH_BUDGET_MS = 0
    result = search.page(search.parse({"pattern": "db-[7-9]"}))
    assert result.rows == [] and result.next_cursor is None and not result.partial
    assert result.searched_until is None


def test_a_continued_search_gets_the_larger_budget(settings) -> None:
    """A cursor from a partial page (a time boundary) asks for more: LOG_SEARCH_MORE_BUDGET_MS;
    a first page or a full page's cursor (a row): LOG_SEARCH_BUDGET_MS; 0 turns both off."""
    settings.LOG_SEARCH_BUDGET_MS = 150
    settings.LOG_SEARCH_MORE_BUDGET_MS = 1000
    boundary = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert search.search_budget_ms(search.parse({"pattern": "x"})) == 150
    row = search.encode_cursor(boundary, 12345, True)
    assert search.search_budget_ms(search.parse({"pattern": "x", "cursor": row})) == 150
    for newest in (True, False):
        token = search.resume_cursor(boundary, newest)
        params = {"pattern": "x", "cursor": token, "order": "newest" if newest else "oldest"}
        assert search.search_budget_ms(search.parse(params)) == 1000
    settings.LOG_SEARCH_BUDGET_MS = 0
    assert search.search_budget_ms(search.parse({"pattern": "x"})) == float("inf")


@pytest.mark.django_db
def test_a_partial_page_over_the_api(planned, settings, api) -> None:
    settings.LOG_SEARCH_BUDGET_MS = 1
    settings.LOG_SEARCH_MORE_BUDGET_MS = 1
    body = api.get("/api/v1/logs/search", {"pattern": "db-[7-9]"}).json()
    assert body["success"] is True and body["partial"] is True and body["count"] == 0
    assert body["next_cursor"] and body["searched_until"].endswith("Z")
    boundary, _ = search.decode_cursor(body["next_cursor"], True)
    assert datetime.fromisoformat(body["searched_until"].replace("Z", "+00:00")) == boundary
    body = api.get("/api/v1/logs/search", {"pattern": "db-[7-9]", "cursor": body["next_cursor"]}).json()
    assert body["partial"] is True and body["next_cursor"]


@pytest.mark.django_db
def test_a_regex_cancelled_by_its_timeout_is_a_search_timeout() -> None:
    """A statement cancelled inside Postgres' regex engine fails as "invalid regular expression:
    operation cancelled" (SQLSTATE 2201B); the search reads it as its timeout (the budget's cue to
    return a partial page), never as a bad pattern."""
    sql = (
        "SELECT count(*) FROM generate_series(1, 50000000) AS i WHERE (i::text || ' items/' || i::text) ~* %s"
    )
    with pytest.raises(search.SearchTimeout):
        search.fetch(sql, ["x[0-9]+y"], pattern_param="pattern", timeout_ms=1)


@pytest.mark.parametrize(("params", "index"), SPARSE)
@pytest.mark.django_db
def test_segments_cut_for_the_budget_keep_their_index(planned, params: dict[str, str], index: str) -> None:
    """A budgeted search's first statement walks search.ALONE_WALK of the first segment through the
    primary key; the rest of a closed day keeps the whole-day index, the rest of a closed hour its
    partial index (its bounds still imply the index predicate)."""
    today = planned["today"]
    day_start = datetime.combine(today, datetime.min.time(), tzinfo=UTC)
    q = query(params)
    yesterday = (day_start - timedelta(days=1), day_start, True)
    closed_hour = (day_start + timedelta(hours=5), day_start + timedelta(hours=6), True)
    for segment, wanted in [
        (yesterday, f"{partition_of(today - timedelta(days=1))}_{index}"),
        (closed_hour, f"{partition_of(today)}_{index}_h05"),
    ]:
        front, rest = search._cut_first([segment], q, search.ALONE_WALK)
        assert (front[0], front[1]) == (segment[1] - search.ALONE_WALK, segment[1])
        assert (rest[0], rest[1]) == (segment[0], segment[1] - search.ALONE_WALK)
        nodes = explain(*search.build_segments_sql(q, [front[:2]]), ordered_only=True)
        walks = [n for n in nodes if n["Node Type"] == "Index Scan" and n["Index Name"].endswith("pkey")]
        assert walks and all("ts >=" in node.get("Index Cond", "") for node in walks)
        nodes = explain(*search.build_segments_sql(q, [rest[:2]]), bitmap_only=True)
        names = index_names(nodes)
        if index == "trgm" or segment is yesterday:
            assert wanted in names, names  # an hour's partial index: its predicate is still proved
        assert "Index Scan" not in kinds(nodes) and not seq_scanned(nodes, planned), [
            (n["Node Type"], n.get("Index Name"), n.get("Index Cond"), n.get("Filter")) for n in nodes
        ]
    oldest = search._cut_first([yesterday], replace(q, newest_first=False), search.ALONE_WALK)
    assert [(start, end) for start, end, _ in oldest] == [
        (yesterday[0], yesterday[0] + search.ALONE_WALK),
        (yesterday[0] + search.ALONE_WALK, yesterday[1]),
    ]


def test_a_regex_without_a_literal_piece_is_walked() -> None:
    """`x` or `[0-9]+` give the trigram index nothing to look up: step 2 walks the primary key."""
    assert not search._index_helps(query({"pattern": "x"}))
    assert not search._index_helps(query({"pattern": "[0-9]+"}))
    assert search._index_helps(query({"pattern": "db-9"}))
    assert search._index_helps(query({"attr.user_id": "4242"}))


@pytest.mark.django_db
def test_hours_without_gin_indexes_cut_for_the_budget_are_walked_through_the_primary_key(planned) -> None:
    """A budgeted search's first statement walks at most search.ALONE_WALK of hours without GIN
    indexes (the open hour), newest first; the front and the rest are ordered primary-key walks."""
    day_start = datetime.combine(planned["today"], datetime.min.time(), tzinfo=UTC)
    open_hour = (day_start + timedelta(hours=13), day_start + timedelta(hours=14), False)
    q = query({"pattern": "db-9"})
    cut = search._cut_first([open_hour], q, search.ALONE_WALK)
    assert [(start, end) for start, end, _ in cut] == [
        (open_hour[1] - search.ALONE_WALK, open_hour[1]),
        (open_hour[0], open_hour[1] - search.ALONE_WALK),
    ]
    for start, end, _ in cut:
        nodes = explain(*search.build_segments_sql(q, [(start, end)]), ordered_only=True)
        walks = [n for n in nodes if n["Node Type"] == "Index Scan" and n["Index Name"].endswith("pkey")]
        assert walks and all("ts >=" in node.get("Index Cond", "") for node in walks)
        assert not seq_scanned(nodes, planned)
