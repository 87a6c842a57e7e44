"""What the operator commands share beyond settings and errors (cli/db.py): bounded, validated
references to users and keys; the database opened for reading (never created or migrated by a
look) or for a change; and `Operator`, through which a change made here reaches the running
gateways as the API's own changes do — the auth-cache epoch and the query cache in the shared
state (security/invalidation.py, storage/query_cache.py: Redis when configured) — and is
recorded in the audit log the API writes to (observability/audit.py)."""

from __future__ import annotations

import getpass
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import typer

from gatewayz.cli.db import database_revision, fail, head_revision, revision_status
from gatewayz.observability.audit import AuditLog
from gatewayz.security.auth import Authenticator
from gatewayz.security.invalidation import AuthSync
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.state import build_state
from gatewayz.storage import users
from gatewayz.storage.db import Database, DbConnection, upgrade
from gatewayz.storage.query_cache import KEYS, build_query_cache

log = logging.getLogger("gatewayz.cli")

MAX_LIST = 1000  # rows one listing prints
MAX_REF = 320  # characters of an email or id given on the command line
_USER_ID = re.compile(r"usr_[A-Za-z0-9]{1,60}")
_KEY_ID = re.compile(r"key_[A-Za-z0-9]{1,60}")


def key_id(text: str) -> str:
    """A key id as given (`key_` and letters or digits), else a clean exit."""
    value = text.strip()
    if not _KEY_ID.fullmatch(value):
        fail(f"invalid key id {text[:MAX_REF]!r}: expected key_ followed by letters and digits")
    return value


def user_ref(text: str) -> tuple[str | None, str | None]:
    """(user id, None) or (None, normalised email) for EMAIL_OR_ID, else a clean exit."""
    value = text.strip()
    if value.startswith("usr_") and "@" not in value:
        if not _USER_ID.fullmatch(value):
            fail(
                f"invalid user id {text[:MAX_REF]!r}: expected usr_ followed by letters and digits"
            )
        return value, None
    try:
        return None, users.normalize_email(value)
    except ValueError:
        fail(f"{text[:MAX_REF]!r} is neither a user id (usr_...) nor a valid email address")


async def find_user(conn: DbConnection, ref: tuple[str | None, str | None]) -> dict[str, Any]:
    """The user `ref` names; `ValueError` (a clean exit through `run`) when there is none."""
    user_id, email = ref
    if user_id is not None:
        user = await users.get_user(conn, user_id)
    else:
        user = await users.get_user_by_email(conn, email or "")
    if user is None:
        raise ValueError(f"no user with {'id' if user_id else 'email'} {user_id or email}")
    return user


@asynccontextmanager
async def reading(settings: Settings) -> AsyncIterator[Database]:
    """The database to read from, as it is: a missing SQLite file is not created, a database
    not at this version's head is not migrated (its rows may not fit: an error says so)."""
    url = settings.resolved_database_url
    current, head = await database_revision(url), head_revision()
    status = revision_status(current, head)
    if status == "empty":
        raise ValueError("no database yet (or never migrated): see `gatewayz db current`")
    if status != "current":
        raise ValueError(
            f"the database is at revision {current}, not {head} ({status}): "
            "see `gatewayz db current`"
        )
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()


def _operator() -> str | None:
    """Who ran the command (the OS account), for the audit event."""
    try:
        return getpass.getuser()[:64]
    except (OSError, KeyError):
        return None


class Operator:
    """One change made from the command line, told to the running gateways and audited."""

    def __init__(self, settings: Settings, db: Database) -> None:
        s = self.settings = settings
        self.db = db
        self.keyring = KeyRing(*s.secrets)
        self.state = build_state(
            s.redis_url,
            s.redis_key_prefix,
            fallback_max_entries=s.fallback_max_entries,
            fallback_ttl_s=s.fallback_ttl_s,
            retry_after_s=s.state_fallback_retry_s,
        )
        # This process caches no key: its authenticator only carries `publish` to the others.
        auth = Authenticator(
            db, self.keyring, ttl_s=s.auth_cache_ttl_s, negative_ttl_s=s.auth_negative_cache_ttl_s
        )
        self.auth_sync = AuthSync(
            auth, self.state, poll_s=s.auth_invalidation_poll_s, workers=s.workers
        )
        self.query_cache = build_query_cache(s)
        self.audit = AuditLog(
            db,
            batch=s.request_log_batch,
            flush_s=s.request_log_flush_s,
            max_queued=s.request_log_queue_max,
            retry_max_s=s.request_log_retry_max_s,
        )
        self.events = 0
        self.shared_change = False
        self.problems: list[str] = []

    def event(
        self, event: str, /, *, user_id: str | None, api_key_id: str | None = None, **detail: Any
    ) -> None:
        """An audit event as the admin API records one (severity warning), by the CLI."""
        self.events += 1
        self.audit.event(
            event,
            severity="warning",
            user_id=user_id,
            api_key_id=api_key_id,
            detail={"via": "cli", "operator": _operator(), **detail},
        )

    async def publish(self, key_hash: str | None, keys_of: str | None = None) -> None:
        """Every worker forgets the key (None: every key) and, with `keys_of`, that user's
        cached key list: what the API does after the same change."""
        self.shared_change = True
        await self.auth_sync.publish(key_hash)
        if keys_of is not None:
            await self.query_cache.invalidate(KEYS, keys_of)

    @property
    def shared(self) -> bool:
        return self.state.name != "memory"

    async def close(self) -> None:
        """Write the audit events; note what did not reach the shared state. Raises nothing:
        the change is made already (a rotated key must still be printed)."""
        try:
            await self.audit.stop()
        except Exception as exc:
            log.warning("audit log: %s", exc, exc_info=True)
        if self.audit.written < self.events:
            self.problems.append(
                "the audit event could not be written to the database (logged on stderr only)"
            )
        if self.shared_change and getattr(self.state, "degraded", False):
            self.problems.append(
                "Redis (GATEWAYZ_REDIS_URL) is unreachable: running gateways were not told of "
                f"the change and may act on their cached copy for up to "
                f"{self.settings.auth_cache_ttl_s:g} s"
            )
        for closing in (self.query_cache.close, self.state.close):
            try:
                await closing()
            except Exception:
                log.warning("closing the shared state failed", exc_info=True)

    def finish(self) -> None:
        """After the command printed its result: a note when running gateways may not see the
        change at once, and exit 1 when part of it failed."""
        if self.shared_change and not self.shared and self.settings.workers == 1:
            typer.echo(
                "note: GATEWAYZ_REDIS_URL is not set, so a running gateway with one worker "
                f"applies this within GATEWAYZ_AUTH_CACHE_TTL_S "
                f"({self.settings.auth_cache_ttl_s:g} s); restart it to apply it now",
                err=True,
            )
        if self.problems:
            fail("; ".join(self.problems))


@asynccontextmanager
async def operating(settings: Settings) -> AsyncIterator[Operator]:
    """An `Operator` on the migrated database (migrated first, as `keys create` does)."""
    url = settings.resolved_database_url
    await upgrade(url)
    db = Database(url, pool_size=1, max_overflow=0)
    op = Operator(settings, db)
    try:
        yield op
    finally:
        try:
            await op.close()
        finally:
            await db.dispose()
