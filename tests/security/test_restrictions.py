"""Per-key IP and domain allowlists: matching (CM-1.9-1.11) and validation at save time."""

from __future__ import annotations

import pytest

from gatewayz.security.restrictions import (
    MAX_ENTRIES,
    Violation,
    check,
    domain_allowed,
    ip_allowed,
    normalize_domain_allowlist,
    normalize_ip_allowlist,
    request_host,
)


def test_cm_1_9_ip_allowlist_blocks_non_listed_ip() -> None:
    allow = ["203.0.113.7", "10.0.0.0/8", "2001:db8::/32"]
    for ip in ("203.0.113.8", "11.0.0.1", "2001:db9::1", "::1", "", "garbage", "10.0.0.1/8"):
        with pytest.raises(Violation) as info:
            check(ip, None, None, allow, None)
        assert info.value.kind == "ip"
        assert "not allowed" in info.value.message


def test_cm_1_10_ip_allowlist_allows_listed_ip() -> None:
    allow = ["203.0.113.7", "10.0.0.0/8", "2001:db8::/32", "fe80::1"]
    for ip in ("203.0.113.7", "10.0.0.1", "10.255.255.255", "2001:db8:ffff::5", "fe80::1"):
        check(ip, None, None, allow, None)
    # An IPv4-mapped IPv6 peer matches as its IPv4 address.
    assert ip_allowed("::ffff:10.1.2.3", allow)
    # v4 and v6 never cross-match.
    assert not ip_allowed("::a00:1", ["10.0.0.0/8"])
    # No allowlist (None or empty) means no restriction.
    check("198.51.100.1", None, None, None, None)
    check("198.51.100.1", None, None, [], [])


def test_cm_1_11_domain_restriction_blocks_wrong_domain() -> None:
    allow = ["example.com"]
    for origin in (
        "https://evil.com",
        "https://evilexample.com",  # suffix without a dot is another domain
        "https://example.com.evil.com",
        "null",
    ):
        with pytest.raises(Violation) as info:
            check("1.2.3.4", origin, None, None, allow)
        assert info.value.kind == "domain"
    # Neither Origin nor Referer: refused.
    with pytest.raises(Violation):
        check("1.2.3.4", None, None, None, allow)
    # Origin wins over Referer: a wrong Origin is not rescued by a matching Referer.
    with pytest.raises(Violation):
        check("1.2.3.4", "https://evil.com", "https://example.com/page", None, allow)


def test_cm_1_11_domain_allowlist_allows_domain_and_subdomains() -> None:
    allow = ["example.com"]
    for origin in ("https://example.com", "https://api.example.com:8443", "http://A.B.Example.COM"):
        check("1.2.3.4", origin, None, None, allow)
    # Referer host when there is no Origin.
    check("1.2.3.4", None, "https://app.example.com/some/page?q=1", None, allow)
    assert request_host(None, "https://app.example.com/x") == "app.example.com"
    assert request_host("https://münchen.example", None) == "xn--mnchen-3ya.example"
    assert request_host("not a url", "https://example.com") is None
    assert not domain_allowed(None, allow)


def test_both_allowlists_must_pass() -> None:
    with pytest.raises(Violation) as info:
        check("10.0.0.1", "https://evil.com", None, ["10.0.0.0/8"], ["example.com"])
    assert info.value.kind == "domain"
    with pytest.raises(Violation) as info:
        check("11.0.0.1", "https://example.com", None, ["10.0.0.0/8"], ["example.com"])
    assert info.value.kind == "ip"


def test_ip_allowlist_validation_normalises_and_refuses_garbage() -> None:
    assert normalize_ip_allowlist([" 10.0.0.0/8 ", "2001:DB8::1", "10.0.0.0/8", "::/0"]) == [
        "10.0.0.0/8",
        "2001:db8::1",
        "::/0",
    ]
    for bad in ("10.0.0.1/8", "300.1.1.1", "10.0.0.0/33", "2001:db8::/129", "example.com", ""):
        with pytest.raises(ValueError, match="ip_allowlist"):
            normalize_ip_allowlist([bad])
    with pytest.raises(ValueError, match="at most"):
        normalize_ip_allowlist([f"10.0.{i // 256}.{i % 256}" for i in range(MAX_ENTRIES + 1)])


def test_domain_allowlist_validation_normalises_and_refuses_garbage() -> None:
    assert normalize_domain_allowlist(["Example.COM.", "*.api.example.org", "localhost"]) == [
        "example.com",
        "api.example.org",
        "localhost",
    ]
    for bad in ("https://example.com", "example.com/path", "example.com:443", "*", "a b.com", ""):
        with pytest.raises(ValueError, match="domain_allowlist"):
            normalize_domain_allowlist([bad])
    with pytest.raises(ValueError, match="list"):
        normalize_domain_allowlist("example.com")  # type: ignore[arg-type]
