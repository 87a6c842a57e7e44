"""The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), both directions.

A message is: prelude (total length u32, headers length u32, CRC32 of those 8 bytes), headers,
payload, then the CRC32 of everything before it. All integers big-endian. A header is a 1-byte
name length, the name, a 1-byte value type and the value (types 0-9: bool true/false, int8,
int16, int32, int64, byte array and string with a u16 length, timestamp int64, uuid 16 bytes).

`EventStreamDecoder.feed` takes bytes as they arrive, split anywhere, and returns the complete
messages; `encode_message` is its inverse (string headers only, which is all AWS sends).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

PRELUDE_LENGTH = 12
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
_MIN_MESSAGE = PRELUDE_LENGTH + 4
_U32 = struct.Struct("!I")
_PRELUDE = struct.Struct("!III")
_STRING = 7


class EventStreamError(Exception):
    """A frame that is not valid event-stream framing (bad CRC, bad lengths, bad header)."""


@dataclass(slots=True)
class EventMessage:
    headers: dict[str, Any]
    payload: bytes


def _crc(data: bytes | bytearray, start: int = 0) -> int:
    return zlib.crc32(data, start) & 0xFFFFFFFF


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One framed message with string-valued headers."""
    parts = []
    for name, value in headers.items():
        n, v = name.encode(), value.encode()
        parts.append(bytes((len(n),)) + n + bytes((_STRING,)) + struct.pack("!H", len(v)) + v)
    head = b"".join(parts)
    total = PRELUDE_LENGTH + len(head) + len(payload) + 4
    prelude = struct.pack("!II", total, len(head))
    prelude += _U32.pack(_crc(prelude))
    body = prelude + head + payload
    return body + _U32.pack(_crc(body))


_FIXED = {2: ("!b", 1), 3: ("!h", 2), 4: ("!i", 4), 5: ("!q", 8), 8: ("!q", 8)}


def decode_headers(data: bytes) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    i, end = 0, len(data)
    try:
        while i < end:
            n = data[i]
            name = data[i + 1 : i + 1 + n].decode()
            i += 1 + n
            kind = data[i]
            i += 1
            value: Any
            if kind in (0, 1):
                value = kind == 0
            elif kind in _FIXED:
                fmt, size = _FIXED[kind]
                (value,) = struct.unpack_from(fmt, data, i)
                i += size
            elif kind in (6, _STRING):
                (size,) = struct.unpack_from("!H", data, i)
                raw = data[i + 2 : i + 2 + size]
                if len(raw) != size:
                    raise EventStreamError("truncated header value")
                value = raw.decode() if kind == _STRING else raw
                i += 2 + size
            elif kind == 9:
                value = data[i : i + 16]
                i += 16
            else:
                raise EventStreamError(f"unknown header value type {kind}")
            if i > end or not name:
                raise EventStreamError("truncated header")
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise EventStreamError(f"malformed headers ({type(exc).__name__})") from None
    return headers


class EventStreamDecoder:
    """Incremental decoder: `feed` any split of the byte stream, get the complete messages."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._error: EventStreamError | None = None

    @property
    def pending(self) -> int:
        """Bytes held that do not yet form a complete message."""
        return len(self._buf)

    @property
    def pending_error(self) -> EventStreamError | None:
        """A broken frame found after the messages the last `feed` returned."""
        return self._error

    def feed(self, data: bytes) -> list[EventMessage]:
        """The messages completed by `data`. A broken frame raises EventStreamError once the
        good messages before it have been returned (so on this call, or on the next)."""
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[EventMessage] = []
        pos = 0
        try:
            while (found := self._next(pos)) is not None:
                out.append(found[0])
                pos = found[1]
        except EventStreamError as exc:
            self._error = exc
            if not out:
                raise
        finally:
            if pos:
                del self._buf[:pos]
        return out

    def _next(self, pos: int) -> tuple[EventMessage, int] | None:
        """The message starting at `pos` and the position after it; None if incomplete."""
        buf = self._buf
        if len(buf) - pos < PRELUDE_LENGTH:
            return None
        total, head_len, prelude_crc = _PRELUDE.unpack_from(buf, pos)
        if _crc(buf[pos : pos + 8]) != prelude_crc:
            raise EventStreamError("prelude CRC mismatch")
        if head_len > MAX_HEADERS_LENGTH:
            raise EventStreamError(f"headers length {head_len} too large")
        if total < _MIN_MESSAGE + head_len:
            raise EventStreamError(f"message length {total} too small")
        if total - _MIN_MESSAGE - head_len > MAX_PAYLOAD_LENGTH:
            raise EventStreamError(f"payload length {total} too large")
        if len(buf) - pos < total:
            return None
        frame = bytes(buf[pos : pos + total])
        (message_crc,) = _U32.unpack_from(frame, total - 4)
        if _crc(frame[8 : total - 4], prelude_crc) != message_crc:
            raise EventStreamError("message CRC mismatch")
        headers = decode_headers(frame[PRELUDE_LENGTH : PRELUDE_LENGTH + head_len])
        payload = frame[PRELUDE_LENGTH + head_len : total - 4]
        return EventMessage(headers, payload), pos + total
