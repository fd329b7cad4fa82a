"""FileTailer: formats, rotation, truncation, restarts, oversized and broken lines, multi-line."""

from __future__ import annotations

import json
import os
import time

import pytest

from shared.config import ConfigError
from tests.logship.conftest import AGENT, append


def jl(message: str, **fields) -> str:
    return (
        json.dumps({"timestamp": "2026-01-15T10:30:45.123Z", "level": "INFO", "message": message, **fields})
        + "\n"
    )


def test_json_lines_become_logs_batch_records_with_the_server_shape(tail):
    path = tail.path("app.log")
    append(path, jl("hello", logger="api", request_id="r1", module="m", line=3, user="ann"))
    tailer = tail.tailer([{"paths": [path], "format": "json", "service": "shop"}])
    assert tailer.poll() == 1
    (batch,) = tail.send.batches()
    assert (batch.kind, batch.agent_id, batch.host) == ("logs", AGENT.agent_id, AGENT.host)
    (record,) = batch.logs
    assert record["ts"] == pytest.approx(1768473045.123)
    assert (record["level"], record["message"], record["logger"]) == ("INFO", "hello", "api")
    assert (record["service"], record["request_id"], record["module"], record["line"]) == (
        "shop",
        "r1",
        "m",
        3,
    )
    assert record["attrs"] == {"user": "ann", "file": path}


def test_glob_picks_up_every_matching_file_including_new_ones(tail):
    append(tail.path("a.log"), jl("from a"))
    tailer = tail.tailer([{"paths": [os.path.join(tail.logs, "*.log")]}])
    tailer.poll()
    append(tail.path("b.log"), jl("from b"))
    append(tail.path("ignored.txt"), jl("not matched"))
    tailer.poll()
    assert sorted(tail.send.messages()) == ["from a", "from b"]


def test_rotation_by_rename_reads_the_old_file_to_its_end_then_the_new_file(tail):
    path = tail.path("app.log")
    append(path, jl("1") + jl("2"))
    tailer = tail.tailer([{"paths": [path]}], multiline_timeout=1.0)
    tailer.poll()
    append(path, jl("3"))  # written just before the rotation, not yet read
    os.rename(path, tail.path("app.log.1"))
    append(tail.path("app.log.1"), jl("4"))  # the writer still had the old file open
    append(path, jl("5"))
    tailer.poll()
    assert tailer.stats()["files_closed"] == 0  # the old file may still be written to
    time.sleep(1.05)  # the old file goes quiet
    tailer.poll()
    assert tail.send.messages() == ["1", "2", "3", "4", "5"]
    assert tailer.stats()["files_closed"] == 1
    assert tailer.stats()["files_tracked"] == 1
    epochs = {b.epoch for b in tail.send.batches()}
    assert len(epochs) == 2  # the new file is a new generation


def test_truncation_starts_over_at_the_beginning_in_a_new_epoch(tail):
    path = tail.path("app.log")
    append(path, jl("before-1") + jl("before-2") + jl("before-3"))
    tailer = tail.tailer([{"paths": [path]}])
    tailer.poll()
    with open(path, "r+b") as handle:  # copytruncate
        handle.truncate(0)
    append(path, jl("after-1"))
    tailer.poll()
    assert tail.send.messages() == ["before-1", "before-2", "before-3", "after-1"]
    assert tailer.stats()["file_truncations"] == 1
    first, second = tail.send.batches()
    assert second.epoch > first.epoch and second.seq == 0


def test_truncation_followed_by_more_data_than_before_is_detected_by_fingerprint(tail):
    path = tail.path("app.log")
    append(path, jl("old"))
    tailer = tail.tailer([{"paths": [path]}])
    tailer.poll()
    with open(path, "wb") as handle:
        handle.write((jl("new-1") + jl("new-2")).encode())
    tailer.poll()
    assert tail.send.messages() == ["old", "new-1", "new-2"]


def test_restart_in_the_middle_of_a_file_neither_skips_nor_repeats(tail):
    path = tail.path("app.log")
    append(path, "".join(jl(f"line-{i}") for i in range(10)))
    files = [{"paths": [path]}]
    first = tail.tailer(files, max_batch_records=4)
    first.scan()
    (tracked,) = first.files.values()
    first._ship_next(tracked, final=False)  # one batch of 4, then the agent stops
    first.close()
    append(path, "".join(jl(f"line-{i}") for i in range(10, 13)))
    second = tail.tailer(files, max_batch_records=4)
    second.poll()
    assert tail.send.messages() == [f"line-{i}" for i in range(13)]
    assert len(tail.send.raw) == len({b.identity for b in tail.send.batches()})  # nothing sent twice


