"""StructuredLogger context: per thread and per asyncio task, never shared."""

from __future__ import annotations

import asyncio
import threading

from agent.sdk import REDACTED, StructuredLogger, bound_context, clear_context, get_context, set_context


def test_context_and_call_fields_appear_in_each_record_until_cleared(capture_logs):
    capture = capture_logs("ctx.basic")
    logger = StructuredLogger("ctx.basic")
    logger.set_context(user_id="user123", session_id="sess456")
    logger.info("User action completed", action="file_upload", file_size=1024)
    logger.clear_context()
    logger.info("after clear")
    first, second = capture.entries()
    assert first["user_id"] == "user123"
    assert (
        first["session_id"] == REDACTED
    )  # a session id is a credential (issue 10): the field stays, its value not
    assert first["action"] == "file_upload"
    assert first["file_size"] == 1024
    assert "user_id" not in second


def test_call_fields_override_context_fields(capture_logs):
    capture = capture_logs("ctx.override")
    logger = StructuredLogger("ctx.override")
    logger.set_context(step="context")
    logger.info("x", step="call")
    assert capture.entries()[0]["step"] == "call"


def test_threads_never_see_each_others_context(capture_logs):
    capture = capture_logs("ctx.threads")
    logger = StructuredLogger("ctx.threads")
    set_context(owner="main")
    barrier = threading.Barrier(8)

    def worker(index: int) -> None:
        assert "owner" not in get_context()  # a new thread starts with an empty context
        logger.set_context(worker=index)
        barrier.wait()  # every thread has set its context before any logs
        logger.info("working", index=index)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = capture.entries()
    assert len(entries) == 8
    assert all(entry["worker"] == entry["index"] for entry in entries)
    assert all("owner" not in entry for entry in entries)
    assert get_context() == {"owner": "main"}
    clear_context()


def test_asyncio_tasks_keep_their_own_context(capture_logs):
    capture = capture_logs("ctx.tasks")
    logger = StructuredLogger("ctx.tasks")

    async def handle(request_id: str) -> None:
        logger.set_context(request_id=request_id)
        await asyncio.sleep(0.01)  # the other tasks run and set their own ids meanwhile
        logger.info("handled", expected=request_id)

    async def main() -> None:
        set_context(parent="yes")
        await asyncio.gather(*(handle(f"req-{i}") for i in range(10)))
        logger.info("parent after tasks")

    asyncio.run(main())
    entries = capture.entries()
    tasks, parent = entries[:-1], entries[-1]
    assert len(tasks) == 10
    assert all(entry["request_id"] == entry["expected"] for entry in tasks)
    assert all(entry["parent"] == "yes" for entry in tasks)  # a task starts with a copy of its creator's
    assert "request_id" not in parent


def test_bound_context_is_removed_when_the_block_ends(capture_logs):
    capture = capture_logs("ctx.bound")
    logger = StructuredLogger("ctx.bound")
    with bound_context(job="nightly"):
        logger.info("inside")
    logger.info("outside")
    inside, outside = capture.entries()
    assert inside["job"] == "nightly"
    assert "job" not in outside


def test_stdlib_logger_records_also_carry_the_context(capture_logs):
    capture = capture_logs("ctx.stdlib")
    set_context(tenant="acme")
    capture.logger.info("plain logging call")
    assert capture.entries()[0]["tenant"] == "acme"
