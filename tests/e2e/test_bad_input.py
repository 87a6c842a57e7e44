"""Bad input never yields a 500: every field of a valid request replaced by wrong-typed values."""

from __future__ import annotations

import itertools

import httpx2 as httpx

from tests.e2e.harness import Gateway

VALID = {
    "model": "test-model",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": False,
    "max_tokens": 5,
    "temperature": 0.5,
    "top_p": 0.5,
    "n": 1,
    "stop": ["x"],
    "seed": 1,
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    "tool_choice": "auto",
    "response_format": {"type": "json_object"},
    "logprobs": False,
    "stream_options": {"include_usage": True},
    "user": "u",
    "metadata": {"k": "v"},
    "logit_bias": {"1": 1.0},
}
WRONG = [None, True, -1, 10**30, 1.5, "", "x" * 300, [], [1, "a"], {}, {"a": {"b": None}}]


def test_every_wrong_typed_field_is_a_4xx_never_5xx(gateway: Gateway) -> None:
    headers = {"Authorization": f"Bearer {gateway.api_key}"}
    seen: dict[int, int] = {}
    with httpx.Client(base_url=gateway.base_url, headers=headers, timeout=10) as http:
        for field, bad in itertools.product(VALID, WRONG):
            body = {**VALID, field: bad}
            r = http.post("/chat/completions", json=body)
            seen[r.status_code] = seen.get(r.status_code, 0) + 1
            assert r.status_code < 500, (field, bad, r.status_code, r.text)
            if r.status_code != 200:
                err = r.json()["error"]
                assert err["message"] and err["type"], (field, bad, r.text)
        for raw in [b"", b"null", b"1", b'"s"', b"\xff\xfe", b'{"model":', b"{}" * 1000]:
            r = http.post("/chat/completions", content=raw)
            assert r.status_code == 400, (raw[:20], r.status_code, r.text)
    assert seen.get(400, 0) > 50  # most replacements are rejected...
    assert seen.get(200, 0) > 0  # ...and some (e.g. null for an optional field) are fine
