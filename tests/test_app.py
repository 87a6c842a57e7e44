"""CM-17.3: the app has every route group of the product, each answering on its own path (a
running gateway, asked without a key: anything but "Unknown path" and "method not allowed")."""

from __future__ import annotations

from pathlib import Path

import httpx2

from gatewayz.simulators import Simulator
from tests.e2e.harness import gateway_settings, start_gateway

# Route group → one (method, path) the group must serve.
GROUPS = {
    "chat": ("POST", "/v1/chat/completions"),
    "messages": ("POST", "/v1/messages"),
    "responses": ("POST", "/v1/responses"),
    "embeddings": ("POST", "/v1/embeddings"),
    "images": ("POST", "/v1/images/generations"),
    "audio": ("POST", "/v1/audio/transcriptions"),
    "models": ("GET", "/v1/models"),
    "auth": ("POST", "/auth"),
    "users": ("GET", "/user/api-keys"),
    "admin": ("GET", "/admin/users"),
    "payments": ("POST", "/user/checkout/credits"),
    "health": ("GET", "/health"),
    "status": ("GET", "/status"),
    "catalog": ("GET", "/catalog/models"),
    "metrics": ("GET", "/metrics"),
    "webhooks": ("GET", "/user/webhooks"),
    "files": ("POST", "/v1/files"),
    "batches": ("POST", "/v1/batches"),
}


def test_cm_17_3_app_includes_all_route_groups(upstream: Simulator, tmp_path: Path) -> None:
    gw = start_gateway(gateway_settings(tmp_path, upstream), upstream)
    try:
        missing = {}
        for group, (method, path) in GROUPS.items():
            r = httpx2.request(method, gw.root + path, trust_env=False, timeout=10)
            if (r.status_code == 404 and "Unknown path" in r.text) or r.status_code == 405:
                missing[group] = (method, path, r.status_code)
        assert not missing, missing
        unknown = httpx2.get(gw.root + "/v1/no-such-group", trust_env=False, timeout=10)
        assert unknown.status_code == 404 and "Unknown path" in unknown.text  # the test can fail
    finally:
        gw.stop()
