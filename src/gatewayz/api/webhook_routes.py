"""A user's webhook endpoints (`gatewayz.webhooks`): `POST/GET /user/webhooks`,
`GET/PATCH/DELETE /user/webhooks/{id}`, `POST /user/webhooks/{id}/rotate-secret`,
`POST /user/webhooks/{id}/test`, `GET /user/webhooks/{id}/deliveries`,
`POST /user/webhooks/{id}/deliveries/{delivery_id}/redeliver`.

The signing secret is shown once, when made (create, rotate). A URL must be https and resolve to
public addresses only (checked here and again at every delivery; `GATEWAYZ_WEBHOOKS_ALLOW_PRIVATE`
lifts both for tests and private deployments): 400 naming the address otherwise. Another user's
endpoint is a 404, like a missing one. Each change is an audit event.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from gatewayz.api.access import request_ip
from gatewayz.api.deps import allowed, services_of
from gatewayz.errors import InvalidRequest, NotFound
from gatewayz.money import usd_text, usd_to_nanos
from gatewayz.security.auth import Principal
from gatewayz.storage import webhooks as store
from gatewayz.storage.ledger.outbox import add_event_async, alarms
from gatewayz.storage.tables import utcnow
from gatewayz.webhooks import events
from gatewayz.webhooks.send import BlockedDestination, check_destination
from gatewayz.webhooks.signing import new_secret

router = APIRouter(prefix="/user", tags=["webhooks"])
Caller = Annotated[Principal, Depends(allowed("webhooks:write"))]
MAX_ENDPOINTS = 20


class EndpointFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, max_length=200)
    credits_low_threshold_usd: Decimal | None = Field(default=None, ge=0, le=1_000_000)


class EndpointCreate(EndpointFields):
    url: str = Field(min_length=1, max_length=2048)
    events: list[str] = Field(min_length=1, max_length=len(events.EVENT_TYPES))


class EndpointUpdate(EndpointFields):
    url: str | None = Field(default=None, min_length=1, max_length=2048)
    events: list[str] | None = Field(default=None, min_length=1, max_length=len(events.EVENT_TYPES))
    enabled: bool | None = None


def _events(value: list[str]) -> list[str]:
    unknown = sorted(set(value) - set(events.EVENT_TYPES))
    if unknown:
        valid = ", ".join(events.EVENT_TYPES)
        raise InvalidRequest(f"Unknown event type {unknown[0]!r}; one of: {valid}.", param="events")
    return sorted(set(value))


async def _url(request: Request, url: str) -> str:
    allow = services_of(request).settings.webhooks_allow_private
    try:
        await check_destination(url, allow_private=allow)
    except BlockedDestination as exc:
        raise InvalidRequest(f"'url' is not allowed: {exc}", param="url") from None
    return url


def _public(row: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["id"], "object": "webhook_endpoint"}
    if secret is not None:
        out["secret"] = secret
    out.update(
        url=row["url"],
        events=list(row["events"]),
        description=row["description"],
        credits_low_threshold_usd=usd_text(row["low_threshold_nanos"]),
        enabled=row["enabled"],
        disabled_reason=row["disabled_reason"],
        created_at=row["created_at"].isoformat(),
    )
    return out


def _delivery(row: dict[str, Any]) -> dict[str, Any]:
    due = row["next_attempt_at"] if row["status"] == "pending" else None
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "event": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "next_attempt_at": due.isoformat() if due else None,
        "delivered_at": row["delivered_at"].isoformat() if row["delivered_at"] else None,
        "log": row["log"] or [],
        "created_at": row["created_at"].isoformat(),
    }


async def _owned(request: Request, p: Principal, endpoint_id: str) -> dict[str, Any]:
    async with services_of(request).db.begin() as conn:
        row = await store.get_endpoint(conn, p.user_id, endpoint_id)
    if row is None:
        raise NotFound(f"No webhook endpoint {endpoint_id!r}.")
    return row


def _audit(request: Request, p: Principal, event: str, endpoint_id: str) -> None:
    services_of(request).audit.event(
        event,
        user_id=p.user_id,
        api_key_id=p.api_key_id,
        ip=request_ip(request.scope),
        path=request.url.path,
        detail={"endpoint_id": endpoint_id},
    )


@router.post("/webhooks", status_code=201)
async def create(body: EndpointCreate, request: Request, p: Caller) -> dict[str, Any]:
    s = services_of(request)
    url, kinds = await _url(request, body.url), _events(body.events)
    threshold = events.DEFAULT_LOW_THRESHOLD_NANOS
    if body.credits_low_threshold_usd is not None:
        threshold = usd_to_nanos(body.credits_low_threshold_usd)
    secret = new_secret()
    async with s.db.begin() as conn:
        if len(await store.list_endpoints(conn, p.user_id)) >= MAX_ENDPOINTS:
            raise InvalidRequest(f"At most {MAX_ENDPOINTS} webhook endpoints per account.")
        row = await store.create_endpoint(
            conn,
            {
                "user_id": p.user_id,
                "url": url,
                "description": body.description,
                "events": kinds,
                "secret_enc": s.keyring.encrypt(secret),
                "low_threshold_nanos": threshold,
                # Armed by `_rearm` where the balance is above: a crossing that happened
                # before the endpoint existed is no event.
                "low_armed": False,
                "depleted_armed": False,
                "enabled": True,
                "disabled_reason": None,
                "failing_since": None,
            },
        )
        await _rearm(conn, p.user_id)
    _audit(request, p, "webhook_created", row["id"])
    return _public(row, secret)


async def _rearm(conn: Any, user_id: str) -> None:
    """After the account's endpoints changed: their alarms armed where the balance is above,
    and the account's watch (storage/ledger/outbox.py)."""
    await conn.run_sync(lambda c: alarms(c, user_id, fire=False))


