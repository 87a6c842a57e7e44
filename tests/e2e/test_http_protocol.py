"""The HTTP protocol turns Nagle off on every connection. asyncio does it only for sockets made
with proto=IPPROTO_TCP, and the socket uvicorn shares between workers (`--workers N`), like the
harness's, has proto 0: without this, a response written in two parts waited ~40 ms for the
client's delayed ACK."""

from __future__ import annotations

import socket

import httpx2 as httpx

from tests.e2e.harness import Gateway


def test_every_accepted_connection_has_nagle_off(gateway: Gateway) -> None:
    assert gateway.server.servers, "the harness runs a real server"
    listening = gateway.server.servers[0].sockets[0]
    assert listening.proto == 0  # the case asyncio leaves alone
    with httpx.Client(trust_env=False) as client:
        assert client.get(gateway.root + "/health").status_code == 200
        conns = list(gateway.server.server_state.connections)
        assert conns
        for protocol in conns:
            sock = protocol.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
