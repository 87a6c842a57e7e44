"""The web console's files (api/console_routes.py): served from the package at /console with a
strict Content-Security-Policy and `X-Frame-Options: DENY`, gzipped when accepted, revalidated
by ETag, nothing but the console's own files; the whole first load under 200 KB gzipped; no
inline script or style in the page; `config.json` says whether Privy is configured."""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gatewayz.api.console_routes import CSP, assets, console_config
from gatewayz.settings import Settings
from gatewayz.simulators import Simulator
from tests.accounts.conftest import APP_ID
from tests.api.console.browser import in_thread
from tests.e2e.harness import Gateway, gateway_settings, start_gateway

FIRST_LOAD_BUDGET = 200 * 1024
STATIC = Path(__file__).resolve().parents[3] / "src" / "gatewayz" / "console" / "static"


def get(gw: Gateway, path: str, **headers: str) -> httpx2.Response:
    with httpx2.Client(trust_env=False, timeout=10.0) as client:
        return client.get(f"{gw.root}{path}", headers=headers)


def test_the_page_and_its_assets_carry_the_security_headers(console_gateway: Gateway) -> None:
    for path in ("/console", "/console/", "/console/js/app.js", "/console/console.css"):
        r = get(console_gateway, path)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"] == CSP
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    policy = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in CSP
    assert get(console_gateway, "/console").headers["content-type"].startswith("text/html")
    js = get(console_gateway, "/console/js/pages/keys.js")
    assert js.headers["content-type"].startswith("text/javascript")


def test_gzip_etag_and_unknown_paths(console_gateway: Gateway) -> None:
    plain = get(console_gateway, "/console/js/app.js", **{"accept-encoding": "identity"})
    zipped = get(console_gateway, "/console/js/app.js", **{"accept-encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == plain.content
    etag = plain.headers["etag"]
    again = get(console_gateway, "/console/js/app.js", **{"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    for missing in ("/console/nope.js", "/console/../settings.py", "/console/js/../../app.py"):
        r = get(console_gateway, missing)
        assert r.status_code == 404, missing
        assert r.json()["error"]["type"] == "not_found_error"


def test_config_says_privy_is_configured_and_the_event_types(console_gateway: Gateway) -> None:
    config = get(console_gateway, "/console/config.json").json()
    assert config["privy"] is True and config["privy_app_id"] == APP_ID
    assert config["webhook_events"] and all("." in e for e in config["webhook_events"])


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            if not a.get("src"):
                self.inline.append("inline <script>")
            else:
                self.refs.append(str(a["src"]))
        if tag == "link" and a.get("href"):
            self.refs.append(str(a["href"]))
        if tag == "img" and a.get("src"):
            self.refs.append(str(a["src"]))
        if tag == "style" or "style" in a:
            self.inline.append(f"inline style on <{tag}>")
        self.inline += [f"{k} on <{tag}>" for k in a if k.startswith("on")]


def first_load(gw: Gateway) -> dict[str, int]:
    """Every file the first visit downloads (the page, what it links, the modules the entry
    module imports, transitively, and config.json) → its size on the wire, gzipped."""
    sizes = {"/console": wire_size(gw, "/console")}
    parser = _Refs()
    parser.feed(get(gw, "/console").text)
    todo = [*parser.refs, "/console/config.json"]
    while todo:
        path = todo.pop()
        if path in sizes:
            continue
        sizes[path] = wire_size(gw, path)
        if path.endswith(".js"):
            base = path.rsplit("/", 1)[0]
            for rel in re.findall(
                r"""(?:from|import)\s*\(?\s*["'](\.[^"']+)["']""", get(gw, path).text
            ):
                todo.append(_join(base, rel))
    return sizes


def _join(base: str, rel: str) -> str:
    parts = base.split("/")
    for piece in rel.split("/"):
        if piece == "..":
            parts.pop()
        elif piece != ".":
            parts.append(piece)
    return "/".join(parts)


def wire_size(gw: Gateway, path: str) -> int:
    """The bytes of `path`'s body as sent to a client that accepts gzip."""
    with (
        httpx2.Client(trust_env=False, timeout=10.0) as client,
        client.stream("GET", f"{gw.root}{path}", headers={"accept-encoding": "gzip"}) as r,
    ):
        assert r.status_code == 200, path
        assert r.headers.get("content-encoding") == "gzip", path
        return sum(len(chunk) for chunk in r.iter_raw())


def test_first_load_is_under_200_kb_gzipped(console_gateway: Gateway) -> None:
    sizes = first_load(console_gateway)
    assert "/console/js/app.js" in sizes and "/console/js/pages/admin_ops.js" in sizes
    assert "/console/console.css" in sizes and "/console/favicon.svg" in sizes
    total = sum(sizes.values())
    print(f"console first load: {len(sizes)} files, {total} bytes gzipped")
    assert total < FIRST_LOAD_BUDGET, sizes
    assert set(assets()) <= {p.removeprefix("/console/") for p in sizes} | {"index.html"}


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    for path in STATIC.rglob("*.html"):
        parser = _Refs()
        parser.feed(path.read_text())
        assert parser.inline == [], path
    for path in STATIC.rglob("*.js"):
        text = path.read_text()
        assert ".innerHTML" not in text and "eval(" not in text, path
        assert ".style." not in text and 'setAttribute("style"' not in text, path
        assert len(text.splitlines()) <= 400, path


def test_the_assets_ship_as_package_data() -> None:
    """pyproject.toml's package-data patterns cover every file of the console."""
    root = STATIC.parents[1]  # src/gatewayz: the patterns are relative to the package
    with (STATIC.parents[3] / "pyproject.toml").open("rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["gatewayz"]
    for path in STATIC.rglob("*"):
        if path.is_file():
            rel = path.relative_to(root)
            assert any(rel.match(p) and len(rel.parts) == len(Path(p).parts) for p in patterns), rel


@pytest.mark.parametrize("configured", [True, False])
def test_config_follows_the_privy_settings(tmp_path: Path, configured: bool) -> None:
    values: dict[str, str] = {}
    if configured:
        key = ec.generate_private_key(ec.SECP256R1()).public_key()
        pem = key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
        values = {"privy_app_id": "app-123", "privy_verification_key": pem}
    config = console_config(Settings(data_dir=tmp_path, **values))
    assert config["privy"] is configured
    assert config["privy_app_id"] == ("app-123" if configured else None)


def test_the_ip_limit_counts_the_page_not_its_files(tmp_path: Path) -> None:
    sim = Simulator()
    sim.start_in_thread()
    gw = in_thread(start_gateway, gateway_settings(tmp_path, sim, ip_rate_limit_rpm=3), sim)
    try:
        for _ in range(10):
            assert get(gw, "/console/js/app.js").status_code == 200
        pages = [get(gw, "/console").status_code for _ in range(4)]
        assert pages == [200, 200, 200, 429]
    finally:
        gw.stop()
        sim.stop_thread()
