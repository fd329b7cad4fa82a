"""Read complete lines from a file position, bounding the size of each line.

A line longer than ``max_record_bytes`` is cut to that size (the rest of it is skipped, its
original length recorded), so a runaway line costs bounded memory and never blocks the file.
A final line without a newline is left for later unless the caller says the writer is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

SKIP_CHUNK = 64 * 1024


@dataclass(slots=True)
class RawLine:
    text: str
    start: int  # file offset of the line's first byte
    end: int  # file offset just past its newline
    original_bytes: int | None = None  # set when the line was cut to max_record_bytes
    invalid_utf8: bool = False


def decode(data: bytes) -> tuple[str, bool]:
    """Return the text of a line and whether it held invalid UTF-8 (replaced by U+FFFD)."""
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), True


def _decode_cut(data: bytes) -> tuple[str, bool]:
    """Decode a line cut at an arbitrary byte, ignoring a multi-byte character split by the cut."""
    for trim in range(4):
        try:
            return data[: len(data) - trim].decode("utf-8"), False
        except UnicodeDecodeError:
            continue
    return decode(data)


def read_lines(
    handle: BinaryIO,
    offset: int,
    *,
    max_record_bytes: int,
    max_lines: int,
    max_bytes: int,
    end_limit: int | None = None,
    take_partial: bool = False,
) -> tuple[list[RawLine], bool]:
    """Return the complete lines from ``offset`` and whether the end of the file was reached."""
    handle.seek(offset)
    lines: list[RawLine] = []
    position = offset
    total = 0
    while len(lines) < max_lines and total < max_bytes:
        if end_limit is not None and position >= end_limit:
            return lines, False
        chunk = handle.readline(max_record_bytes + 1)
        if not chunk:
            return lines, True
        if chunk.endswith(b"\n"):
            text, bad = decode(chunk[:-1].rstrip(b"\r"))
            lines.append(RawLine(text, position, position + len(chunk), None, bad))
            size = len(chunk)
        elif len(chunk) > max_record_bytes:
            skipped = _skip_rest_of_line(handle)
            if skipped is None and not take_partial:
                return lines, True
            size = len(chunk) + (skipped or 0)
            text, bad = _decode_cut(chunk[:max_record_bytes])
            original = size - (1 if skipped else 0)  # the newline is not part of the record
            lines.append(RawLine(text, position, position + size, original, bad))
        else:
            if not take_partial:
                return lines, True
            text, bad = decode(chunk.rstrip(b"\r"))
            lines.append(RawLine(text, position, position + len(chunk), None, bad))
            size = len(chunk)
        position += size
        total += size
    return lines, False


def _skip_rest_of_line(handle: BinaryIO) -> int | None:
    """Skip to just past the next newline; return the bytes skipped, or None at end of file."""
    skipped = 0
    while True:
        chunk = handle.readline(SKIP_CHUNK)
        if not chunk:
            return None
        skipped += len(chunk)
        if chunk.endswith(b"\n"):
            return skipped
