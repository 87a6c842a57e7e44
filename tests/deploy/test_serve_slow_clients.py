"""`gatewayz serve --workers 2` applies the slow-client timeouts from the environment in every
worker: the settings reach each worker's HTTP protocol (api/http_protocol.py) through its
application's lifespan state."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.deploy.helpers import clean_env, connection_owner, serve
from tests.e2e.raw_http import connect, read_to_close, status_and_json, trickle

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process-group handling assumes Linux"
)

WORKERS = 2
MAX_CONNECTIONS = 40
CUT_WITHIN_S = 15.0


def test_every_worker_cuts_off_slow_heads_and_bodies_with_the_configured_timeouts(
    tmp_path: Path,
) -> None:
    env = clean_env(
        GATEWAYZ_DATA_DIR=str(tmp_path / "data"),
        GATEWAYZ_HEAD_READ_TIMEOUT_S="1",
        GATEWAYZ_BODY_READ_TIMEOUT_S="1.25",
    )
    with serve(env, tmp_path, tmp_path / "logs", workers=WORKERS) as server:
        workers = server.children()
        socks, owners = [], set()
        try:
            # Connections until both workers hold some (the kernel spreads the accepts).
            while len(owners) < WORKERS and len(socks) < MAX_CONNECTIONS:
                s = connect(server.root, CUT_WITHIN_S)
                s.sendall(b"GET /health HTTP/1.1\r\n")  # a head that has begun
                socks.append(s)
                for _ in range(100):  # until the server has accepted it
                    owner = connection_owner(server.port, s.getsockname()[1], workers)
                    if owner is not None:
                        owners.add(owner)
                        break
            assert len(owners) == WORKERS, f"only {owners} of {workers} took connections"
            got = trickle(socks, b"Host: x\r\nX-Slow: ", 0.2, CUT_WITHIN_S)
        finally:
            for s in socks:
                s.close()
        for answer in got.values():
            status, _, body = status_and_json(answer)
            assert status == b"HTTP/1.1 408 Request Timeout", answer[:200]
            # The configured limit, not the 10 s default, in every worker.
            assert "the limit is 1 s" in body["error"]["message"]
        with connect(server.root, CUT_WITHIN_S) as s:
            s.sendall(b"POST /auth/register HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\n{")
            status, _, body = status_and_json(read_to_close(s))
        assert status == b"HTTP/1.1 408 Request Timeout"
        assert "no data for 1.25 s" in body["error"]["message"]
