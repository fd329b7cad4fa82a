"""Sequence numbers continue across restarts and cost one file write per block."""

from __future__ import annotations

from agent.sequence import SequenceFile


def test_restart_after_clean_stop_continues_without_gap(tmp_path):
    path = tmp_path / "sequence-metrics.json"
    first = SequenceFile(path)
    taken = [first.take() for _ in range(5)]
    first.save()
    second = SequenceFile(path)
    assert taken == [0, 1, 2, 3, 4]
    assert second.epoch == first.epoch
    assert second.take() == 5


def test_numbers_are_reserved_in_blocks_so_the_file_is_written_once_per_block(tmp_path):
    sequence = SequenceFile(tmp_path / "seq.json", block=100)
    for _ in range(250):
        sequence.take()
    assert sequence.writes == 3


def test_crash_without_save_skips_ahead_but_never_reuses_a_number(tmp_path):
    path = tmp_path / "seq.json"
    crashed = SequenceFile(path, block=10)
    used = [crashed.take() for _ in range(13)]  # no save(): the process died
    restarted = SequenceFile(path, block=10)
    assert restarted.epoch == crashed.epoch
    assert restarted.take() > max(used)


def test_unreadable_sequence_file_starts_a_new_epoch(tmp_path):
    path = tmp_path / "seq.json"
    old = SequenceFile(path)
    old.take()
    old.save()
    path.write_text("{not json")
    fresh = SequenceFile(path)
    assert fresh.epoch >= old.epoch
    assert fresh.take() == 0


def test_read_only_sequence_never_touches_the_file(tmp_path):
    path = tmp_path / "seq.json"
    sequence = SequenceFile(path, read_only=True)
    sequence.take()
    sequence.save()
    assert not path.exists()
