"""Logging, configured once per process from settings: by the CLI when it loads them (every
`gatewayz` command) and, for `gatewayz serve`, handed to uvicorn as its `log_config`, which
applies it in the server process and again in each worker it spawns.

Every line says when (UTC, ISO 8601, milliseconds), how bad, which logger, and which request
it was logged for when one was being served (`gatewayz.context.REQUEST_ID`, set by the edge
middleware), in one of two formats (`GATEWAYZ_LOG_FORMAT`):

- `text`: `2025-01-02T03:04:05.678Z WARNING gatewayz.auth [<request id>] message`, for a
  person at a terminal; line breaks inside a message are escaped, so one call is one line
  (a traceback follows on the lines after it);
- `json`: one object per line, `time`, `level`, `logger`, `message`, `request_id` (null outside
  a request), `exc_info` (the traceback as text, only when there is one) and the line's own
  `fields` when it has them (the access log's: observability/requests.py), for a collector.

`GATEWAYZ_LOG_LEVEL` is the level of Gatewayz's own loggers (`gatewayz.*`) and uvicorn's;
other libraries log their warnings and errors only (their INFO lines are per-call chatter,
one per HTTP call to Stripe, for instance), or less when the level is stricter than warning.
uvicorn's access log stays off: Gatewayz logs its own access line per inference request
(`gatewayz.access`, observability/requests.py), with what uvicorn's cannot know (model, provider,
tokens, cost).
"""

from __future__ import annotations

import logging
import logging.config
import sys
import time
from typing import Any, Literal

import orjson

from gatewayz.context import REQUEST_ID

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["text", "json"]

# Loggers that follow GATEWAYZ_LOG_LEVEL; every other logger is held to warning at least.
OWN_LOGGERS = ("gatewayz", "uvicorn")
THIRD_PARTY_FLOOR = logging.WARNING


# The request id is read when a line is formatted: handlers run inside the logging call, in the
# caller's context (no queue in between), so that is the request the line was logged for.


def _time(record: logging.LogRecord) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{stamp}.{int(record.msecs):03d}Z"


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")
        rid = REQUEST_ID.get()
        where = f" [{rid}]" if rid else ""
        line = f"{_time(record)} {record.levelname} {record.name}{where} {message}"
        trace = _trace(self, record)
        return f"{line}\n{trace}" if trace else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        fields = getattr(record, "fields", None)  # a line's own fields (the access log's)
        if isinstance(fields, dict):
            out = {**fields, **out}  # never in place of the line's time, level, logger...
        trace = _trace(self, record)
        if trace:
            out["exc_info"] = trace
        return orjson.dumps(out, default=str).decode()


def _trace(formatter: logging.Formatter, record: logging.LogRecord) -> str:
    """The record's traceback and stack, as text ("" when it has neither)."""
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    parts = [record.exc_text or ""]
    if record.stack_info:
        parts.append(formatter.formatStack(record.stack_info))
    return "\n".join(p for p in parts if p)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is when a line is written, not when it was configured:
    a command run in-process with its streams swapped (typer's test runner) leaves no handler
    behind pointing at a closed stream."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr


def logging_config(level: LogLevel, fmt: LogFormat) -> dict[str, Any]:
    """The `logging.config.dictConfig` dictionary (plain data: uvicorn pickles it to workers)."""
    own = level.upper()
    floor = max(logging.getLevelName(own), THIRD_PARTY_FLOOR)
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gatewayz": {"()": f"{__name__}.{formatter.__name__}"}},
        "handlers": {"stderr": {"()": f"{__name__}.StderrHandler", "formatter": "gatewayz"}},
        "root": {"level": logging.getLevelName(floor), "handlers": ["stderr"]},
        "loggers": {
            **{name: {"level": own, "handlers": [], "propagate": True} for name in OWN_LOGGERS},
            # uvicorn's defaults give these handlers of their own; here they go to the root's.
            "uvicorn.error": {"level": own, "handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure_logging(level: LogLevel, fmt: LogFormat) -> None:
    logging.config.dictConfig(logging_config(level, fmt))
