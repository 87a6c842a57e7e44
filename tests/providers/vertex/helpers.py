"""Shared by the Vertex and Gemini tests: a service-account JSON file (a fresh RSA key,
token_uri on the simulator's fake OAuth endpoint)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

PROJECT = "proj-sim-1"


@cache
def _pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def write_service_account(path: Path, port: int, project: str | None = PROJECT) -> Path:
    info = {
        "type": "service_account",
        "private_key_id": "0123456789abcdef",
        "private_key": _pem(),
        "client_email": "gatewayz-test@proj-sim-1.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": f"http://127.0.0.1:{port}/token",
    }
    if project:
        info["project_id"] = project
    path.write_text(json.dumps(info))
    return path
