"""The webhook signature: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, and
the verifier a receiver runs (tolerance both ways, several `v1` entries while rotating)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gatewayz.webhooks.signing import new_secret, signature, verify

BODY = b'{"type":"balance.low","data":{"balance_usd":"1.25"}}'
NOW = 1_760_000_000


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    secret = "whsec_test"
    expected = hmac.new(b"whsec_test", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert signature(secret, BODY, NOW) == f"t={NOW},v1={expected}"


def test_new_secrets_are_prefixed_long_and_distinct() -> None:
    secrets = {new_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(secret) >= len("whsec_") + 43  # 32 random bytes, base64 without padding


def test_round_trip() -> None:
    secret = new_secret()
    assert verify(secret, BODY, signature(secret, BODY, NOW), now=NOW)
    assert verify(secret, BODY, signature(secret, BODY, NOW), now=NOW + 299)


def test_tampered_body_secret_or_timestamp_fail() -> None:
    secret = new_secret()
    header = signature(secret, BODY, NOW)
    assert not verify(secret, BODY + b" ", header, now=NOW)
    assert not verify(secret, BODY.replace(b"1.25", b"9.25"), header, now=NOW)
    assert not verify(new_secret(), BODY, header, now=NOW)
    moved = header.replace(f"t={NOW}", f"t={NOW + 1}")  # same digest, another time
    assert not verify(secret, BODY, moved, now=NOW)


@pytest.mark.parametrize("age_s", [301, -301, 86_400, -86_400])
def test_old_and_future_timestamps_fail(age_s: int) -> None:
    secret = new_secret()
    header = signature(secret, BODY, NOW - age_s)
    assert not verify(secret, BODY, header, now=NOW)
    assert verify(secret, BODY, header, now=NOW, tolerance_s=abs(age_s))


def test_default_now_is_the_clock() -> None:
    import time

    secret = new_secret()
    assert verify(secret, BODY, signature(secret, BODY, int(time.time())))
    assert not verify(secret, BODY, signature(secret, BODY, int(time.time()) - 3600))


def test_rotation_any_v1_entry_matching_is_enough() -> None:
    old, new = new_secret(), new_secret()
    v1_old = signature(old, BODY, NOW).split(",")[1]
    v1_new = signature(new, BODY, NOW).split(",")[1]
    header = f"t={NOW},{v1_old},{v1_new}"
    assert verify(old, BODY, header, now=NOW)
    assert verify(new, BODY, header, now=NOW)
    assert verify(new, BODY, f"t={NOW}, {v1_new} , v0=abc", now=NOW)  # spaces, other schemes
    assert not verify(new_secret(), BODY, header, now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=,v1=",
        "v1={digest}",  # no timestamp
        "t={t}",  # no signature
        "t={t},v1",  # an entry without '='
        "t=abc,v1={digest}",
        "t=-{t},v1={digest}",
        "t={t},t={t},v1={digest}",  # two timestamps
        "t={t},v1={digest}00",
        "t={t},v1=é{digest}",
        "t=١٧٦٠٠٠٠٠٠٠,v1={digest}",  # non-ASCII digits
    ],
)
def test_malformed_headers_are_false(header: str) -> None:
    secret = "whsec_x"
    digest = signature(secret, BODY, NOW).split("v1=")[1]
    value = header.format(t=NOW, digest=digest)
    assert verify(secret, BODY, value, now=NOW) is False
