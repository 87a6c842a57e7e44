"""Customer webhooks end to end (CM-16.1–16.4): a running gateway, its dispatcher, a real
receiver on 127.0.0.1; the balance events driven by real charges through the ledger."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.billing import ledger
from gatewayz.security.keys import KeyRing
from gatewayz.simulators import Simulator
from gatewayz.storage.db import Database
from gatewayz.webhooks.dispatcher import Dispatcher
from gatewayz.webhooks.signing import verify
from tests.e2e.harness import Gateway, add_user, gateway_settings, run_db, start_gateway
from tests.webhooks.receiver import Receiver, receiver

USD = 10**9


@pytest.fixture(scope="module")
def gw(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings = gateway_settings(
        tmp_path_factory.mktemp("webhooks"),
        upstream,
        webhooks_allow_private=True,
        webhook_dispatch_s=0.05,
        webhook_retry_base_s=0.2,
        webhook_max_attempts=4,
    )
    gateway = start_gateway(settings, upstream)
    yield gateway
    gateway.stop()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def api(gw: Gateway, key: str, method: str, path: str, body: Any = None) -> httpx2.Response:
    headers = {"authorization": f"Bearer {key}"}
    return httpx2.request(method, f"{gw.root}{path}", json=body, headers=headers, timeout=10)


def register(gw: Gateway, key: str, url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    r = api(gw, key, "POST", "/user/webhooks", {"url": url, "events": events, **extra})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def spend(gw: Gateway, user_id: str, usd: float, tag: str) -> None:
    """A real charge: a hold and its settle, through the ledger's request-path operations."""
    nanos = int(usd * USD)

    async def work(conn: AsyncConnection) -> None:
        assert await ledger.hold(conn, user_id, tag, nanos)
        await ledger.settle(conn, user_id, tag, nanos)

    run_db(gw, work)


def test_cm_16_1_webhook_payload_hmac_signed(gw: Gateway, hook: Receiver) -> None:
    _, key = add_user(gw, credits_usd="5")
    endpoint = register(gw, key, hook.url, ["credits.added"])
    secret = endpoint["secret"]
    assert secret.startswith("whsec_")
    r = api(gw, key, "POST", f"/user/webhooks/{endpoint['id']}/test")
    assert r.status_code == 202
    (got,) = hook.wait_for("webhook.test")
    assert verify(secret, got.body, got.headers["x-gatewayz-signature"])
    assert not verify(secret, got.body + b" ", got.headers["x-gatewayz-signature"])
    assert not verify("whsec_other", got.body, got.headers["x-gatewayz-signature"])
    event = got.event
    assert event["type"] == "webhook.test" and event["id"] == r.json()["event_id"]
    assert set(event) == {"id", "type", "created", "data"}
    assert got.headers["x-gatewayz-delivery"].startswith("dlv_")
    # The secret is shown once: never in a listing.
    listed = api(gw, key, "GET", "/user/webhooks").json()["data"]
    assert [e["id"] for e in listed] == [endpoint["id"]] and "secret" not in listed[0]


def test_cm_16_2_webhook_credits_low_event_triggered(gw: Gateway, hook: Receiver) -> None:
    user_id, key = add_user(gw, credits_usd="3")
    register(gw, key, hook.url, ["credits.low"], credits_low_threshold_usd="1.5")
    spend(gw, user_id, 1.0, "low-1")  # $2 left: above the threshold, nothing
    spend(gw, user_id, 0.75, "low-2")  # $1.25: crossed
    (low,) = hook.wait_for("credits.low")
    assert low.event["data"] == {"balance_usd": "1.25", "threshold_usd": "1.5"}
    spend(gw, user_id, 0.25, "low-3")  # still below: once per crossing
    run_db(gw, lambda c: ledger.grant(c, user_id, "2"))  # $3: armed again
    spend(gw, user_id, 2.0, "low-4")  # $1: crossed again
    lows = hook.wait_for("credits.low", 2)
    assert [e.event["data"]["balance_usd"] for e in lows] == ["1.25", "1"]
    assert len(hook.of_type("credits.low")) == 2


def test_cm_16_3_webhook_credits_depleted_event_triggered(gw: Gateway, hook: Receiver) -> None:
    user_id, key = add_user(gw, credits_usd="1")
    register(gw, key, hook.url, ["credits.depleted", "credits.added"])
    spend(gw, user_id, 0.5, "dep-1")
    spend(gw, user_id, 0.5, "dep-2")  # exactly 0: depleted
    (depleted,) = hook.wait_for("credits.depleted")
    assert depleted.event["data"] == {"balance_usd": "0"}
    run_db(gw, lambda c: ledger.grant(c, user_id, "0.25", type="purchase"))
    (added,) = hook.wait_for("credits.added")
    assert added.event["data"]["amount_usd"] == "0.25"
    assert added.event["data"]["balance_usd"] == "0.25"
    assert len(hook.of_type("credits.depleted")) == 1


