"""API key format and cryptography (CM-1.1, CM-1.2, CM-1.3, CM-12.5)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

import pytest
from cryptography.fernet import Fernet

from gatewayz.canonical.key_format import ENVS
from gatewayz.security.keys import KeyRing, display_prefix, key_env, last_four, masked

KEY_RE = re.compile(r"^gw_(live|test|staging|dev)_[A-Za-z0-9_-]{43,}$")


@pytest.fixture
def fernet_key() -> bytes:
    return Fernet.generate_key()


@pytest.fixture
def hmac_key() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def ring(fernet_key: bytes, hmac_key: bytes) -> KeyRing:
    return KeyRing(fernet_key, hmac_key)


def test_cm_1_1_api_key_encrypted_with_fernet(ring: KeyRing, fernet_key: bytes) -> None:
    key = ring.generate("live")
    token = ring.encrypt(key)
    assert token != key
    assert key not in token
    assert key.split("_", 2)[2] not in token
    # A valid Fernet token: an independent Fernet with the same key opens it.
    assert Fernet(fernet_key).decrypt(token.encode()).decode() == key
    assert ring.decrypt(token) == key
    # Random IV: encrypting twice gives different tokens for the same key.
    assert ring.encrypt(key) != token
    with pytest.raises(ValueError):
        KeyRing(Fernet.generate_key(), b"k").decrypt(token)


def test_cm_1_2_encrypt_decrypt_roundtrip_many_keys(ring: KeyRing) -> None:
    for i in range(200):
        key = ring.generate(ENVS[i % len(ENVS)])
        assert ring.decrypt(ring.encrypt(key)) == key
    for arbitrary in ["", "x", "ünïcødé ключ", "gw_live_" + "A" * 500]:
        assert ring.decrypt(ring.encrypt(arbitrary)) == arbitrary


def test_cm_1_3_key_hash_is_hmac_sha256_hex(ring: KeyRing, hmac_key: bytes) -> None:
    keys = [ring.generate("live") for _ in range(100)]
    hashes = [ring.hash(k) for k in keys]
    for key, digest in zip(keys, hashes, strict=True):
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        assert digest == ring.hash(key)  # deterministic (and the reused MAC state is not mutated)
        assert digest == hmac.new(hmac_key, key.encode(), hashlib.sha256).hexdigest()
        assert digest != hashlib.sha256(key.encode()).hexdigest()  # keyed, not a bare hash
    assert len(set(hashes)) == len(hashes)
    # A different HMAC key gives different hashes.
    assert KeyRing(Fernet.generate_key(), b"other").hash(keys[0]) != hashes[0]


def test_cm_1_3_verify_is_constant_time_compare(
    ring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = ring.generate("test")
    stored = ring.hash(key)
    assert ring.verify(key, stored)
    assert not ring.verify(ring.generate("test"), stored)
    assert not ring.verify(key, "")
    assert not ring.verify(key, "é" * 64)
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("gatewayz.security.keys.hmac.compare_digest", spy)
    assert ring.verify(key, stored)
    assert calls == [(stored.encode(), stored.encode())]


def test_cm_12_5_generated_key_format(ring: KeyRing) -> None:
    seen = set()
    for env in ENVS:
        for _ in range(50):
            key = ring.generate(env)
            assert KEY_RE.match(key), key
            assert key.startswith(f"gw_{env}_")
            assert len(key) - len(f"gw_{env}_") >= 43  # ≥ 32 random bytes, URL-safe base64
            assert key_env(key) == env
            seen.add(key)
    assert len(seen) == 50 * len(ENVS)


def test_generate_rejects_unknown_env(ring: KeyRing) -> None:
    for env in ["prod", "", "LIVE", "live_"]:
        with pytest.raises(ValueError, match="unknown key environment"):
            ring.generate(env)


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "sk-abc",
        "gw_live_",
        "gw_live_short",
        "gw_prod_" + "a" * 43,
        "gw_live_" + "a" * 42,
        "gw_live_" + "a" * 42 + "!",
        "gw_live_" + "a" * 43 + " ",
        "Bearer gw_live_" + "a" * 43,
        "gw_live_" + "a" * 5000,
    ],
)
def test_key_env_rejects_garbage(garbage: str) -> None:
    assert key_env(garbage) is None


def test_display_helpers(ring: KeyRing) -> None:
    key = ring.generate("staging")
    secret = key[len("gw_staging_") :]
    assert display_prefix(key) == "gw_staging_" + secret[:4]
    assert last_four(key) == secret[-4:]
    assert masked(display_prefix(key), last_four(key)) == f"gw_staging_{secret[:4]}…{secret[-4:]}"
    with pytest.raises(ValueError):
        display_prefix("nope")
    with pytest.raises(ValueError):
        last_four("nope")


def test_keyring_rejects_bad_secrets() -> None:
    with pytest.raises(ValueError):
        KeyRing(b"not a fernet key", b"k")
    with pytest.raises(ValueError):
        KeyRing(Fernet.generate_key(), b"")
