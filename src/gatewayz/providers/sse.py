"""Incremental Server-Sent Events decoding for upstream streams."""

from __future__ import annotations


class SSEDecoder:
    """Feed raw bytes as they arrive; get back the complete events as (event, data) pairs.
    `event` is None when the event has no `event:` line; comment lines are skipped."""

    __slots__ = ("_buf", "_cr")

    def __init__(self) -> None:
        self._buf = b""
        self._cr = False  # the last feed ended with CR: a leading LF now completes that CRLF

    def feed(self, data: bytes) -> list[tuple[bytes | None, bytes]]:
        if self._cr and data[:1] == b"\n":
            data = data[1:]
            self._cr = False
        if data:
            self._cr = data[-1:] == b"\r"
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop()
        events = []
        for block in blocks:
            if not block:
                continue
            event = None
            data_lines = []
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    data_lines.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    event = line[6:].strip()
            if data_lines:
                events.append((event, b"\n".join(data_lines)))
        return events

    @property
    def pending(self) -> bytes:
        return self._buf