def test_cm_16_4_webhook_retry_exponential_backoff(gw: Gateway, hook: Receiver) -> None:
    _, key = add_user(gw, credits_usd="1")
    endpoint = register(gw, key, hook.url, ["credits.added"])
    hook.statuses = [500, 503]  # fails twice, then 200
    api(gw, key, "POST", f"/user/webhooks/{endpoint['id']}/test")
    tries = hook.wait_for("webhook.test", 3)
    assert len({t.headers["x-gatewayz-delivery"] for t in tries}) == 1  # one delivery
    assert len({t.body for t in tries}) == 1  # the same body every attempt
    page = api(gw, key, "GET", f"/user/webhooks/{endpoint['id']}/deliveries").json()
    (delivery,) = page["data"]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert [a["status"] for a in delivery["log"]] == [500, 503, 200]
    # Full jitter under a doubling ceiling (base 0.2 s): each wait at most base × 2^(n−1), plus
    # the dispatcher's round (0.05 s) and scheduling slack.
    waits = [b.at - a.at for a, b in itertools.pairwise(tries)]
    assert waits[0] <= 0.2 + 0.5 and waits[1] <= 0.4 + 0.5
    assert len(hook.of_type("webhook.test")) == 3
    scrape = httpx2.get(f"{gw.root}/metrics").text
    assert 'gatewayz_webhook_deliveries_total{result="retried"}' in scrape


def test_a_410_disables_the_endpoint_and_its_owner_sees_why(gw: Gateway, hook: Receiver) -> None:
    _, key = add_user(gw, credits_usd="1")
    endpoint = register(gw, key, hook.url, ["credits.added"])
    hook.statuses = [410]
    api(gw, key, "POST", f"/user/webhooks/{endpoint['id']}/test")
    hook.wait_for("webhook.test")
    for _ in range(100):
        now = api(gw, key, "GET", f"/user/webhooks/{endpoint['id']}").json()
        if not now["enabled"]:
            break
        asyncio.run(asyncio.sleep(0.05))
    assert now["enabled"] is False and "410" in now["disabled_reason"]


def test_another_users_endpoint_is_not_found(gw: Gateway, hook: Receiver) -> None:
    _, mine = add_user(gw, credits_usd="1")
    _, theirs = add_user(gw, credits_usd="1")
    endpoint = register(gw, theirs, hook.url, ["credits.low"])
    for method, path in (
        ("GET", f"/user/webhooks/{endpoint['id']}"),
        ("PATCH", f"/user/webhooks/{endpoint['id']}"),
        ("DELETE", f"/user/webhooks/{endpoint['id']}"),
        ("POST", f"/user/webhooks/{endpoint['id']}/test"),
        ("GET", f"/user/webhooks/{endpoint['id']}/deliveries"),
    ):
        body = {"description": "x"} if method == "PATCH" else None
        assert api(gw, mine, method, path, body).status_code == 404, (method, path)
    assert api(gw, theirs, "DELETE", f"/user/webhooks/{endpoint['id']}").status_code == 204


def test_unknown_event_types_and_fields_are_refused(gw: Gateway, hook: Receiver) -> None:
    _, key = add_user(gw, credits_usd="1")
    bad = api(gw, key, "POST", "/user/webhooks", {"url": hook.url, "events": ["credits.lo"]})
    assert bad.status_code == 400 and "credits.lo" in bad.json()["error"]["message"]
    extra = {"url": hook.url, "events": ["credits.low"], "secret": "mine"}
    assert api(gw, key, "POST", "/user/webhooks", extra).status_code == 400


def test_urls_inside_are_refused_at_registration(upstream: Simulator, tmp_path: Path) -> None:
    """Without `webhooks_allow_private`: https only, and no address inside, by literal or name."""
    gateway = start_gateway(gateway_settings(tmp_path, upstream), upstream)
    try:
        _, key = add_user(gateway, credits_usd="1")
        for url in (
            "http://example.com/hook",  # not https
            "https://127.0.0.1/hook",
            "https://10.1.2.3/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://localhost/hook",  # a name that resolves inside
        ):
            r = api(gateway, key, "POST", "/user/webhooks", {"url": url, "events": ["credits.low"]})
            assert r.status_code == 400, (url, r.text)
            assert r.json()["error"]["param"] == "url"
    finally:
        gateway.stop()


