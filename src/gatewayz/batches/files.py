"""Files on disk: `DATA_DIR/files/<id>.jsonl`, the directory and every file readable by the
gateway's user alone (0700, 0600). A path is made from a file id the gateway generated and
checked against its pattern: never from anything a client sent.

An input file is checked line by line as it is written (`check_line`): each non-blank line a JSON
object with a `custom_id` (a string of 1 to 512 characters, unique in the file), `method`
`POST`, `url` one of the endpoints batches serve and a `body` object (not a stream); a bad line
is a 400 naming its line number, and nothing is kept.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

import orjson

from gatewayz.errors import InvalidRequest, NotFound, PayloadTooLarge

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings")
MAX_LINES = 50_000  # OpenAI's limit of requests per batch
MAX_CUSTOM_ID = 512
_ID = re.compile(r"^file-[0-9a-f]{24}$")


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


class Request:
    """One line of an input file."""

    __slots__ = ("body", "custom_id", "line_no", "url")

    def __init__(self, line_no: int, custom_id: str, url: str, body: str) -> None:
        self.line_no, self.custom_id, self.url, self.body = line_no, custom_id, url, body


def _bad(line_no: int, problem: str) -> InvalidRequest:
    return InvalidRequest(f"Line {line_no} of the file: {problem}", param="file")


def check_line(text: bytes, line_no: int, seen: dict[str, int]) -> Request:
    """One line of an input file, checked (`seen`: the custom ids of the lines before it)."""
    try:
        raw = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _bad(line_no, "not valid JSON.") from None
    if not isinstance(raw, dict):
        raise _bad(line_no, "not a JSON object.")
    custom_id = raw.get("custom_id")
    if not isinstance(custom_id, str) or not 0 < len(custom_id) <= MAX_CUSTOM_ID:
        raise _bad(line_no, f"'custom_id' must be a string of 1 to {MAX_CUSTOM_ID} characters.")
    if custom_id in seen:
        raise _bad(line_no, f"custom_id {custom_id!r} is already used by line {seen[custom_id]}.")
    seen[custom_id] = line_no
    if raw.get("method") != "POST":
        raise _bad(line_no, "'method' must be 'POST'.")
    url = raw.get("url")
    if url not in ENDPOINTS:
        raise _bad(line_no, f"'url' must be one of {', '.join(ENDPOINTS)}, not {url!r}.")
    body = raw.get("body")
    if not isinstance(body, dict):
        raise _bad(line_no, "'body' must be a JSON object (the request's body).")
    if body.get("stream"):
        raise _bad(line_no, "'body.stream' is not supported in a batch.")
    return Request(line_no, custom_id, str(url), orjson.dumps(body).decode())


class FileStore:
    def __init__(self, data_dir: Path, *, max_bytes: int, max_line_bytes: int) -> None:
        self.directory = data_dir / "files"
        self.max_bytes = max_bytes
        self.max_line_bytes = max_line_bytes

    def path(self, file_id: str) -> Path:
        if not _ID.match(file_id):
            raise NotFound(f"No such file: {file_id!r}.")
        return self.directory / f"{file_id}.jsonl"

    def _ready(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)

    @contextlib.contextmanager
    def writing(self, file_id: str) -> Iterator[IO[bytes]]:
        """A new file, written under a temporary name and in place only once complete."""
        self._ready()
        final = self.path(file_id)
        part = final.with_name(f".{final.name}.part")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            os.replace(part, final)
        except BaseException:
            part.unlink(missing_ok=True)
            raise

    def save_input(self, file_id: str, source: BinaryIO) -> int:
        """Check an uploaded input file line by line while writing it; its size in bytes
        (blocking: run it on a thread)."""
        seen: dict[str, int] = {}
        size = line_no = 0
        with self.writing(file_id) as out:
            while raw := source.readline(self.max_line_bytes + 1):
                line_no += 1
                size += len(raw)
                if size > self.max_bytes:
                    raise PayloadTooLarge(f"The file is larger than {self.max_bytes} bytes.")
                if len(raw) > self.max_line_bytes and not raw.endswith(b"\n"):
                    raise _bad(line_no, f"longer than {self.max_line_bytes} bytes.")
                out.write(raw)
                if raw.strip():
                    check_line(raw, line_no, seen)
                    if len(seen) > MAX_LINES:
                        raise _bad(line_no, f"a batch holds at most {MAX_LINES} requests.")
            if not seen:
                raise InvalidRequest("The file holds no request lines (JSONL).", param="file")
        return size

    def requests(self, file_id: str) -> list[Request]:
        """The request lines of an input file (checked again: blocking, run it on a thread)."""
        seen: dict[str, int] = {}
        out = []
        with self._open(file_id) as f:
            for line_no, raw in enumerate(f, start=1):
                if raw.strip():
                    out.append(check_line(raw, line_no, seen))
        return out

    def _open(self, file_id: str) -> Any:
        try:
            return self.path(file_id).open("rb")
        except FileNotFoundError:
            raise NotFound(f"The content of file {file_id!r} is missing.") from None

    def delete(self, file_id: str) -> None:
        self.path(file_id).unlink(missing_ok=True)
