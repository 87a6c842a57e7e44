"""Logging as an operator sees it: `gatewayz serve`'s stderr, in both formats, from every worker.

Every line has its time (UTC, ISO 8601), level and logger, and the request id when it was
logged while a request was being served; `gatewayz.*` INFO lines are kept at level info; uvicorn's
own lines come out in the same format."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.deploy.helpers import Server, clean_env, serve

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process-group handling assumes Linux"
)

REQUEST_ID = "log-test-request-42"
TIME = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"
TEXT_LINE = re.compile(
    rf"^(?P<time>{TIME}) (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<logger>[\w.]+)"
    r"(?: \[(?P<request_id>[^\]]+)\])? (?P<message>.*)$"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # One registration per minute: the second attempt is refused and logged (gatewayz.auth).
    return clean_env(
        GATEWAYZ_DATA_DIR=str(tmp_path / "data"), GATEWAYZ_REGISTER_RATE_LIMIT="1", **extra
    )


def _refused_registration(server: Server) -> None:
    """Two sign-ups from one address: the second one's refusal is logged during its request."""
    url = f"{server.root}/auth/register"
    with httpx2.Client(trust_env=False, timeout=10.0) as client:
        client.post(url, json={})
        r = client.post(url, json={}, headers={"x-request-id": REQUEST_ID})
    assert r.status_code == 429, r.text
    assert r.headers["x-request-id"] == REQUEST_ID


def _stopped_stderr(server: Server) -> str:
    server.stop()
    return server.stderr


def test_text_lines_carry_time_level_logger_and_the_request_id(tmp_path: Path) -> None:
    with serve(_env(tmp_path), tmp_path, tmp_path / "logs") as server:
        _refused_registration(server)
        stderr = _stopped_stderr(server)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing logged"
    parsed = []
    for line in lines:
        m = TEXT_LINE.match(line)
        assert m, f"not a log line: {line!r}\n{stderr}"
        parsed.append(m.groupdict())
    refused = [p for p in parsed if "register limit reached" in p["message"]]
    assert len(refused) == 1, stderr
    assert refused[0]["level"] == "WARNING"
    assert refused[0]["logger"] == "gatewayz.auth"
    assert refused[0]["request_id"] == REQUEST_ID
    served = [p for p in parsed if p["message"].startswith("providers served:")]
    assert [(p["level"], p["logger"]) for p in served] == [("INFO", "gatewayz")], stderr
    assert served[0]["request_id"] is None  # logged at startup, outside any request
    # uvicorn's own lines go through the same configuration.
    started = [p for p in parsed if p["message"] == "Application startup complete."]
    assert started and started[0]["logger"].startswith("uvicorn"), stderr


def test_json_lines_from_every_worker(tmp_path: Path) -> None:
    env = _env(tmp_path, GATEWAYZ_LOG_FORMAT="json")
    with serve(env, tmp_path, tmp_path / "logs", workers=2) as server:
        _refused_registration(server)
        stderr = _stopped_stderr(server)
    records: list[dict[str, Any]] = []
    for line in stderr.splitlines():
        if line.strip():
            record = json.loads(line)  # one object per line, nothing else
            assert isinstance(record, dict), line
            records.append(record)
    for record in records:
        assert re.fullmatch(TIME, record["time"]), record
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}, record
        assert record["logger"] and isinstance(record["message"], str), record
        assert "request_id" in record, record
    refused = [r for r in records if "register limit reached" in r["message"]]
    assert len(refused) == 1, stderr
    assert refused[0]["level"] == "WARNING"
    assert refused[0]["logger"] == "gatewayz.auth"
    assert refused[0]["request_id"] == REQUEST_ID
    # Each worker configured its logging: both say which providers they serve, at info.
    served = [r for r in records if r["message"].startswith("providers served:")]
    assert [(r["level"], r["logger"], r["request_id"]) for r in served] == [
        ("INFO", "gatewayz", None)
    ] * 2, stderr
    assert sum(r["message"] == "Application startup complete." for r in records) == 2
