"""The Responses-API stream (`POST /v1/responses` with `stream: true`): canonical chunks in,
semantic events out, each with its `sequence_number`:

    response.created, response.in_progress,
    then per output item, in the order the answer produces them:
      reasoning      output_item.added, reasoning_summary_part.added,
                     reasoning_summary_text.delta…, reasoning_summary_text.done,
                     reasoning_summary_part.done, output_item.done
      message        output_item.added, content_part.added, output_text.delta… (or
                     refusal.delta…), output_text.done (refusal.done), content_part.done,
                     output_item.done
      function_call  output_item.added, function_call_arguments.delta…,
                     function_call_arguments.done, output_item.done
    response.completed (or response.incomplete, when the answer stopped on its length) with the
    whole response, usage and cost included.

An item is closed when the next one opens, or at the end. An error once the stream has started
ends it with `response.failed` (status `failed`, `error` {code, message}). The final response's
items are the ones streamed, ids included; the canonical answer for storing is assembled from the
same chunks (`StreamRecorder`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gatewayz.cache.response_codec import StreamRecorder
from gatewayz.canonical.types import ChatResponse, ChoiceDelta, StreamChunk, ToolCall, Usage
from gatewayz.errors import GatewayError
from gatewayz.providers.openai import responses_out as out
from gatewayz.providers.openai.responses import ResponseParams

# Called once the stream completed: (the final response object, the canonical answer).
OnDone = Callable[[dict[str, Any], ChatResponse], None]


class ResponsesStreamWriter:
    def __init__(self, params: ResponseParams, rid: str, model: str, on_done: OnDone) -> None:
        self.p, self.rid, self.model = params, rid, model
        self.created_at = int(time.time())
        self.on_done = on_done
        self.seq = 0
        self.items: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}  # item id → its output_index
        self.open: dict[str, Any] | None = None  # the item being streamed
        self.part: dict[str, Any] | None = None  # its open content part (messages)
        self.calls: dict[int, dict[str, Any]] = {}  # tool-call index → its item
        self.reasoning: dict[str, Any] | None = None
        self.finish_reason: str | None = None
        self.recorder = StreamRecorder()
        self._out: list[bytes] = []

    # ---- the writer interface (api/chat_endpoint.py) --------------------------------------
    def start(self) -> bytes:
        snapshot = self._response("in_progress", [])
        self._emit("response.created", response=snapshot)
        self._emit("response.in_progress", response=snapshot)
        return self._flush()

    def feed(self, chunk: StreamChunk) -> bytes:
        self.recorder.add(chunk)
        for d in chunk.choices:
            if d.index == 0:  # a Responses request asks for one answer
                self._delta(d)
        return self._flush()

    def finish(self, usage: Usage) -> bytes:
        if not self.items:  # nothing at all: one empty message, as a whole answer has
            self._message_part("output_text")
        self._close()
        status, incomplete = out.status_of(self.finish_reason)
        final = self._response(status, self.items, usage, incomplete)
        self._emit(f"response.{status}", response=final)
        answer = self.recorder.response(usage)
        for choice in answer.choices:  # the call ids the client saw (some providers send none)
            choice.message.tool_calls = [
                ToolCall(item["call_id"], item["name"], item["arguments"])
                for item in self.items
                if item["type"] == "function_call"
            ] or None
        self.on_done(final, answer)
        return self._flush()

    def error(self, err: GatewayError) -> bytes:
        failed = self._response("failed", self.items, error=out.failure(err))
        self._emit("response.failed", response=failed)
        return self._flush()

    # ---- deltas -----------------------------------------------------------------------------
    def _delta(self, d: ChoiceDelta) -> None:
        if d.reasoning:
            self._reason(d.reasoning)
        if d.reasoning_signature:
            item = self.reasoning or self._open_reasoning()
            item["encrypted_content"] = (item["encrypted_content"] or "") + d.reasoning_signature
        if d.content:
            self._text(d.content, d.logprobs)
        if d.refusal:
            self._refuse(d.refusal)
        for tc in d.tool_calls or ():
            item = self.calls.get(tc.index)
            if item is None:
                self._close()
                call = ToolCall(tc.id or out.new_id("call"), tc.name or "", "")
                item = self.calls[tc.index] = self._open_item(
                    out.function_call_item(out.new_id("fc"), call, "in_progress")
                )
            elif tc.name and not item["name"]:
                item["name"] = tc.name
            if tc.arguments:
                item["arguments"] += tc.arguments
                self._emit(
                    "response.function_call_arguments.delta", **self._at(item), delta=tc.arguments
                )
        if d.finish_reason is not None:
            self.finish_reason = d.finish_reason

    def _reason(self, text: str) -> None:
        item = self.open if self.open is not None and self.open["type"] == "reasoning" else None
        if item is None:
            item = self._open_reasoning()
        summary = item["summary"]
        if not summary:
            summary.append({"type": "summary_text", "text": ""})
            self._emit(
                "response.reasoning_summary_part.added",
                **self._summary_at(item),
                part=dict(summary[0]),
            )
        summary[0]["text"] += text
        self._emit("response.reasoning_summary_text.delta", **self._summary_at(item), delta=text)

    def _open_reasoning(self) -> dict[str, Any]:
        self._close()
        self.reasoning = self._open_item(out.reasoning_item(out.new_id("rs"), "", None))
        return self.reasoning

    def _text(self, text: str, logprobs: dict[str, Any] | None) -> None:
        part = self._message_part("output_text")
        tokens = out.token_logprobs(logprobs)
        part["text"] += text
        part["logprobs"] += tokens
        self._emit("response.output_text.delta", **self._part_at(), delta=text, logprobs=tokens)

    def _refuse(self, text: str) -> None:
        part = self._message_part("refusal")
        part["refusal"] += text
        self._emit("response.refusal.delta", **self._part_at(), delta=text)

    def _message_part(self, kind: str) -> dict[str, Any]:
        """The open content part of kind `kind`, opening the message and the part as needed."""
        if self.open is None or self.open["type"] != "message":
            self._close()
            self._open_item(out.message_item(out.new_id("msg"), [], "in_progress"))
        if self.part is not None and self.part["type"] != kind:
            self._close_part()
        if self.part is None:
            part = out.text_part("") if kind == "output_text" else out.refusal_part("")
            assert self.open is not None
            self.open["content"].append(part)
            self.part = part
            self._emit("response.content_part.added", **self._part_at(), part=part)
        return self.part

    # ---- opening and closing items ----------------------------------------------------------
    def _open_item(self, item: dict[str, Any]) -> dict[str, Any]:
        self.index[item["id"]] = len(self.items)
        self.items.append(item)
        self.open = item
        self._emit("response.output_item.added", output_index=self.index[item["id"]], item=item)
        return item

    def _close_part(self) -> None:
        part, item = self.part, self.open
        assert part is not None and item is not None
        if part["type"] == "output_text":
            self._emit(
                "response.output_text.done",
                **self._part_at(),
                text=part["text"],
                logprobs=part["logprobs"],
            )
        else:
            self._emit("response.refusal.done", **self._part_at(), refusal=part["refusal"])
        self._emit("response.content_part.done", **self._part_at(), part=part)
        self.part = None

    def _close(self) -> None:
        item = self.open
        if item is None:
            return
        kind = item["type"]
        if kind == "message":
            if self.part is not None:
                self._close_part()
            final = self.finish_reason in out.INCOMPLETE
            item["status"] = "incomplete" if final else "completed"
        elif kind == "function_call":
            item["status"] = "completed"
            self._emit(
                "response.function_call_arguments.done",
                **self._at(item),
                name=item["name"],
                arguments=item["arguments"],
            )
        elif item["summary"]:
            text = item["summary"][0]["text"]
            self._emit("response.reasoning_summary_text.done", **self._summary_at(item), text=text)
            self._emit(
                "response.reasoning_summary_part.done",
                **self._summary_at(item),
                part=item["summary"][0],
            )
        self._emit("response.output_item.done", output_index=self.index[item["id"]], item=item)
        self.open = None

    # ---- rendering ----------------------------------------------------------------------------
    def _at(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"item_id": item["id"], "output_index": self.index[item["id"]]}

    def _summary_at(self, item: dict[str, Any]) -> dict[str, Any]:
        return {**self._at(item), "summary_index": 0}

    def _part_at(self) -> dict[str, Any]:
        item = self.open
        assert item is not None and self.part is not None
        return {**self._at(item), "content_index": len(item["content"]) - 1}

    def _response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: Usage | None = None,
        incomplete: dict[str, str] | None = None,
        error: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return out.response_object(
            self.p, self.rid, self.created_at, self.model,
            status=status, output=output, usage=usage, incomplete=incomplete, error=error,
        )  # fmt: skip

    def _emit(self, kind: str, **fields: Any) -> None:
        """Rendered at once: the items keep changing after an event names them."""
        self._out.append(out.sse(kind, self.seq, fields))
        self.seq += 1

    def _flush(self) -> bytes:
        data = b"".join(self._out)
        self._out.clear()
        return data
