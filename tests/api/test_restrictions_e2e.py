"""Key restrictions on /v1/* against a real gateway (CM-1.9-1.11): IP allowlists (v4, v6, CIDR;
X-Forwarded-For only from a trusted proxy, garbage never bypasses) and domain allowlists
(Origin, else Referer; subdomains match) → 403 in the caller's dialect plus an audit event."""

from __future__ import annotations

import secrets
from typing import Any

import anthropic
import openai
import pytest

from tests.api.conftest import MODEL, audit_rows, call, chat, make_user, messages
from tests.e2e.harness import Gateway


def _key(gateway: Gateway, **restrictions: Any) -> dict[str, Any]:
    _, owner = make_user(gateway, f"r{secrets.token_hex(4)}@example.com")
    r = call(gateway, "POST", "/user/api-keys", owner, {"name": "restricted", **restrictions})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _violations(gateway: Gateway, key_id: str, n: int) -> list[dict[str, Any]]:
    rows = audit_rows(
        gateway,
        "restriction_violation",
        lambda rs: sum(r["api_key_id"] == key_id for r in rs) >= n,
    )
    return [r for r in rows if r["api_key_id"] == key_id]


def test_cm_1_9_ip_allowlist_blocks_non_listed_ip(gw_direct: Gateway) -> None:
    k = _key(gw_direct, ip_allowlist=["10.0.0.0/8", "2001:db8::/32"])
    r = chat(gw_direct, k["api_key"])
    assert r.status_code == 403
    err = r.json()["error"]
    assert (err["type"], err["code"]) == ("permission_error", "ip_not_allowed")
    assert "127.0.0.1" in err["message"]
    # Anthropic callers get Anthropic's error shape.
    r = messages(gw_direct, k["api_key"])
    assert r.status_code == 403
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "permission_error"
    # With the official SDKs.
    with (
        openai.OpenAI(
            base_url=gw_direct.base_url,
            api_key=k["api_key"],
            max_retries=0,
            http_client=openai.DefaultHttpxClient(trust_env=False),
        ) as client,
        pytest.raises(openai.PermissionDeniedError),
    ):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    with (
        anthropic.Anthropic(
            base_url=gw_direct.root, api_key=k["api_key"], max_retries=0
        ) as aclient,
        pytest.raises(anthropic.PermissionDeniedError),
    ):
        aclient.messages.create(
            model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "x"}]
        )
    # Not a trusted proxy: X-Forwarded-For is ignored, so claiming a listed IP does not help.
    assert chat(gw_direct, k["api_key"], {"x-forwarded-for": "10.1.2.3"}).status_code == 403
    rows = _violations(gw_direct, k["id"], 5)
    assert len(rows) >= 5
    assert rows[0]["ip"] == "127.0.0.1" and rows[0]["path"] == "/v1/chat/completions"
    assert rows[0]["detail"]["restriction"] == "ip" and rows[0]["severity"] == "warning"


def test_cm_1_10_ip_allowlist_allows_listed_ip(gw_direct: Gateway) -> None:
    for allow in (["127.0.0.1"], ["127.0.0.0/8"], ["::1", "127.0.0.1/32"]):
        k = _key(gw_direct, ip_allowlist=allow)
        assert chat(gw_direct, k["api_key"]).status_code == 200, allow
        assert messages(gw_direct, k["api_key"]).status_code == 200, allow


def test_cm_1_10_trusted_proxy_forwarded_ips_v4_v6_and_cidr(gw: Gateway) -> None:
    k = _key(gw, ip_allowlist=["198.51.100.0/24", "2001:db8::/32", "203.0.113.9"])
    ok = {
        "198.51.100.77": 200,
        "2001:db8:1:2::3": 200,
        "203.0.113.9": 200,
        "203.0.113.10": 403,
        "2001:db9::1": 403,
        "198.51.101.1": 403,
    }
    for ip, status in ok.items():
        r = chat(gw, k["api_key"], {"x-forwarded-for": ip})
        assert r.status_code == status, (ip, r.text)
    # The right-most untrusted hop counts, not a spoofed left-most one.
    r = chat(gw, k["api_key"], {"x-forwarded-for": "198.51.100.1, 192.0.2.1"})
    assert r.status_code == 403
    r = chat(gw, k["api_key"], {"x-forwarded-for": "192.0.2.1, 198.51.100.1"})
    assert r.status_code == 200
    rows = _violations(gw, k["id"], 4)
    assert {r["ip"] for r in rows} >= {"203.0.113.10", "2001:db9::1", "198.51.101.1", "192.0.2.1"}


