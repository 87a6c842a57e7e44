"""SigV4: AWS's published test-suite vectors and botocore's own signer on Bedrock requests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from unittest import mock

import pytest

from gatewayz.providers.bedrock import sigv4

SUITE_CREDS = sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = "20150830T123600Z"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize(
    ("method", "signature"),
    [
        ("GET", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("POST", "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ],
)
def test_aws_suite_vanilla_vectors(method: str, signature: str) -> None:
    # aws-sig-v4-test-suite get-vanilla / post-vanilla.
    auth = sigv4.authorization(
        SUITE_CREDS,
        "us-east-1",
        "service",
        SUITE_TIME,
        method,
        "/",
        [],
        [("Host", "example.amazonaws.com"), ("X-Amz-Date", SUITE_TIME)],
        EMPTY_SHA,
    )
    assert auth == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={signature}"
    )


def test_suite_signing_key_and_string_to_sign() -> None:
    canonical, signed = sigv4.canonical_request(
        "GET", "/", [], [("host", "example.amazonaws.com"), ("x-amz-date", SUITE_TIME)], EMPTY_SHA
    )
    assert signed == "host;x-amz-date"
    assert canonical == (
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
        f"host;x-amz-date\n{EMPTY_SHA}"
    )
    sts = sigv4.string_to_sign(SUITE_TIME, "20150830/us-east-1/service/aws4_request", canonical)
    assert sts.endswith("bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63")


def test_canonical_uri_double_encodes_and_normalizes() -> None:
    path = "/model/us.amazon.nova-pro-v1%3A0/converse"
    assert sigv4.canonical_uri(path) == "/model/us.amazon.nova-pro-v1%253A0/converse"
    assert sigv4.canonical_uri(path, double_encode=False) == path
    assert sigv4.canonical_uri("/a/./b/../c//d/") == "/a/c/d/"
    assert sigv4.canonical_uri("") == "/"
    assert sigv4.canonical_query([("b", "2"), ("a", "x y"), ("a", "1")]) == "a=1&a=x%20y&b=2"


def test_header_values_are_trimmed_and_sorted() -> None:
    _, signed = sigv4.canonical_request(
        "POST", "/", [], [("X-B", "  a   b "), ("x-a", "1"), ("HOST", "h")], EMPTY_SHA
    )
    assert signed == "host;x-a;x-b"


@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzEXAMPLETOKEN//+="])
def test_bedrock_request_matches_botocore(token: str | None) -> None:
    botocore_auth = pytest.importorskip("botocore.auth")
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    host = "bedrock-runtime.eu-west-3.amazonaws.com"
    path = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    body = b'{"messages":[{"role":"user","content":[{"text":"hi"}]}]}'
    creds = sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    own = [("content-type", "application/json"), ("accept", "application/vnd.amazon.eventstream")]
    ours = dict(sigv4.sign(creds, "eu-west-3", "bedrock", "POST", host, path, own, body, when))

    request = AWSRequest(
        method="POST",
        url=f"https://{host}{path}",
        data=body,
        headers={**dict(own), "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()},
    )
    signer = botocore_auth.SigV4Auth(
        Credentials(creds.access_key, creds.secret_key, token), "bedrock", "eu-west-3"
    )
    with mock.patch.object(botocore_auth, "get_current_datetime", return_value=when):
        signer.add_auth(request)

    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"] == "20250304T050607Z"
    assert ours["x-amz-content-sha256"] == hashlib.sha256(body).hexdigest()
    assert ours.get("x-amz-security-token") == token
    signed = "content-type;host;x-amz-content-sha256;x-amz-date"
    if token:
        signed += ";x-amz-security-token"
    assert f"SignedHeaders=accept;{signed}," in ours["authorization"]


def test_signature_changes_with_body_and_secret() -> None:
    when = datetime(2025, 1, 1, tzinfo=UTC)
    creds = sigv4.Credentials("AK", "secret")
    a = sigv4.sign(creds, "us-east-1", "bedrock", "POST", "h", "/x", [], b"1", when)
    b = sigv4.sign(creds, "us-east-1", "bedrock", "POST", "h", "/x", [], b"2", when)
    c = sigv4.sign(sigv4.Credentials("AK", "other"), "us-east-1", "bedrock", "POST", "h", "/x",
                   [], b"1", when)  # fmt: skip
    assert dict(a)["authorization"] != dict(b)["authorization"] != dict(c)["authorization"]
    assert dict(a)["authorization"] != dict(c)["authorization"]
