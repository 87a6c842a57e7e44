"""The AWS event-stream framing: round trips, every split point, CRC checks, botocore."""

from __future__ import annotations

import struct
import zlib

import pytest

from gatewayz.providers.bedrock.eventstream import (
    EventStreamDecoder,
    EventStreamError,
    decode_headers,
    encode_message,
)

FRAMES = [
    ({":event-type": "messageStart", ":message-type": "event"}, b'{"role":"assistant"}'),
    ({":event-type": "contentBlockDelta", ":content-type": "json"}, '{"t":"é"}'.encode()),
    ({":message-type": "exception", ":exception-type": "throttlingException"}, b""),
]


def _stream() -> bytes:
    return b"".join(encode_message(h, p) for h, p in FRAMES)


def test_frame_layout_and_crcs() -> None:
    frame = encode_message({"a": "b"}, b"xyz")
    total, head_len, prelude_crc = struct.unpack("!III", frame[:12])
    assert total == len(frame) == 12 + head_len + 3 + 4
    assert head_len == 1 + 1 + 1 + 2 + 1  # name length, name, type, value length, value
    assert prelude_crc == zlib.crc32(frame[:8])
    assert struct.unpack("!I", frame[-4:])[0] == zlib.crc32(frame[:-4])
    assert frame[12 : 12 + head_len] == b"\x01a\x07\x00\x01b"


def test_split_at_every_byte_boundary() -> None:
    data = _stream()
    for cut in range(len(data) + 1):
        dec = EventStreamDecoder()
        got = dec.feed(data[:cut]) + dec.feed(data[cut:])
        assert [(m.headers, m.payload) for m in got] == FRAMES, cut
        assert dec.pending == 0


def test_one_byte_at_a_time() -> None:
    dec = EventStreamDecoder()
    got = []
    for b in _stream():
        got += dec.feed(bytes([b]))
    assert [(m.headers, m.payload) for m in got] == FRAMES


def test_three_way_splits() -> None:
    data = _stream()
    for a in range(0, len(data), 7):
        for b in range(a, len(data), 11):
            dec = EventStreamDecoder()
            got = dec.feed(data[:a]) + dec.feed(data[a:b]) + dec.feed(data[b:])
            assert len(got) == 3


@pytest.mark.parametrize("where", ["prelude", "message", "payload"])
def test_bad_crc_is_an_error(where: str) -> None:
    frame = bytearray(encode_message({":event-type": "x"}, b'{"a":1}'))
    if where == "prelude":
        frame[9] ^= 0x01  # the prelude CRC itself
    elif where == "message":
        frame[-1] ^= 0x01
    else:
        frame[-6] ^= 0x01  # a payload byte: the message CRC no longer matches
    dec = EventStreamDecoder()
    with pytest.raises(EventStreamError, match="CRC"):
        dec.feed(bytes(frame))


def test_bad_lengths_are_errors() -> None:
    prelude = struct.pack("!II", 10, 0)  # shorter than the minimum message
    with pytest.raises(EventStreamError, match="too small"):
        EventStreamDecoder().feed(prelude + struct.pack("!I", zlib.crc32(prelude)) + b"\0" * 4)


def test_all_header_value_types() -> None:
    raw = (
        b"\x01t\x00" + b"\x01f\x01" + b"\x01b\x02\xff" + b"\x01s\x03\x01\x00"
        + b"\x01i\x04" + struct.pack("!i", -5) + b"\x01l\x05" + struct.pack("!q", 2**40)
        + b"\x01y\x06\x00\x02\x00\x01" + b"\x01u\x09" + bytes(range(16))
        + b"\x01d\x08" + struct.pack("!q", 1700000000000)
    )  # fmt: skip
    assert decode_headers(raw) == {
        "t": True, "f": False, "b": -1, "s": 256, "i": -5, "l": 2**40,
        "y": b"\x00\x01", "u": bytes(range(16)), "d": 1700000000000,
    }  # fmt: skip
    with pytest.raises(EventStreamError):
        decode_headers(b"\x01x\x07\x00\x09ab")  # truncated string
    with pytest.raises(EventStreamError):
        decode_headers(b"\x01x\x0c")  # unknown type


def test_botocore_decodes_our_frames_and_we_match_it() -> None:
    eventstream = pytest.importorskip("botocore.eventstream")
    buf = eventstream.EventStreamBuffer()
    buf.add_data(_stream())
    theirs = [(m.headers, m.payload) for m in buf]
    assert theirs == FRAMES
    bad = bytearray(_stream())
    bad[-1] ^= 0xFF
    buf = eventstream.EventStreamBuffer()
    buf.add_data(bytes(bad))
    with pytest.raises(eventstream.ChecksumMismatch):
        list(buf)
    dec = EventStreamDecoder()
    good = dec.feed(bytes(bad))  # the frames before the broken one still come out...
    assert [(m.headers, m.payload) for m in good] == FRAMES[:2]
    assert dec.pending_error is not None
    with pytest.raises(EventStreamError, match="message CRC"):  # ...then the error
        dec.feed(b"")