def test_crash_after_send_before_commit_resends_the_same_batch_identity(tail):
    path = tail.path("app.log")
    append(path, jl("a") + jl("b"))
    files = [{"paths": [path]}]
    tail.send.fail_after_record = 1  # the batch reaches the transport, then the agent "dies"
    crashed = tail.tailer(files)
    crashed.poll()
    crashed.close()
    append(path, jl("c"))  # more lines arrive while the agent is down
    restarted = tail.tailer(files)
    restarted.poll()
    batches = tail.send.batches()
    assert [len(b.logs) for b in batches] == [2, 2, 1]
    assert batches[0].identity == batches[1].identity  # stored once by the workers
    assert batches[0].logs == batches[1].logs
    assert tail.send.messages() == ["a", "b", "c"]


def test_line_of_one_megabyte_is_cut_to_max_record_bytes_and_counted(tail):
    path = tail.path("app.log")
    prefix = "2026-01-15 10:30:45 INFO "
    huge = prefix + "x" * (1_000_000 - len(prefix))
    append(path, f"{prefix}before\n{huge}\n{prefix}after\n")
    tailer = tail.tailer([{"paths": [path], "format": "text"}], max_record_bytes=65536)
    tailer.poll(final=True)
    before, cut, after = tail.send.unique_records()
    assert before["message"] == "before"
    assert cut["message"] == "x" * (65536 - len(prefix))
    assert cut["attrs"]["truncated"] is True
    assert cut["attrs"]["original_bytes"] == 1_000_000
    assert tailer.stats()["lines_truncated"] == 1
    assert after["message"] == "after"
    assert "truncated" not in after["attrs"]


def test_oversized_json_line_is_kept_as_text_with_its_level(tail):
    path = tail.path("app.log")
    append(path, json.dumps({"level": "ERROR", "message": "y" * 5000}) + "\n" + jl("next"))
    tailer = tail.tailer([{"paths": [path]}], max_record_bytes=1024)
    tailer.poll()
    big, nxt = tail.send.unique_records()
    assert big["level"] == "ERROR" and big["attrs"]["original_bytes"] > 5000
    assert len(big["message"].encode()) == 1024
    assert nxt["message"] == "next"


def test_invalid_utf8_is_replaced_and_counted_without_losing_the_line(tail):
    path = tail.path("app.log")
    append(path, b"2026-01-15 10:30:45 ERROR caf\xe9 \xff broken\n2026-01-15 10:30:46 INFO fine\n")
    tailer = tail.tailer([{"paths": [path], "format": "text"}])
    tailer.poll(final=True)
    bad, good = tail.send.unique_records()
    assert bad["message"] == "caf\ufffd \ufffd broken"
    assert bad["level"] == "ERROR" and bad["attrs"]["invalid_utf8"] is True
    assert good["message"] == "fine"
    assert tailer.stats()["lines_invalid_utf8"] == 1


def test_malformed_json_line_is_rejected_counted_and_explained_others_kept(tail):
    path = tail.path("app.log")
    append(
        path,
        jl("one")
        + '{"level": "INFO", "message": "unterminated\n'
        + "[1, 2]\n".replace("[", "{[")
        + jl("two"),
    )
    tailer = tail.tailer([{"paths": [path]}])
    tailer.poll()
    assert tail.send.messages() == ["one", "two"]
    stats = tailer.stats()
    assert stats["lines_rejected"] == 2
    assert "malformed JSON" in stats["last_rejections"][0]
    assert f"{path} at byte {len(jl('one'))}" in stats["last_rejections"][0]


def test_json_array_line_is_rejected_as_not_an_object(tail):
    path = tail.path("app.log")
    append(path, '{"a": 1}\n'.replace('{"a": 1}', "{}") + jl("ok"))
    append(path, "  {\n")
    tailer = tail.tailer([{"paths": [path]}])
    tailer.poll(final=True)
    assert "ok" in tail.send.messages()
    assert tailer.stats()["lines_rejected"] == 1


def test_multiline_traceback_in_text_file_is_joined_into_one_record(tail):
    path = tail.path("app.log")
    traceback_lines = (
        "2026-01-15 10:30:45,123 ERROR request failed\n"
        "Traceback (most recent call last):\n"
        '  File "/app/views.py", line 12, in handle\n'
        "    raise ValueError('bad')\n"
        "ValueError: bad\n"
        "2026-01-15 10:30:46,000 INFO next request\n"
    )
    append(path, traceback_lines)
    tailer = tail.tailer([{"paths": [path], "format": "text"}])
    tailer.poll(final=True)
    error, info = tail.send.unique_records()
    assert error["level"] == "ERROR"
    assert error["message"].splitlines() == [
        "request failed",
        "Traceback (most recent call last):",
        '  File "/app/views.py", line 12, in handle',
        "    raise ValueError('bad')",
        "ValueError: bad",
    ]
    assert error["ts"] == pytest.approx(1768473045.123)
    assert info["message"] == "next request"


