"""`Redactor`: every configured secret and every credential shape is masked in relayed text,
and ordinary text is left alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gatewayz.errors import InvalidRequest
from gatewayz.providers.redact import MASK, Redactor
from gatewayz.providers.registry import load_registry
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings

SECRET = "k3y/with+odd=chars&more"


def test_a_configured_secret_is_masked_as_sent_json_escaped_and_url_encoded() -> None:
    redact = Redactor([SECRET])
    assert redact(f"got {SECRET}!") == f"got {MASK}!"
    assert redact('{"key": "k3y\\/with+odd=chars&more"}') == '{"key": "' + MASK + '"}'
    assert redact("url ?key=k3y%2Fwith%2Bodd%3Dchars%26more") == f"url ?key={MASK}"


def test_a_secret_containing_another_is_masked_whole() -> None:
    redact = Redactor(["abcdefgh", "abcdefgh-longer-secret"])
    assert redact("x abcdefgh-longer-secret y") == f"x {MASK} y"


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "bearer ya29.a0AfH6SMBx-token_value",
        "token ya29.a0AfH6SMBxXYZ was rejected",
        "invalid key sk-proj-AbC123dEf456GhI789",
        "key " + KeyRing(Fernet.generate_key(), b"h" * 32).generate("live"),
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
        '"private_key": "-----BEGIN RSA PRIVATE KEY-----\\nMIIEvQIBADANBg (cut',
    ],
)
def test_credential_shapes_are_masked_whoever_they_belong_to(text: str) -> None:
    out = Redactor([])(text)
    assert MASK in out
    for word in ("eyJhbGci", "ya29.a0", "sk-proj", "gw_live_", "MIIEvQ"):
        assert word not in out


def test_ordinary_text_is_left_alone() -> None:
    text = "Invalid 'max_tokens': expected a value >= 1 (use a Bearer token in the header)."
    assert Redactor(["unrelated-secret"])(text) == text


def test_an_error_is_masked_in_its_message_its_str_and_its_headers() -> None:
    raw = InvalidRequest(f"bad key {SECRET}", headers={"Retry-After": SECRET}, provider="x")
    err = Redactor([SECRET]).error(raw)
    assert err.message == f"bad key {MASK}" and str(err) == f"bad key {MASK}"
    assert err.headers == {"Retry-After": MASK}


def test_the_registry_masks_every_provider_credential_and_secret_setting(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        stripe_api_key="rk_live_stripe-secret-1",
        butter_api_key="butter-secret-2",
        butter_providers="openai",
        provider_env={
            "openai": {"api_key": "openai-secret-3"},
            "aws-bedrock": {
                "api_key": "AKIDSECRET4",
                "var:AWS_SECRET_ACCESS_KEY": "aws-secret-5",
                "var:AWS_SESSION_TOKEN": "aws-session-6",
                "var:AWS_REGION": "eu-west-3",
            },
        },
    )
    redact = load_registry(settings).redact
    configured = ["rk_live_stripe-secret-1", "butter-secret-2", "openai-secret-3"]
    configured += ["AKIDSECRET4", "aws-secret-5", "aws-session-6"]
    for n, secret in enumerate(configured):
        assert redact(f"{n}: {secret}.") == f"{n}: {MASK}."
    assert redact("region eu-west-3") == "region eu-west-3"  # not a secret variable


def test_a_secret_cut_off_at_the_end_of_a_truncated_message_is_masked() -> None:
    # Provider messages are cut to a length before they are relayed: the cut may fall inside
    # the echoed key, leaving its first characters at the very end of the text.
    key = "AIzaSyD-provider-key-0123456789abcdef"
    redact = Redactor([key])
    for cut in (4, 12, len(key) - 1):
        out = redact("API key not valid: " + key[:cut])
        assert out == f"API key not valid: {MASK}", (cut, out)
    assert redact("ends with AIz") == "ends with AIz"  # 3 characters prove nothing


def test_a_short_secret_is_masked_as_a_whole_word_only() -> None:
    redact = Redactor(["x1"])  # a self-hosted server's throwaway key
    assert redact("key x1 refused; max1 and x12 untouched") == (
        f"key {MASK} refused; max1 and x12 untouched"
    )
