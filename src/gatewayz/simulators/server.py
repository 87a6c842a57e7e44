"""The simulator: an OpenAI Chat Completions compatible HTTP server on loopback with scriptable
faults, for tests, benchmarks and the zero-key ``simulated`` provider."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import re
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from . import formats, model_lists
from .chat import ChatResponder
from .faults import Fault
from .formats import anthropic as anthropic_format
from .formats import openai as openai_format
from .protocol import JSON_CONTENT_TYPE, Connection, Reply, Request, response

DEFAULT_MODELS = ("simulated/echo", "simulated/lorem", "simulated/tools", "simulated/json")
# The media endpoints' models (simulators/formats/openai_media.py answers any name).
DEFAULT_MODELS += ("simulated/embed", "simulated/image", "simulated/whisper")
CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
MODELS_PATHS = frozenset({"/v1/models", "/models"})
FAULTS_PATH = "/__sim/faults"
REQUESTS_PATH = "/__sim/requests"
MODEL_LISTS_PATH = "/__sim/model-lists"  # scripted model lists (simulators/model_lists.py)
_MAX_BODY = 64 * 1024 * 1024

# A provider family's wire format plugs in as a module or package of `simulators/formats/`
# named like the family, exporting ROUTES: [(method, path regex, handler)],
# handler(sim, request, parsed_json, match) -> Reply.
# Handlers check their own auth (`sim.api_key`) and take their fault with `sim.take_fault()`.
FormatHandler = Callable[["Simulator", Request, Any, "re.Match[str]"], Reply]


def _format_routes() -> list[tuple[str, re.Pattern[str], FormatHandler]]:
    routes = []
    for info in sorted(pkgutil.iter_modules(formats.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{formats.__name__}.{info.name}")
        routes += [(m, re.compile(p), h) for m, p, h in module.ROUTES]
    return routes


_MAX_RECORDED = 10_000


@dataclass(slots=True, frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any | None


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Simulator:
    """OpenAI-compatible simulated upstream. ``start()`` inside a running loop, or
    ``start_in_thread()`` from sync code; ``base_url`` is then ``http://HOST:PORT/v1``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        api_key: str | None = None,
        models: list[str] | None = None,
        max_body_bytes: int = _MAX_BODY,
        max_recorded: int | None = _MAX_RECORDED,
    ) -> None:
        """``max_recorded`` bounds ``requests`` (oldest dropped first; None = unbounded, 0 = no
        recording) so a long-running simulator does not grow without limit."""
        self.host = host
        self.port = port
        self.api_key = api_key
        self.models: list[str] = list(models) if models is not None else list(DEFAULT_MODELS)
        self._max_body = max_body_bytes
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._requests: deque[RecordedRequest] = deque(maxlen=max_recorded)
        self._record = max_recorded != 0
        self._chat = ChatResponder()
        self._format_routes = _format_routes()
        self._conns: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ public API
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received (control endpoints excluded), oldest first."""
        with self._lock:
            return list(self._requests)

    def fault(self, fault: Fault) -> None:
        """Queue ``fault`` for the next chat completion request (FIFO, one request each)."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Drop queued faults and recorded requests."""
        with self._lock:
            self._faults.clear()
            self._requests.clear()

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("simulator already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self._handle, self._conns, self._max_body),
            self.host,
            self.port,
            backlog=1024,
            reuse_address=True,
        )
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close the listening socket and every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = [task for conn in list(self._conns) if (task := conn.abort()) is not None]
        self._conns.clear()
        if tasks:  # let the cancelled replies unwind before the loop may be stopped
            await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start_in_thread(self, timeout: float = 10.0) -> None:
        """Run the simulator on its own event loop in a daemon thread; returns once listening."""
        if self._thread is not None:
            raise RuntimeError("simulator thread already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                loop.close()
                ready.set()
                return
            self._thread_loop = loop
            ready.set()
            try:
                loop.run_forever()
            finally:
                leftover = asyncio.all_tasks(loop)
                for task in leftover:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name="gatewayz-simulator", daemon=True)
        thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("simulator did not start in time")
        if failure:
            raise failure[0]
        self._thread = thread

    def stop_thread(self, timeout: float = 10.0) -> None:
        loop, thread = self._thread_loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread_loop = self._thread = None

    # ------------------------------------------------------------------ routing
    def _handle(self, req: Request) -> Reply:
        path, method, keep = req.path, req.method, req.keep_alive
        if path.startswith("/__sim/"):
            return self._control(req)
        parsed: Any = None
        json_ok = False
        if req.body:
            try:
                parsed = orjson.loads(req.body)
                json_ok = True
            except orjson.JSONDecodeError:
                parsed = None
        if self._record:
            record = RecordedRequest(method, path, req.headers, req.body, parsed)
            with self._lock:
                self._requests.append(record)
        if path in CHAT_PATHS:
            if method != "POST":
                return _not_allowed(req, "POST")
            if not self._authorized(req):
                return self._unauthorized(req)
            return self._chat.reply(req, parsed, json_ok, self._take_fault())
        if path == "/health":
            if method != "GET":
                return _not_allowed(req, "GET")
            return _json(200, b'{"status":"ok"}', keep)
        if path == "/v1/models" and "anthropic-version" in req.headers and method == "GET":
            return anthropic_format.models(self, req, parsed, None)  # Anthropic's list shape
        if path in MODELS_PATHS or path.startswith(("/v1/models/", "/models/")):
            if method != "GET":
                return _not_allowed(req, "GET")
            if not self._authorized(req):
                return self._unauthorized(req)
            if path in MODELS_PATHS:
                return model_lists.openai_reply(self, req)
            model_id = path.split("/models/", 1)[1]
            if model_id in self.models:
                return _json(200, orjson.dumps(openai_format.model_object(model_id)), keep)
            msg = f"The model '{model_id}' does not exist"
            return _json(
                404, openai_format.error_body(msg, param="model", code="model_not_found"), keep
            )
        for route_method, pattern, handler in self._format_routes:
            match = pattern.fullmatch(path)
            if match:
                if method != route_method:
                    return _not_allowed(req, route_method)
                return handler(self, req, parsed, match)
        msg = f"Invalid URL ({method} {path})"
        return _json(404, openai_format.error_body(msg), keep)

    def _authorized(self, req: Request) -> bool:
        if self.api_key is None:
            return True
        return req.headers.get("authorization", "") == f"Bearer {self.api_key}"

    def _unauthorized(self, req: Request) -> Reply:
        if "authorization" not in req.headers:
            msg = "You didn't provide an API key. Provide it in an Authorization header (Bearer)."
            body = openai_format.error_body(msg)
        else:
            body = openai_format.error_body("Incorrect API key provided.", code="invalid_api_key")
        return _json(401, body, req.keep_alive)

    def _control(self, req: Request) -> Reply:
        keep = req.keep_alive
        if req.path == MODEL_LISTS_PATH:
            return model_lists.control(self, req)
        if req.path == FAULTS_PATH:
            if req.method == "POST":
                try:
                    data = orjson.loads(req.body or b"[]")
                    items = data if isinstance(data, list) else [data]
                    faults = [Fault.from_dict(item) for item in items]
                except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                    return _json(400, openai_format.error_body(f"Invalid faults: {exc}"), keep)
                with self._lock:
                    self._faults.extend(faults)
                    queued = len(self._faults)
                return _json(200, orjson.dumps({"added": len(faults), "queued": queued}), keep)
            if req.method == "DELETE":
                with self._lock:
                    self._faults.clear()
                return _json(200, b'{"queued":0}', keep)
            if req.method == "GET":
                with self._lock:
                    queued = [asdict(f) for f in self._faults]
                return _json(200, orjson.dumps(queued), keep)
            return _not_allowed(req, "GET, POST, DELETE")
        if req.path == REQUESTS_PATH:
            if req.method == "GET":
                recorded = [
                    {"method": r.method, "path": r.path, "headers": r.headers, "json": r.json}
                    for r in self.requests
                ]
                return _json(200, orjson.dumps(recorded), keep)
            if req.method == "DELETE":
                with self._lock:
                    self._requests.clear()
                return _json(200, b"[]", keep)
            return _not_allowed(req, "GET, DELETE")
        return _json(404, openai_format.error_body(f"Invalid URL ({req.method} {req.path})"), keep)

    def take_fault(self) -> Fault | None:
        """The next queued fault, if any (each is consumed by one inference request)."""
        return self._take_fault()

    def _take_fault(self) -> Fault | None:
        if not self._faults:  # unlocked peek: the common no-fault path stays lock-free
            return None
        with self._lock:
            return self._faults.popleft() if self._faults else None


def _json(status: int, body: bytes, keep_alive: bool) -> Reply:
    return Reply(response(status, body, keep_alive, JSON_CONTENT_TYPE), keep_alive=keep_alive)


def _not_allowed(req: Request, allow: str) -> Reply:
    body = openai_format.error_body(f"Method {req.method} not allowed for {req.path}.")
    head = response(405, body, req.keep_alive, headers=[("Allow", allow)])
    return Reply(head, keep_alive=req.keep_alive)
