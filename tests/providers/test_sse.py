"""The incremental SSE decoder every family's stream reader is built on."""

from __future__ import annotations

import pytest

from gatewayz.providers.sse import SSEDecoder

# ================================================================ SSE decoder
SSE_STREAM = (
    b": keep-alive comment\r\n"
    b"\r\n"
    b'data: {"a":1}\r\n'
    b"\r\n"
    b"event: message\r\n"
    b"id: 7\r\n"
    b"data: line one\r\n"
    b"data:line two\r\n"
    b": a comment inside an event\r\n"
    b"\r\n"
    b"data: [DONE]\r\n"
    b"\r\n"
)


SSE_EVENTS = [(None, b'{"a":1}'), (b"message", b"line one\nline two"), (None, b"[DONE]")]


def _feed_all(parts: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    d = SSEDecoder()
    out = []
    for p in parts:
        out += d.feed(p)
    return out


def test_sse_whole_stream() -> None:
    d = SSEDecoder()
    assert d.feed(SSE_STREAM) == SSE_EVENTS
    assert d.pending == b""


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_sse_split_at_every_byte_boundary(eol: bytes) -> None:
    stream = SSE_STREAM.replace(b"\r\n", eol)
    for i in range(len(stream) + 1):
        assert _feed_all([stream[:i], stream[i:]]) == SSE_EVENTS, (eol, i, stream[:i])


def test_sse_one_byte_at_a_time() -> None:
    parts = [SSE_STREAM[i : i + 1] for i in range(len(SSE_STREAM))]
    assert _feed_all(parts) == SSE_EVENTS


def test_sse_crlf_split_across_feeds_with_empty_feeds_between() -> None:
    parts = [b"event: e\r", b"", b"\ndata: a\r", b"", b"\ndata: b\r\n\r", b"", b"\n"]
    assert _feed_all(parts) == [(b"e", b"a\nb")]
    # lone CRs are line endings too, and a later LF after a blank line is its own line ending
    assert _feed_all([b"data: x\r\r", b"\ndata: y\n\n"]) == [(None, b"x"), (None, b"y")]


def test_sse_events_only_when_complete() -> None:
    d = SSEDecoder()
    assert d.feed(b"data: par") == []
    assert d.feed(b"tial\n") == []
    assert d.pending == b"data: partial\n"
    assert d.feed(b"\ndata: next") == [(None, b"partial")]
    assert d.pending == b"data: next"


def test_sse_comment_only_and_empty_blocks_skipped() -> None:
    d = SSEDecoder()
    assert d.feed(b": ping\n\n\n\n: pong\n\nevent: x\n\n") == []
    assert d.feed(b"data:\n\n") == [(None, b"")]


def test_sse_data_prefix_space_handling() -> None:
    d = SSEDecoder()
    assert d.feed(b"data:  two spaces\n\ndata:none\n\n") == [
        (None, b" two spaces"),
        (None, b"none"),
    ]
