"""Screenshots of the web console, for the README: every page on a desktop screen and the
dashboard on a phone, of a real gateway in front of the provider simulator (no network).

    .venv/bin/python scripts/console_screenshots.py [OUT_DIR]   # default docs/console

Drives Debian's chromium (/usr/bin/chromium) through Playwright, as the console's tests do
(tests/api/console/browser.py). The data is made up: a month of requests (their request-log
rows moved back over 30 days), a webhook endpoint with a failed delivery, a price override.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402
from sqlalchemy import select, update  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection  # noqa: E402
from tests.api.console.browser import DESKTOP, PHONE, Tab, chromium, new_tab  # noqa: E402
from tests.e2e.harness import Gateway, add_user, gateway_settings, run_db, start_gateway  # noqa: E402

from gatewayz.simulators import Simulator  # noqa: E402
from gatewayz.storage.tables import request_logs, utcnow  # noqa: E402

MODELS = ["gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-4.1-nano"]
PAGES = ("dashboard", "keys", "playground", "models", "webhooks", "status", "admin")


def traffic(gw: Gateway, key: str) -> None:
    """Requests to a few models, then their log rows spread over the last 30 days."""
    rng = random.Random(20)
    with httpx2.Client(base_url=gw.root, headers={"authorization": f"Bearer {key}"}) as c:
        for i in range(60):
            model = rng.choice(
                ["test-model", "openai/gpt-4o", "openai/gpt-4o-mini", "simulated/echo"]
            )
            words = " ".join(["hello"] * rng.randint(5, 200))
            body = {"model": model, "messages": [{"role": "user", "content": f"{i} {words}"}]}
            c.post("/v1/chat/completions", json=body)
    time.sleep(0.5)  # the request log is written off the request path

    async def spread(conn: AsyncConnection) -> None:
        ids = [r[0] for r in await conn.execute(select(request_logs.c.id))]
        now = utcnow()
        for row_id in ids:
            back = timedelta(days=rng.choice(range(30)) * rng.random() ** 0.5, hours=rng.random())
            await conn.execute(
                update(request_logs)
                .where(request_logs.c.id == row_id)
                .values(created_at=now - back)
            )

    run_db(gw, spread)


def setup(gw: Gateway, key: str) -> None:
    with httpx2.Client(base_url=gw.root, headers={"authorization": f"Bearer {key}"}) as c:
        hook = c.post(
            "/user/webhooks",
            json={
                "url": "http://127.0.0.1:9/hooks/gatewayz",
                "events": ["credits.low", "credits.added"],
            },
        ).json()
        c.post(f"/user/webhooks/{hook['id']}/test")
        c.post(
            "/admin/pricing",
            json={"model": "test-model", "provider": "vllm", "prompt": "0.15", "completion": "0.6"},
        )
        c.post(
            "/user/api-keys",
            json={"name": "production", "ip_allowlist": ["203.0.113.0/24"], "rpm_limit": 120},
        )


def shoot(page: Page, out: Path, name: str) -> None:
    expect(page.locator("main [aria-busy]")).to_have_count(0)
    page.wait_for_timeout(300)
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)
    print("wrote", out / f"{name}.png")


def pages(tab: Tab, out: Path, key: str) -> None:
    page = tab.open()
    page.get_by_test_id("login-key").wait_for()
    shoot(page, out, "signin")
    tab.sign_in(key)
    for route in PAGES:
        page.goto(f"{tab.root}/console#/{route}")
        expect(page.locator("main h1")).to_be_visible()
        if route == "playground":
            page.get_by_test_id("playground-model").fill("router:general")
            page.get_by_test_id("playground-input").fill("Write a haiku about gateways.")
            page.get_by_test_id("playground-send").click()
            expect(page.get_by_test_id("playground-output")).to_have_attribute("data-state", "done")
        if route == "keys":
            page.get_by_test_id("keys-name").fill("laptop")
            page.get_by_test_id("keys-create").click()
            page.get_by_test_id("new-key").wait_for()
        if route == "webhooks":
            page.get_by_role("button", name="Deliveries to").first.click()
            page.get_by_test_id("webhook-deliveries").wait_for()
        if route == "models":
            page.get_by_test_id("models-table").wait_for()
            page.get_by_role("button", name="Details of openai/gpt-4o").first.click()
            page.get_by_test_id("model-providers").wait_for()
        shoot(page, out, route)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "console"
    out.mkdir(parents=True, exist_ok=True)
    sim = Simulator(models=MODELS)
    sim.start_in_thread()
    settings = gateway_settings(
        Path(tempfile.mkdtemp()), sim, ip_rate_limit_rpm=100_000, webhooks_allow_private=True
    )
    gw = start_gateway(settings, sim)
    try:
        _, key = add_user(gw, role="admin", credits_usd="25")
        traffic(gw, key)
        setup(gw, key)
        with chromium() as browser:
            tab = new_tab(browser, gw.root, DESKTOP)
            pages(tab, out, key)
            tab.close()
            phone = new_tab(browser, gw.root, PHONE)
            page = phone.sign_in(key)
            shoot(page, out, "dashboard-phone")
            problems = tab.problems + phone.problems
            phone.close()
        if problems:
            raise SystemExit(f"console problems: {problems}")
    finally:
        gw.stop()
        sim.stop_thread()


if __name__ == "__main__":
    main()