@pytest.mark.parametrize(
    "xff",
    [
        b"garbage",
        b"999.1.1.1",
        b"198.51.100.1garbage",
        b", , ,",
        b"198.51.100.0/24",
        b"198.51.100.1:443",
        "\u00e9".encode() * 50,
        b"x," * 3000,  # long
    ],
)
def test_cm_1_9_garbage_forwarded_for_never_bypasses(gw: Gateway, xff: bytes) -> None:
    k = _key(gw, ip_allowlist=["198.51.100.0/24"])
    # Unparsable hops are skipped: the client is the socket peer (127.0.0.1), not listed.
    r = chat(gw, k["api_key"], {"x-forwarded-for": xff})
    assert r.status_code == 403, r.text


def test_cm_1_11_domain_restriction_blocks_wrong_domain(gw: Gateway) -> None:
    k = _key(gw, domain_allowlist=["example.com"])
    for headers in (
        {"origin": "https://evil.com"},
        {"origin": "https://notexample.com"},
        {"referer": "https://example.com.evil.com/page"},
        {},
    ):
        r = chat(gw, k["api_key"], headers)
        assert r.status_code == 403, headers
        assert r.json()["error"]["code"] == "domain_not_allowed"
    assert messages(gw, k["api_key"], {"origin": "https://evil.com"}).status_code == 403
    rows = _violations(gw, k["id"], 5)
    assert rows[0]["detail"] == {"restriction": "domain", "host": "evil.com"}


def test_cm_1_11_domain_allowlist_allows_domain_subdomains_and_referer(gw: Gateway) -> None:
    k = _key(gw, domain_allowlist=["example.com", "*.example.org"])
    for headers in (
        {"origin": "https://example.com"},
        {"origin": "https://api.example.com:8443"},
        {"origin": "https://deep.app.example.org"},
        {"referer": "https://app.example.com/dashboard?x=1"},
    ):
        assert chat(gw, k["api_key"], headers).status_code == 200, headers


def test_cm_1_ip_and_domain_allowlists_together(gw: Gateway) -> None:
    k = _key(gw, ip_allowlist=["198.51.100.0/24"], domain_allowlist=["example.com"])
    good = {"x-forwarded-for": "198.51.100.5", "origin": "https://example.com"}
    assert chat(gw, k["api_key"], good).status_code == 200
    assert chat(gw, k["api_key"], {**good, "origin": "https://evil.com"}).status_code == 403
    assert chat(gw, k["api_key"], {**good, "x-forwarded-for": "192.0.2.1"}).status_code == 403


def test_cm_1_restrictions_also_guard_models_and_key_management(gw_direct: Gateway) -> None:
    k = _key(gw_direct, ip_allowlist=["10.0.0.0/8"])
    assert call(gw_direct, "GET", "/v1/models", k["api_key"]).status_code == 403
    assert call(gw_direct, "GET", "/user/api-keys", k["api_key"]).status_code == 403


def test_cm_13_8_failed_auth_is_audited_with_ip_never_the_key(gw: Gateway) -> None:
    bad = f"gw_test_{secrets.token_urlsafe(32)}"
    marker = "/v1/chat/completions"
    before = len(audit_rows(gw, "auth_failed", wait_s=0))
    r = chat(gw, bad, {"x-forwarded-for": "192.0.2.55"})
    assert r.status_code == 401
    rows = audit_rows(gw, "auth_failed", lambda rs: len(rs) > before)
    row = next(r for r in rows[before:] if r["ip"] == "192.0.2.55")
    assert row["path"] == marker and row["user_id"] is None
    assert bad not in str(row) and bad[8:20] not in str(row)
    assert row["detail"]["key_presented"] is True
