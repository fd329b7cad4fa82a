"""The on-disk spool: FIFO across segments, bounded with counted drops, and durable across reopen."""

from __future__ import annotations

import shutil

from agent.spool import HEADER, Spool


def payload(n: int, size: int = 100) -> bytes:
    return n.to_bytes(4, "big") * (size // 4)


def drain(spool: Spool) -> list[int]:
    out = []
    while chunk := spool.peek(7):
        out += [int.from_bytes(item[:4], "big") for item in chunk]
        spool.commit(len(chunk))
    return out


def test_batches_come_out_oldest_first_across_segments(tmp_path):
    spool = Spool(tmp_path, cap_bytes=100_000)
    for n in range(50):
        spool.append(payload(n, 1000))
    assert len(list(tmp_path.glob("*.seg"))) > 1
    assert spool.pending_batches == 50
    assert spool.pending_bytes == 50 * (HEADER.size + 1000)
    assert drain(spool) == list(range(50))
    assert spool.pending_batches == 0 and spool.pending_bytes == 0
    assert list(tmp_path.glob("*.seg")) == []


def test_cap_drops_the_oldest_batches_and_counts_them(tmp_path):
    record = HEADER.size + 1000
    spool = Spool(tmp_path, cap_bytes=20 * record)
    for n in range(100):
        spool.append(payload(n, 1000))
    remaining = drain(spool)
    assert spool.pending_bytes == 0
    assert remaining == list(range(100 - len(remaining), 100)), "the newest batches are kept, in order"
    assert spool.dropped_batches == 100 - len(remaining)
    assert spool.dropped_batches > 0
    assert len(remaining) >= 20 - 20 // 8 - 1


def test_batch_larger_than_the_cap_is_dropped_and_counted(tmp_path):
    spool = Spool(tmp_path, cap_bytes=500)
    spool.append(payload(1, 1000))
    assert spool.dropped_batches == 1
    assert spool.pending_batches == 0


def test_spool_reopened_after_restart_resumes_where_replay_stopped(tmp_path):
    spool = Spool(tmp_path, cap_bytes=1_000_000)
    for n in range(30):
        spool.append(payload(n))
    chunk = spool.peek(10)
    spool.commit(len(chunk))
    spool.close()
    reopened = Spool(tmp_path, cap_bytes=1_000_000)
    assert reopened.pending_batches == 20
    reopened.append(payload(30))
    assert drain(reopened) == list(range(10, 31))


def test_commit_of_part_of_a_chunk_keeps_the_rest_for_next_time(tmp_path):
    spool = Spool(tmp_path, cap_bytes=1_000_000)
    for n in range(5):
        spool.append(payload(n))
    assert len(spool.peek(5)) == 5
    spool.commit(2)
    assert drain(spool) == [2, 3, 4]


def test_torn_record_at_the_end_of_a_segment_is_cut_off_and_counted(tmp_path):
    spool = Spool(tmp_path, cap_bytes=1_000_000)
    for n in range(3):
        spool.append(payload(n))
    spool.close()
    segment = sorted(tmp_path.glob("*.seg"))[-1]
    with segment.open("ab") as handle:
        handle.write(HEADER.pack(100, 0) + b"half")  # the process died mid-write
    reopened = Spool(tmp_path, cap_bytes=1_000_000)
    assert reopened.dropped_batches == 1
    reopened.append(payload(3))
    assert drain(reopened) == [0, 1, 2, 3]


def test_spool_that_cannot_be_written_drops_and_counts_instead_of_raising(tmp_path, caplog):
    directory = tmp_path / "spool"
    spool = Spool(directory, cap_bytes=1_000_000)
    shutil.rmtree(directory)  # the state dir vanished (unmounted, deleted by hand)
    spool.append(payload(1))
    spool.append(payload(2))
    assert spool.dropped_batches == 2
    assert spool.pending_batches == 0
    assert len([r for r in caplog.records if "cannot write to the spool" in r.getMessage()]) == 1
    directory.mkdir()
    spool.append(payload(3))
    assert drain(spool) == [3]


def test_failed_delivery_leaves_the_read_position_and_its_file_untouched(tmp_path):
    spool = Spool(tmp_path, cap_bytes=1_000_000)
    spool.append(payload(1))
    assert len(spool.peek(10)) == 1
    spool.commit(0)  # Redis took nothing
    assert not (tmp_path / "cursor.json").exists()
    assert drain(spool) == [1]
