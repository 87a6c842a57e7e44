"""Raw-socket HTTP/1.1 for tests about what happens below any client library: slow heads and
bodies, half-sent requests, the bytes of a response as they come off the wire."""

from __future__ import annotations

import json
import select
import socket
import time
from typing import Any


def connect(root: str, timeout: float) -> socket.socket:
    """A TCP connection to `http://host:port` (a blocking read longer than `timeout` fails)."""
    host, port = root.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def read_to_close(s: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails)."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


def read_response(s: socket.socket) -> bytes:
    """One whole response with a content-length, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += s.recv(65536)
    return head + b"\r\n\r\n" + body


def trickle(
    socks: list[socket.socket], first: bytes, every_s: float, within_s: float
) -> dict[int, bytes]:
    """Send `first` on each socket, then one more byte on each every `every_s`, until the
    server closes them all; what each received (by index). Fails after `within_s`."""
    for s in socks:
        s.sendall(first)
    got = {i: b"" for i in range(len(socks))}
    open_ = dict(enumerate(socks))
    deadline = time.monotonic() + within_s
    next_send = time.monotonic() + every_s
    while open_:
        assert time.monotonic() < deadline, f"{len(open_)} connections still open"
        readable, _, _ = select.select(list(open_.values()), [], [], every_s / 2)
        for s in readable:
            i = socks.index(s)
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            got[i] += chunk
            if not chunk:
                del open_[i]
        if time.monotonic() >= next_send:
            next_send += every_s
            for i, s in list(open_.items()):
                try:
                    s.send(b"x")
                except (BrokenPipeError, ConnectionResetError):
                    del open_[i]
    return got


def status_and_json(answer: bytes) -> tuple[bytes, dict[str, str], Any]:
    """(status line, headers with lower-case names, JSON body) of one whole response."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, json.loads(body)
