"""The web console in a real browser (Debian's chromium, headless, through Playwright) against a
running gateway in front of the provider simulator: sign in, the dashboard's numbers are the
API's, a playground answer streams in, a key made in the console works, an admin grants credits
and the balance changes, the status page needs no sign-in — and no page logs an error or a
warning, puts the key in a URL or the gateway's logs, or leaves a control without a label.

Skipped only when /usr/bin/chromium is missing outside CI (under CI=true that is a failure)."""

from __future__ import annotations

import logging
import re
import secrets
import time
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, Page, expect

from gatewayz.simulators.faults import Fault
from tests.accounts.conftest import sign
from tests.api.console.browser import PHONE, Tab, in_thread, new_tab
from tests.e2e import harness
from tests.e2e.harness import Gateway

PAGES = ("dashboard", "keys", "playground", "models", "webhooks", "status", "admin")
WORDS = "alpha beta gamma delta epsilon zeta eta theta"


def add_user(gw: Gateway, **values: Any) -> tuple[str, str]:
    return in_thread(harness.add_user, gw, **values)


def api(gw: Gateway, key: str, method: str, path: str, body: Any = None) -> httpx2.Response:
    with httpx2.Client(trust_env=False, timeout=30.0) as client:
        return client.request(
            method, f"{gw.root}{path}", headers={"authorization": f"Bearer {key}"}, json=body
        )


def chat(gw: Gateway, key: str, text: str = "hello") -> httpx2.Response:
    body = {"model": "test-model", "messages": [{"role": "user", "content": text}]}
    return api(gw, key, "POST", "/v1/chat/completions", body)


def no_problems(tab: Tab) -> None:
    assert tab.problems == [], tab.problems


