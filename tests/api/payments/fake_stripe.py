"""A small Stripe API stand-in on 127.0.0.1 for the checkout tests.

It accepts what the official `stripe` library sends — form-encoded POSTs with bracketed nested
keys (`line_items[0][price_data][currency]=usd`), `Authorization: Bearer <key>` and an
`Idempotency-Key` — for `POST /v1/customers` and `POST /v1/checkout/sessions`, and answers JSON
objects shaped like Stripe's (errors as `{"error": {"type", "message"}}`). Every request is
recorded with its decoded parameters for the tests to inspect.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding → nested dicts and lists (`a[0][b]=1` → `{"a": [{"b": "1"}]}`)."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head, _, rest = key.partition("[")
        parts = [head] + ([p.rstrip("]") for p in rest.split("[")] if rest else [])
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(k.isdigit() for k in items):
        return [items[k] for k in sorted(items, key=int)]
    return items


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]


@dataclass
class FakeStripe:
    api_key: str
    requests: list[Recorded] = field(default_factory=list)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _fail: list[tuple[int, str]] = field(default_factory=list)
    _idempotent: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail_next(self, status: int, message: str) -> None:
        """The next request answers `status` with Stripe's error shape and `message`."""
        with self._lock:
            self._fail.append((status, message))

    def calls(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self._fail.clear()

    # ---- server ------------------------------------------------------------------------
    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                status, payload = fake.handle(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{secrets.token_hex(7)}")
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name="fake-stripe"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ---- the API -----------------------------------------------------------------------
    def handle(
        self, method: str, path: str, headers: dict[str, str], body: str
    ) -> tuple[int, dict[str, Any]]:
        params = decode_form(body)
        with self._lock:
            self.requests.append(Recorded(method, path, headers, params))
            if headers.get("authorization") != f"Bearer {self.api_key}":
                return 401, _error("invalid_request_error", "Invalid API Key provided.")
            if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                return 400, _error("invalid_request_error", "Expected a form-encoded body.")
            if self._fail:
                status, message = self._fail.pop(0)
                return status, _error("invalid_request_error", message)
            key = headers.get("idempotency-key")
            if key and (path, key) in self._idempotent:
                return self._idempotent[(path, key)]
            if path == "/v1/customers":
                answer = 200, self._customer(params)
            elif path == "/v1/checkout/sessions":
                answer = self._session(params)
            else:
                return 404, _error("invalid_request_error", f"Unrecognized request URL ({path}).")
            if key:
                self._idempotent[(path, key)] = answer
            return answer

    def _customer(self, params: dict[str, Any]) -> dict[str, Any]:
        cid = f"cus_test_{secrets.token_hex(7)}"
        customer = {
            "id": cid,
            "object": "customer",
            "created": int(time.time()),
            "email": params.get("email"),
            "metadata": params.get("metadata", {}),
            "livemode": False,
        }
        self.customers[cid] = customer
        return customer

    def _session(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        mode = params.get("mode")
        if mode not in ("payment", "subscription"):
            return 400, _error("invalid_request_error", "Invalid mode.")
        if params.get("customer") not in self.customers:
            return 400, _error("invalid_request_error", "No such customer.")
        items = params.get("line_items") or []
        if not items or not params.get("success_url"):
            return 400, _error("invalid_request_error", "Missing line_items or success_url.")
        total = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
        sid = f"cs_test_{secrets.token_hex(12)}"
        session = {
            "id": sid,
            "object": "checkout.session",
            "mode": mode,
            "status": "open",
            "payment_status": "unpaid",
            "customer": params["customer"],
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata", {}),
            "amount_total": total,
            "currency": items[0]["price_data"]["currency"],
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "payment_intent": None,
            "subscription": None,
            "url": f"https://checkout.stripe.com/c/pay/{sid}",
            "livemode": False,
            "created": int(time.time()),
        }
        self.sessions[sid] = session
        return 200, session


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"error": {"type": kind, "message": message}}