def test_an_event_written_while_no_gateway_ran_is_delivered_after_start(
    upstream: Simulator, tmp_path: Path, hook: Receiver
) -> None:
    """The outbox is the ledger's transaction: a grant made while no gateway runs (its process
    killed after the write, say) is delivered by the next dispatcher that starts."""
    settings = gateway_settings(
        tmp_path, upstream, webhooks_allow_private=True, webhook_dispatch_s=0.05
    )
    first = start_gateway(settings, upstream)
    user_id, key = add_user(first, credits_usd="1")
    register(first, key, hook.url, ["credits.added"])
    first.stop()
    run_db(first, lambda c: ledger.grant(c, user_id, "3", type="purchase"))
    assert hook.of_type("credits.added") == []

    async def restart() -> None:
        db = Database(settings.resolved_database_url)
        dispatcher = Dispatcher(
            db,
            KeyRing(*settings.secrets),
            interval_s=0.05,
            retry_base_s=1,
            max_attempts=3,
            allow_private=True,
        )
        try:
            await dispatcher.run_once()
        finally:
            await db.dispose()

    asyncio.run(restart())
    (added,) = hook.wait_for("credits.added")
    assert added.event["data"]["amount_usd"] == "3"


def test_rate_limit_approaching_fires_once_a_window(gw: Gateway, hook: Receiver) -> None:
    user_id, owner_key = add_user(gw, credits_usd="5")

    async def limited(conn: AsyncConnection) -> str:
        keyring = KeyRing(*gw.settings.secrets)
        _, key = await create_api_key(conn, keyring, user_id, "test", "five", limits={"rpm": 5})
        return key

    key = run_db(gw, limited)
    register(gw, owner_key, hook.url, ["rate_limit.approaching"])
    body = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}
    statuses = [api(gw, key, "POST", "/v1/chat/completions", body).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    (event,) = hook.wait_for("rate_limit.approaching")
    data = event.event["data"]
    assert (data["layer"], data["limit"], data["used"]) == ("rpm", 5, 4)
    assert data["key_id"].startswith("key_")
    asyncio.run(asyncio.sleep(0.3))
    assert len(hook.of_type("rate_limit.approaching")) == 1


def test_rotate_secret_signs_with_the_new_one_only(gw: Gateway, hook: Receiver) -> None:
    _, key = add_user(gw, credits_usd="1")
    endpoint = register(gw, key, hook.url, ["credits.added"])
    rotated = api(gw, key, "POST", f"/user/webhooks/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200
    new = rotated.json()["secret"]
    assert new != endpoint["secret"]
    api(gw, key, "POST", f"/user/webhooks/{endpoint['id']}/test")
    (got,) = hook.wait_for("webhook.test")
    assert verify(new, got.body, got.headers["x-gatewayz-signature"])
    assert not verify(endpoint["secret"], got.body, got.headers["x-gatewayz-signature"])


def test_redeliver_sends_a_delivery_again_and_pages_list_newest_first(
    gw: Gateway, hook: Receiver
) -> None:
    _, key = add_user(gw, credits_usd="1")
    endpoint = register(gw, key, hook.url, ["credits.added"])
    base = f"/user/webhooks/{endpoint['id']}"
    for _ in range(3):
        api(gw, key, "POST", f"{base}/test")
    hook.wait_for("webhook.test", 3)
    first = api(gw, key, "GET", f"{base}/deliveries?limit=2").json()
    assert len(first["data"]) == 2 and first["has_more"] is True
    rest = api(gw, key, "GET", f"{base}/deliveries?limit=2&before={first['next_before']}").json()
    assert len(rest["data"]) == 1 and rest["has_more"] is False
    ids = [d["id"] for d in first["data"] + rest["data"]]
    assert len(set(ids)) == 3
    again = api(gw, key, "POST", f"{base}/deliveries/{ids[0]}/redeliver")
    assert again.status_code == 202
    sent = hook.wait_for("webhook.test", 4)
    assert [r.headers["x-gatewayz-delivery"] for r in sent].count(ids[0]) == 2
    missing = api(gw, key, "POST", f"{base}/deliveries/dlv_nope/redeliver")
    assert missing.status_code == 404


def test_patch_changes_the_threshold_and_a_disabled_endpoint_gets_nothing(
    gw: Gateway, hook: Receiver
) -> None:
    user_id, key = add_user(gw, credits_usd="3")
    endpoint = register(gw, key, hook.url, ["credits.low"])
    base = f"/user/webhooks/{endpoint['id']}"
    changed = api(gw, key, "PATCH", base, {"credits_low_threshold_usd": "2.5"}).json()
    assert changed["credits_low_threshold_usd"] == "2.5"
    spend(gw, user_id, 1.0, "patch-1")  # $2: below the new threshold
    (low,) = hook.wait_for("credits.low")
    assert low.event["data"]["threshold_usd"] == "2.5"
    off = api(gw, key, "PATCH", base, {"enabled": False}).json()
    assert off["enabled"] is False
    run_db(gw, lambda c: ledger.grant(c, user_id, "5"))
    spend(gw, user_id, 5.0, "patch-2")  # crossed again, but the endpoint is off
    asyncio.run(asyncio.sleep(0.3))
    assert len(hook.of_type("credits.low")) == 1
    bad = api(gw, key, "PATCH", base, {"events": []})
    assert bad.status_code == 400
