"""Scriptable model lists: what each wire format's list endpoint answers, and a fault that makes
it fail. The endpoints: OpenAI `GET /v1/models`, Anthropic `GET /v1/models` with an
`anthropic-version` header, Gemini `GET /v1beta/models`, Cohere `GET /cohere/v1/models`.

Unscripted, each answers as it always did: the simulator's `models` (OpenAI, Anthropic, Cohere)
or the Gemini format's fixed `MODELS`. A scripted list holds entries
`{"id", "name"?, "context_length"?, "input_modalities"?, "output_modalities"?, "tools"?,
"hugging_face_id"?}` (a bare string is `{"id": ...}`), rendered in each format's own shape.

List faults are separate from the chat faults (a background model-list read never takes a
fault a test queued for a completion): `ListFault(status, delay_s, malformed, times)` makes the
format's list fail `times` times (None: until reset). In process: `lists_of(sim).set(...)`,
`.fail(...)`, `.reset()`; over HTTP: `POST /__sim/model-lists` with `{"format", "models"?,
"fault"?}`, `DELETE` resets, `GET` shows calls and faults.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .protocol import JSON_CONTENT_TYPE, Reply, Request, response

if TYPE_CHECKING:
    from .server import Simulator

FORMATS = ("openai", "anthropic", "gemini", "cohere")
_ENTRY_FIELDS = frozenset(
    {
        "id",
        "name",
        "context_length",
        "input_modalities",
        "output_modalities",
        "tools",
        "hugging_face_id",
    }
)


@dataclass(slots=True)
class ListFault:
    """`status`: answer with it (None: answer normally, after `delay_s`); `malformed`: a 200
    whose body is not JSON; `times`: how many list requests it affects (None: until reset)."""

    status: int | None = 503
    delay_s: float = 0.0
    malformed: bool = False
    times: int | None = None

    @classmethod
    def from_dict(cls, data: Any) -> ListFault:
        if not isinstance(data, dict) or set(data) - {"status", "delay_s", "malformed", "times"}:
            raise ValueError("a list fault is {status?, delay_s?, malformed?, times?}")
        return cls(**data)


def entry(item: str | dict[str, Any]) -> dict[str, Any]:
    """A list entry, checked: `{"id": ...}` plus the optional fields."""
    value = {"id": item} if isinstance(item, str) else dict(item)
    if not isinstance(value.get("id"), str) or not value["id"]:
        raise ValueError("a model list entry needs a string id")
    unknown = set(value) - _ENTRY_FIELDS
    if unknown:
        raise ValueError(f"unknown model list field(s): {', '.join(sorted(unknown))}")
    return value


@dataclass
class ModelLists:
    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: dict[str, ListFault] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, fmt: str, models: Iterable[str | dict[str, Any]]) -> None:
        checked = [entry(m) for m in models]
        with self.lock:
            self.entries[_format(fmt)] = checked

    def fail(self, fmt: str, fault: ListFault | None = None) -> None:
        with self.lock:
            self.faults[_format(fmt)] = fault or ListFault()

    def reset(self, fmt: str | None = None) -> None:
        with self.lock:
            for table in (self.entries, self.faults, self.calls):
                if fmt is None:
                    table.clear()
                else:
                    table.pop(fmt, None)

    def take(self, fmt: str) -> tuple[list[dict[str, Any]] | None, ListFault | None]:
        """One list request: (the scripted entries or None for the default, the fault)."""
        with self.lock:
            self.calls[fmt] += 1
            fault = self.faults.get(fmt)
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    del self.faults[fmt]
            return self.entries.get(fmt), fault


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown model list format {fmt!r} (one of {', '.join(FORMATS)})")
    return fmt


_LISTS: weakref.WeakKeyDictionary[Simulator, ModelLists] = weakref.WeakKeyDictionary()
_LISTS_LOCK = threading.Lock()


def lists_of(sim: Simulator) -> ModelLists:
    with _LISTS_LOCK:
        return _LISTS.setdefault(sim, ModelLists())


def fault_reply(
    req: Request, fault: ListFault | None, error_body: Callable[[int], bytes]
) -> Reply | None:
    """The failing answer a list fault dictates; None to answer normally."""
    if fault is None or (fault.status is None and not fault.malformed):
        return None
    keep = req.keep_alive
    if fault.malformed:
        head = response(200, b"{not json", keep, JSON_CONTENT_TYPE)
    else:
        assert fault.status is not None
        head = response(fault.status, error_body(fault.status), keep, JSON_CONTENT_TYPE)
    return Reply(head, keep_alive=keep, delay=max(0.0, fault.delay_s))


def delayed(reply: Reply, fault: ListFault | None) -> Reply:
    """The normal answer, after the fault's delay."""
    if fault is not None and fault.delay_s > 0:
        reply.delay = fault.delay_s
    return reply