def unlabelled(page: Page) -> list[str]:
    """Form controls a screen reader could not name."""
    result: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
          .filter(el => el.type !== 'hidden')
          .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                        && !el.getAttribute('aria-labelledby'))
          .map(el => el.outerHTML)"""
    )
    return result


def test_sign_in_and_the_dashboard_shows_the_apis_numbers(
    tab: Tab, console_gateway: Gateway
) -> None:
    gw = console_gateway
    _, key = add_user(gw, credits_usd="42.5")
    for text in ("one", "two", "three"):
        r = chat(gw, key, text)
        assert r.status_code == 200, r.text
    assert in_thread(
        harness.request_log_rows, gw, r.headers["x-request-id"]
    )  # written: usage reads them
    page = tab.sign_in(key)
    expect(page.get_by_test_id("balance")).to_be_visible()
    balance = api(gw, key, "GET", "/user/balance").json()
    usage = api(gw, key, "GET", "/user/usage?group_by=day").json()
    by_model = api(gw, key, "GET", "/user/usage?group_by=model").json()
    assert usage["totals"]["requests"] == 3
    expect(page.get_by_test_id("balance")).to_have_text(f"${balance['balance']}")
    expect(page.get_by_test_id("balance-purchased")).to_have_text(
        f"${balance['purchased_credits']}"
    )
    expect(page.get_by_test_id("balance-allowance")).to_have_text(
        f"${balance['subscription_allowance']}"
    )
    expect(page.get_by_test_id("usage-requests")).to_have_text("3")
    expect(page.get_by_test_id("usage-spend")).to_have_text(f"${usage['totals']['spend']}")
    # The API's p50 shown to a tenth of a millisecond (JavaScript rounds a half up, Python's
    # format to even: the two may differ in the last digit on a tie).
    p50 = usage["totals"]["latency_p50_ms"]
    shown = page.get_by_test_id("latency-p50")
    expect(shown).to_have_text(re.compile(r"^\d+\.\d ms$"))
    assert abs(float(shown.inner_text().removesuffix(" ms")) - p50) <= 0.05 + 1e-9
    # Two charts of the 30 days, one bar per day; today's request bar is the tallest.
    chart = page.get_by_test_id("usage-chart")
    expect(chart.locator("svg rect.bar")).to_have_count(60)
    requests_bars = page.get_by_test_id("requests-chart").locator("rect.bar")
    heights = [
        float(h or 0)
        for h in requests_bars.evaluate_all("r => r.map(b => b.getAttribute('height'))")
    ]
    assert heights[-1] == max(heights) > 0 and heights[:-1] == [0.0] * 29
    top = page.get_by_test_id("top-models").locator("tbody tr")
    expect(top).to_have_count(len(by_model["data"]))
    expect(top.first).to_contain_text("test-model")
    assert unlabelled(page) == []
    no_problems(tab)


def test_a_wrong_key_is_refused_with_the_gateways_message(tab: Tab) -> None:
    page = tab.open()
    page.get_by_test_id("login-key").fill("gw_test_" + "x" * 43)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_role("alert")).to_contain_text("Incorrect API key")
    expect(page.get_by_test_id("whoami")).to_have_count(0)
    assert page.evaluate("sessionStorage.length") == 0
    # The browser reports the refused request itself; nothing else went wrong.
    assert [p for p in tab.problems if "status of 401" not in p] == []


def test_csv_export_downloads_the_usage(tab: Tab, console_gateway: Gateway) -> None:
    _, key = add_user(console_gateway, credits_usd=5)
    page = tab.sign_in(key)
    with page.expect_download() as info:
        page.get_by_test_id("usage-csv").click()
    download = info.value
    assert download.suggested_filename.startswith("gatewayz-usage-")
    assert download.suggested_filename.endswith("-by-day.csv")
    with open(download.path(), encoding="utf-8") as f:
        assert f.readline().startswith("day,requests,errors,")
    assert key not in download.url
    no_problems(tab)


def test_a_playground_answer_streams_in(tab: Tab, console_gateway: Gateway) -> None:
    gw = console_gateway
    _, key = add_user(gw, credits_usd=5)
    page = tab.sign_in(key)
    page.goto(f"{gw.root}/console#/playground")
    page.get_by_test_id("playground-model").fill("test-model")
    page.get_by_test_id("playground-input").fill("Tell me the Greek letters")
    # Each text change of the answer, with when it happened.
    page.evaluate(
        """() => {
          window.__seen = [];
          const out = document.querySelector('[data-testid=playground-output]');
          new MutationObserver(() => window.__seen.push([performance.now(), out.textContent]))
            .observe(out, {childList: true, subtree: true, characterData: true});
        }"""
    )
    gw.upstream.fault(Fault(text=WORDS, chunk_delay_s=0.08))
    page.get_by_test_id("playground-send").click()
    output = page.get_by_test_id("playground-output")
    expect(output).to_have_attribute("data-state", "done", timeout=15_000)
    expect(output).to_have_text(WORDS)
    seen: list[list[Any]] = page.evaluate("window.__seen")
    texts = [t for _, t in seen if t]
    assert len(texts) >= 4, texts  # it grew piece by piece...
    assert all(WORDS.startswith(t) for t in texts) and texts[-1] == WORDS
    assert seen[-1][0] - seen[0][0] > 200  # ...over time (ms), not at once
    expect(page.get_by_test_id("playground-provider")).to_have_text("vllm")
    expect(page.get_by_test_id("playground-attempts")).to_have_text("1")
    expect(page.get_by_test_id("playground-cache")).to_have_text("miss")
    expect(page.get_by_test_id("playground-cost")).to_have_text(re.compile(r"^\$\d"))
    no_problems(tab)


def test_the_playground_shows_a_routers_choice(tab: Tab, console_gateway: Gateway) -> None:
    gw = console_gateway
    _, key = add_user(gw, credits_usd=5)
    page = tab.sign_in(key)
    page.goto(f"{gw.root}/console#/playground")
    page.get_by_test_id("playground-model").fill("router:general")
    page.get_by_test_id("playground-input").fill("What is 2 + 2?")
    page.get_by_test_id("playground-send").click()
    output = page.get_by_test_id("playground-output")
    expect(output).to_have_attribute("data-state", "done", timeout=15_000)
    body = {"model": "router:general", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}
    header = api(gw, key, "POST", "/v1/chat/completions", body).headers["x-gatewayz-route"]
    fields = dict(part.strip().split("=", 1) for part in header.split(";"))
    expect(page.get_by_test_id("playground-route")).to_have_text(fields["reason"])
    expect(page.get_by_test_id("playground-route-model")).to_have_text(fields["model"])
    no_problems(tab)


def test_a_key_created_in_the_console_works(tab: Tab, console_gateway: Gateway) -> None:
    gw = console_gateway
    _, key = add_user(gw, credits_usd=5)
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = tab.sign_in(key)
    page.goto(f"{gw.root}/console#/keys")
    expect(page.get_by_test_id("keys-table").locator("tbody tr")).to_have_count(1)
    page.get_by_test_id("keys-name").fill("made in the console")
    page.get_by_test_id("keys-create").click()
    new_key = page.get_by_test_id("new-key").inner_text().strip()
    assert new_key.startswith("gw_test_") and new_key != key
    page.get_by_test_id("copy-key").click()
    expect(page.get_by_text("Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == new_key
    table = page.get_by_test_id("keys-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("made in the console")
    assert new_key not in table.inner_text()  # listed by prefix and last four only
    r = chat(gw, new_key)
    assert r.status_code == 200, r.text
    # Rotate it in the console (the button asks once more): the old secret stops working.
    row = table.locator("tbody tr", has_text="made in the console")
    rotate = row.get_by_role("button", name="Rotate made in the console")
    rotate.click()
    expect(rotate).to_have_text("Confirm rotate?")
    rotate.click()
    expect(page.get_by_test_id("new-key")).not_to_have_text(new_key)
    rotated = page.get_by_test_id("new-key").inner_text().strip()
    assert chat(gw, rotated).status_code == 200
    assert chat(gw, new_key).status_code == 401
    revoke = row.get_by_role("button", name="Revoke made in the console")
    revoke.click()
    revoke.click()  # "Confirm revoke?"
    expect(table.locator("tbody tr")).to_have_count(1)
    assert chat(gw, rotated).status_code == 401
    no_problems(tab)


def test_an_admin_grants_credits_and_the_balance_changes(
    browser: Browser, console_gateway: Gateway
) -> None:
    gw = console_gateway
    _, admin_key = add_user(gw, role="admin")
    target_id, target_key = add_user(gw, credits_usd="5")
    email = api(gw, target_key, "GET", "/user/me").json()["email"]
    admin_tab = new_tab(browser, gw.root)
    user_tab = new_tab(browser, gw.root)
    try:
        before = api(gw, target_key, "GET", "/user/balance").json()["balance"]
        user_page = user_tab.sign_in(target_key)
        expect(user_page.get_by_test_id("balance")).to_have_text(f"${before}")
        # A non-admin sees no Admin page.
        expect(user_page.get_by_role("link", name="Admin")).to_have_count(0)

        page = admin_tab.sign_in(admin_key)
        page.get_by_role("link", name="Admin").click()
        page.get_by_test_id("admin-search").fill(email)
        page.get_by_test_id("admin-search-submit").click()
        rows = page.get_by_test_id("admin-users").locator("tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(target_id)
        rows.first.get_by_test_id("grant-amount").fill("12.5")
        rows.first.get_by_test_id("grant-submit").click()
        expect(page.get_by_test_id("admin-flash")).to_contain_text("Granted $12.5")
        after = api(gw, target_key, "GET", "/user/balance").json()["balance"]
        assert Decimal(after) == Decimal(before) + Decimal("12.5")
        user_page.reload()
        expect(user_page.get_by_test_id("balance")).to_have_text(f"${after}")
        assert unlabelled(page) == []
        no_problems(admin_tab)
        no_problems(user_tab)
    finally:
        admin_tab.close()
        user_tab.close()


def test_sign_in_with_privy(
    tab: Tab, console_gateway: Gateway, console_privy_key: ec.EllipticCurvePrivateKey
) -> None:
    """Privy is configured: its identity token is exchanged at POST /auth for a key."""
    email = f"privy{secrets.token_hex(4)}@example.com"
    token = sign(console_privy_key, accounts=[{"type": "email", "address": email}])
    page = tab.open()
    page.get_by_test_id("privy-token").fill(token)
    page.get_by_role("button", name="Continue with Privy").click()
    expect(page.get_by_test_id("whoami")).to_contain_text(email)
    expect(page.get_by_test_id("balance")).to_be_visible()
    assert not [u for u in tab.urls if token in u]
    no_problems(tab)


def test_models_are_the_catalogs_filtered_as_asked(tab: Tab, console_gateway: Gateway) -> None:
    root = console_gateway.root
    everything = httpx2.get(f"{root}/catalog/models?limit=500", trust_env=False).json()
    vision = httpx2.get(f"{root}/catalog/models?capability=vision", trust_env=False).json()
    assert everything["total"] >= 3 and 0 < vision["total"] < everything["total"]
    page = tab.open("models")  # public: no sign-in
    table = page.get_by_test_id("models-table")
    expect(table.locator("tbody tr")).to_have_count(everything["total"])
    page.get_by_label("Capability").select_option("vision")
    expect(table.locator("tbody tr")).to_have_count(vision["total"])
    page.get_by_test_id("models-search").fill("mini")
    minis = [m for m in vision["data"] if "mini" in m["id"]]
    expect(table.locator("tbody tr")).to_have_count(len(minis))
    model = minis[0]
    page.get_by_role("button", name=f"Details of {model['id']}").click()
    offers = page.get_by_test_id("model-providers").locator("tbody tr")
    expect(offers).to_have_count(len(model["providers"]))
    price = model["providers"][0]["pricing"]["prompt"]
    expect(offers.first).to_contain_text(f"${price}")
    no_problems(tab)


def test_webhooks_endpoint_test_event_and_redelivery(tab: Tab, console_gateway: Gateway) -> None:
    gw = console_gateway
    _, key = add_user(gw, credits_usd=5)
    page = tab.sign_in(key)
    page.goto(f"{gw.root}/console#/webhooks")
    page.get_by_test_id("webhook-url").fill("http://127.0.0.1:9/hooks")  # nobody listens
    page.get_by_test_id("webhook-create").click()
    expect(page.get_by_test_id("webhook-secret")).to_have_text(re.compile(r"^whsec_"))
    endpoints = api(gw, key, "GET", "/user/webhooks").json()["data"]
    assert [e["url"] for e in endpoints] == ["http://127.0.0.1:9/hooks"]
    table = page.get_by_test_id("webhooks-table")
    expect(table.locator("tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Send a test event to http://127.0.0.1:9/hooks").click()
    expect(page.get_by_text("Test event queued.")).to_be_visible()
    deliveries = page.get_by_test_id("webhook-deliveries").locator("tbody tr")
    deadline = time.monotonic() + 15
    while True:  # the dispatcher picks the event up within a second or so
        page.get_by_role("button", name="Deliveries to http://127.0.0.1:9/hooks").click()
        page.get_by_test_id("webhook-deliveries").wait_for()
        if "webhook.test" in deliveries.first.inner_text() or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    expect(deliveries.first).to_contain_text("webhook.test")
    deliveries.first.get_by_role("button", name=re.compile("^Redeliver webhook.test")).click()
    expect(page.get_by_text(re.compile(r"Delivery .* queued again\."))).to_be_visible()
    no_problems(tab)


def test_status_needs_no_sign_in(tab: Tab, console_gateway: Gateway) -> None:
    page = tab.open("status")
    status = httpx2.get(f"{console_gateway.root}/status", trust_env=False).json()
    rows = page.get_by_test_id("status-table").locator("tbody tr")
    expect(rows).to_have_count(len(status["providers"]))
    for provider in status["providers"]:
        expect(page.get_by_test_id("status-table")).to_contain_text(provider["provider"])
    expect(page.get_by_role("link", name="Keys")).to_have_count(0)
    page.goto(f"{console_gateway.root}/console#/keys")  # a signed-in page: the sign-in form
    expect(page.get_by_test_id("login-key")).to_be_visible()
    no_problems(tab)


def test_every_page_is_clean_the_key_stays_out_of_urls_and_logs(
    tab: Tab, console_gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    gw = console_gateway
    _, key = add_user(gw, role="admin", credits_usd=5)
    caplog.set_level(logging.DEBUG)
    page = tab.sign_in(key)
    for route in PAGES:
        page.goto(f"{gw.root}/console#/{route}")
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main [aria-busy]")).to_have_count(0)
        expect(page.locator("main .notice.error")).to_have_count(0)
        assert unlabelled(page) == [], route
        # Keyboard: the page's heading has the focus after navigation.
        assert page.evaluate("document.activeElement.tagName") == "H1", route
    page.goto(f"{gw.root}/console#/playground")
    page.get_by_test_id("playground-model").fill("test-model")
    page.get_by_test_id("playground-input").fill("hello")
    page.get_by_test_id("playground-send").click()
    expect(page.get_by_test_id("playground-output")).to_have_attribute("data-state", "done")
    time.sleep(0.2)
    access = [r for r in caplog.records if r.name == "gatewayz.access"]
    assert access, "the access log saw the playground's request"
    assert tab.urls and not [u for u in tab.urls if key in u]
    assert key not in page.url
    assert page.evaluate("Object.keys(localStorage).length") == 0
    assert tab.context.cookies() == []
    assert key not in caplog.text
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_test_id("login-key")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    no_problems(tab)


def test_usable_on_a_phone(browser: Browser, console_gateway: Gateway) -> None:
    _, key = add_user(console_gateway, credits_usd=5)
    tab = new_tab(browser, console_gateway.root, PHONE)
    try:
        page = tab.sign_in(key)
        for route in ("dashboard", "keys", "playground", "status"):
            page.goto(f"{console_gateway.root}/console#/{route}")
            expect(page.locator("main h1")).to_be_visible()
            expect(page.locator("main [aria-busy]")).to_have_count(0)
            # Nothing wider than the screen: wide tables scroll inside their own box.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], (route, width)
        no_problems(tab)
    finally:
        tab.close()