@router.get("/webhooks")
async def list_all(request: Request, p: Caller) -> dict[str, Any]:
    async with services_of(request).db.begin() as conn:
        rows = await store.list_endpoints(conn, p.user_id)
    return {"object": "list", "data": [_public(r) for r in rows]}


@router.get("/webhooks/{endpoint_id}")
async def get_one(endpoint_id: str, request: Request, p: Caller) -> dict[str, Any]:
    return _public(await _owned(request, p, endpoint_id))


@router.patch("/webhooks/{endpoint_id}")
async def change(
    endpoint_id: str, body: EndpointUpdate, request: Request, p: Caller
) -> dict[str, Any]:
    await _owned(request, p, endpoint_id)
    values: dict[str, Any] = {}
    fields = body.model_fields_set
    if body.url is not None:
        values["url"] = await _url(request, body.url)
    if body.events is not None:
        values["events"] = _events(body.events)
    if "description" in fields:
        values["description"] = body.description
    if body.credits_low_threshold_usd is not None:
        values["low_threshold_nanos"] = usd_to_nanos(body.credits_low_threshold_usd)
    if body.enabled is not None:
        values["enabled"] = body.enabled
        if body.enabled:
            values.update(disabled_reason=None, failing_since=None)
    if "low_threshold_nanos" in values or "events" in values or body.enabled:
        values.update(low_armed=False, depleted_armed=False)  # as new: `_rearm` decides
    async with services_of(request).db.begin() as conn:
        if values:
            await store.update_endpoint(conn, endpoint_id, **values)
        await _rearm(conn, p.user_id)
        row = await store.get_endpoint(conn, p.user_id, endpoint_id)
    _audit(request, p, "webhook_updated", endpoint_id)
    assert row is not None
    return _public(row)


@router.delete("/webhooks/{endpoint_id}", status_code=204)
async def remove(endpoint_id: str, request: Request, p: Caller) -> Response:
    async with services_of(request).db.begin() as conn:
        if not await store.delete_endpoint(conn, p.user_id, endpoint_id):
            raise NotFound(f"No webhook endpoint {endpoint_id!r}.")
        await _rearm(conn, p.user_id)
    _audit(request, p, "webhook_deleted", endpoint_id)
    return Response(status_code=204)


@router.post("/webhooks/{endpoint_id}/rotate-secret")
async def rotate(endpoint_id: str, request: Request, p: Caller) -> dict[str, Any]:
    s = services_of(request)
    await _owned(request, p, endpoint_id)
    secret = new_secret()
    async with s.db.begin() as conn:
        await store.update_endpoint(conn, endpoint_id, secret_enc=s.keyring.encrypt(secret))
    _audit(request, p, "webhook_secret_rotated", endpoint_id)
    return {"id": endpoint_id, "secret": secret}


@router.post("/webhooks/{endpoint_id}/test", status_code=202)
async def test(endpoint_id: str, request: Request, p: Caller) -> dict[str, Any]:
    await _owned(request, p, endpoint_id)
    data = {"endpoint_id": endpoint_id, "message": "A test event from Gatewayz."}
    async with services_of(request).db.begin() as conn:
        event_id = await add_event_async(conn, events.TEST, data, user_id=p.user_id)
    return {"event_id": event_id, "status": "queued"}


@router.get("/webhooks/{endpoint_id}/deliveries")
async def deliveries(
    endpoint_id: str,
    request: Request,
    p: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    await _owned(request, p, endpoint_id)
    async with services_of(request).db.begin() as conn:
        rows = await store.list_deliveries(conn, endpoint_id, limit + 1, before)
    page = rows[:limit]
    more = len(rows) > limit
    cursor = page[-1]["id"] if more and page else None
    return {
        "object": "list",
        "data": [_delivery(r) for r in page],
        "has_more": more,
        "next_before": cursor,
    }


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver", status_code=202)
async def redeliver(
    endpoint_id: str, delivery_id: str, request: Request, p: Caller
) -> dict[str, Any]:
    await _owned(request, p, endpoint_id)
    async with services_of(request).db.begin() as conn:
        if await store.get_delivery(conn, endpoint_id, delivery_id) is None:
            raise NotFound(f"No delivery {delivery_id!r} for this endpoint.")
        await store.redeliver(conn, delivery_id)
    return {"id": delivery_id, "status": "pending", "queued_at": utcnow().isoformat()}