def page(items: list[Any], size: int, token: str) -> tuple[list[Any], str | None]:
    """One page from offset `token` (a decimal string, "" = 0) and the next page's token."""
    start = int(token) if token.isdigit() else 0
    end = start + max(1, size)
    return items[start:end], (str(end) if end < len(items) else None)


def query(req: Request) -> dict[str, str]:
    return dict(q.partition("=")[::2] for q in req.query.split("&") if q)


def openai_entry(e: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's model object; OpenRouter-style fields when the entry has them."""
    out: dict[str, Any] = {
        "id": e["id"],
        "object": "model",
        "created": 0,
        "owned_by": "gatewayz-simulator",
    }
    if "name" in e:
        out["name"] = e["name"]
    if "context_length" in e:
        out["context_length"] = e["context_length"]
    if "input_modalities" in e or "output_modalities" in e:
        ins = e.get("input_modalities", ["text"])
        outs = e.get("output_modalities", ["text"])
        out["architecture"] = {
            "input_modalities": ins,
            "output_modalities": outs,
            "modality": "+".join(ins) + "->" + "+".join(outs),
        }
    if "tools" in e:
        params = ["max_tokens", "temperature"]
        out["supported_parameters"] = [*params, "tools"] if e["tools"] else params
    if "hugging_face_id" in e:
        out["hugging_face_id"] = e["hugging_face_id"]
    return out


def openai_reply(sim: Simulator, req: Request) -> Reply:
    """OpenAI's `GET /v1/models` (scripted list, list fault, or the simulator's models)."""
    entries, fault = lists_of(sim).take("openai")
    failing = fault_reply(req, fault, _openai_error)
    if failing is not None:
        return failing
    items = entries if entries is not None else [{"id": m} for m in sim.models]
    body = orjson.dumps({"object": "list", "data": [openai_entry(e) for e in items]})
    return delayed(Reply(response(200, body, req.keep_alive), keep_alive=req.keep_alive), fault)


def _openai_error(status: int) -> bytes:
    return orjson.dumps({"error": {"message": f"simulated list failure ({status})"}})


def control(sim: Simulator, req: Request) -> Reply:
    """`/__sim/model-lists`: POST {"format", "models"?, "fault"?}, DELETE, GET."""
    lists, keep = lists_of(sim), req.keep_alive
    if req.method == "DELETE":
        lists.reset()
        return Reply(response(200, b"{}", keep), keep_alive=keep)
    if req.method == "GET":
        with lists.lock:
            state = {
                fmt: {
                    "scripted": len(lists.entries[fmt]) if fmt in lists.entries else None,
                    "fault": asdict(lists.faults[fmt]) if fmt in lists.faults else None,
                    "calls": lists.calls[fmt],
                }
                for fmt in FORMATS
            }
        return Reply(response(200, orjson.dumps(state), keep), keep_alive=keep)
    if req.method != "POST":
        return Reply(response(405, b'{"error": "GET, POST or DELETE"}', keep), keep_alive=keep)
    try:
        data = orjson.loads(req.body or b"{}")
        fmt = _format(data.get("format", ""))
        if "models" in data:
            lists.set(fmt, data["models"])
        if "fault" in data:
            if data["fault"] is None:
                with lists.lock:
                    lists.faults.pop(fmt, None)
            else:
                lists.fail(fmt, ListFault.from_dict(data["fault"]))
    except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
        body = orjson.dumps({"error": f"Invalid model list script: {exc}"})
        return Reply(response(400, body, keep), keep_alive=keep)
    return Reply(response(200, b'{"ok": true}', keep), keep_alive=keep)
