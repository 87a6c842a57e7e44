"""The log line formats and levels, in-process (tests/observability/test_logging.py reads them
from a real server's stderr)."""

from __future__ import annotations

import json
import logging
import sys

from gatewayz.context import REQUEST_ID
from gatewayz.observability.log_config import JsonFormatter, TextFormatter, logging_config


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            exc_info = sys.exc_info()
    return logging.LogRecord(
        "gatewayz.test", logging.ERROR, __file__, 1, message, args or None, exc_info
    )


def test_json_line_carries_the_traceback_as_text_and_null_outside_a_request() -> None:
    line = JsonFormatter().format(_record("failed %s", "twice", exc=True))
    assert "\n" not in line  # one object per line, traceback included
    record = json.loads(line)
    assert record["message"] == "failed twice"
    assert (record["level"], record["logger"]) == ("ERROR", "gatewayz.test")
    assert record["request_id"] is None
    assert record["exc_info"].startswith("Traceback")
    assert "RuntimeError: boom" in record["exc_info"]
    assert "exc_info" not in json.loads(JsonFormatter().format(_record("fine")))


def test_both_formats_name_the_request_being_served() -> None:
    token = REQUEST_ID.set("req-7")
    try:
        text = TextFormatter().format(_record("inside"))
        data = json.loads(JsonFormatter().format(_record("inside")))
    finally:
        REQUEST_ID.reset(token)
    assert " ERROR gatewayz.test [req-7] inside" in text
    assert data["request_id"] == "req-7"
    assert "[" not in TextFormatter().format(_record("outside"))


def test_a_text_line_break_in_a_message_cannot_forge_another_line() -> None:
    line = TextFormatter().format(_record("user said %s", "hi\n2025-01-01T00:00:00.000Z INFO x"))
    assert len(line.splitlines()) == 1
    assert line.endswith("user said hi\\n2025-01-01T00:00:00.000Z INFO x")
    with_trace = TextFormatter().format(_record("failed", exc=True))
    assert with_trace.splitlines()[1] == "Traceback (most recent call last):"


def test_the_level_is_gatewayz_and_uvicorns_other_libraries_log_warnings() -> None:
    info = logging_config("info", "text")
    assert info["root"]["level"] == "WARNING"
    assert info["loggers"]["gatewayz"]["level"] == "INFO"
    assert info["loggers"]["uvicorn.error"]["level"] == "INFO"
    assert info["loggers"]["uvicorn.access"] == {"handlers": [], "propagate": False}
    strict = logging_config("error", "json")
    assert strict["root"]["level"] == "ERROR"
    assert strict["formatters"]["gatewayz"]["()"].endswith("JsonFormatter")
    assert logging_config("debug", "text")["loggers"]["gatewayz"]["level"] == "DEBUG"


def test_a_json_line_carries_its_own_fields_as_keys() -> None:
    """The access log's fields become keys of the line's object, one object per line."""
    record = _record("access")
    record.fields = {"status": 200, "model": "m", "cost_usd": "0.000123"}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["status"] == 200 and data["model"] == "m" and data["cost_usd"] == "0.000123"
    assert data["message"] == "access" and data["logger"] == "gatewayz.test"
    record.fields = {"level": "DEBUG", "message": "forged"}  # cannot pass for the line's own
    data = json.loads(JsonFormatter().format(record))
    assert (data["level"], data["message"]) == ("ERROR", "access")