def test_last_record_waits_for_continuation_lines_until_the_file_is_quiet(tail):
    path = tail.path("app.log")
    append(path, "2026-01-15 10:30:45 ERROR failed\nTraceback (most recent call last):\n")
    tailer = tail.tailer([{"paths": [path], "format": "text"}], multiline_timeout=0.3)
    tailer.poll()
    assert tail.send.raw == []  # more of the traceback may still come
    append(path, "ValueError: bad\n")
    tailer.poll()
    assert tail.send.raw == []
    time.sleep(0.35)
    tailer.poll()
    (record,) = tail.send.unique_records()
    assert record["message"].splitlines()[-1] == "ValueError: bad"


def test_line_without_newline_is_shipped_only_after_it_is_complete_or_quiet(tail):
    path = tail.path("app.log")
    append(path, jl("full") + '{"message": "part')
    tailer = tail.tailer([{"paths": [path]}], multiline_timeout=5)
    tailer.poll()
    append(path, 'ial", "level": "WARN"}\n')
    tailer.poll()
    assert tail.send.messages() == ["full", "partial"]
    assert tail.send.unique_records()[1]["level"] == "WARNING"


def test_custom_text_pattern_sets_level_message_and_attrs(tail):
    path = tail.path("nginx.log")
    append(path, "[warn] 1234#0: upstream slow\n[crit] 1234#0: disk full\n")
    pattern = r"^\[(?P<level>\w+)\] (?P<pid>\d+)#\d+: (?P<message>.*)$"
    tailer = tail.tailer([{"paths": [path], "format": "text", "pattern": pattern, "service": "nginx"}])
    tailer.poll(final=True)
    first, second = tail.send.unique_records()
    assert (first["level"], first["message"], first["attrs"]["pid"]) == ("WARNING", "upstream slow", "1234")
    assert (second["level"], second["service"]) == ("CRITICAL", "nginx")


@pytest.mark.parametrize(
    ("files", "named"),
    [
        ([{"paths": ["/x"], "format": "text", "pattern": "(unclosed"}], "logs.files[0].pattern"),
        ([{"paths": ["/x"], "format": "text", "pattern": r"(?P<lvl>\w+)"}], "logs.files[0].pattern"),
        ([{"paths": [], "format": "json"}], "logs.files[0].paths"),
        ([{"paths": ["/x"], "format": "xml"}], "logs.files[0].format"),
        ([{"paths": ["/x"], "colour": "red"}], "logs.files[0]"),
    ],
)
def test_bad_file_settings_stop_startup_naming_the_key(tail, files, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        tail.tailer(files)


def test_bad_numeric_setting_names_the_key(tail):
    with pytest.raises(ConfigError, match=r"logs\.max_record_bytes"):
        tail.tailer([], max_record_bytes=10)
    with pytest.raises(ConfigError, match=r"logs\.poll_interval"):
        tail.tailer([], poll_interval="fast")


def test_logs_table_of_the_agent_toml_config_loads(tmp_path):
    import tomllib

    from agent.logs import LogShipConfig

    document = tomllib.loads(
        """
        [logs]
        socket_path = "/run/fleetwatch/agent.sock"
        socket_mode = 0o660
        poll_interval = 0.5
        max_record_bytes = 32768

        [[logs.files]]
        paths = ["/var/log/shop/*.log"]
        format = "json"
        service = "shop"

        [[logs.files]]
        paths = ["/var/log/nginx/error.log*"]
        format = "text"
        pattern = '^\\[(?P<level>\\w+)\\] (?P<message>.*)$'
        """
    )
    config = LogShipConfig.from_dict(document["logs"], str(tmp_path))
    assert (config.socket_mode, config.poll_interval, config.max_record_bytes) == (0o660, 0.5, 32768)
    assert [f.format for f in config.files] == ["json", "text"]
    assert config.files[1].pattern.match("[error] disk full").group("message") == "disk full"
    assert config.state_dir == str(tmp_path)


def test_compressed_rotated_files_matched_by_the_glob_are_skipped(tail):
    import gzip

    path = tail.path("app.log")
    append(path, jl("current"))
    with gzip.open(tail.path("app.log.2.gz"), "wb") as handle:
        handle.write(jl("old compressed").encode())
    tailer = tail.tailer([{"paths": [path + "*"]}])
    tailer.poll()
    assert tail.send.messages() == ["current"]
    assert tailer.stats()["files_tracked"] == 1
