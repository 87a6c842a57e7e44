"""Fill a bench database for scaling.sh, through the gateway's own Python API or plain SQL.

Run it with the gateway's environment (`env "${GW_ENV[@]}" .venv/bin/python bench/seed.py ...`,
as scaling.sh does): its settings are read as `gatewayz` reads them (Settings.from_env: the
database, the data dir and so its key secrets), and the database is migrated first.

    seed.py users N --keys-file F    N users, each with a primary key (as `gatewayz users create
                                     --plan enterprise` makes the bench user: the same calls, the
                                     same credit and limits), in a few transactions; the keys
                                     go to F, one a line
    seed.py catalog N                N synthetic catalog models (catalog_bench.py's generator:
                                     about 1.5 N offers over five providers), written as a
                                     successful sync writes them (replace_offers + record ok),
                                     each provider marked synced now
    seed.py ledger --users U --transactions T --holds H
                                     U more users (plain SQL) owning T `credit_transactions`
                                     rows (a grant, then usage rows, running balances right)
                                     and H `credit_holds` rows in state `settled`, expired
                                     (inserted with generate_series)
    seed.py analyze                  VACUUM ANALYZE the whole database (scaling.sh runs it on
                                     every side once seeded: a fresh database has no planner
                                     statistics until autovacuum gets to it, and a side
                                     without them is not comparable with one that has them)

Why not a catalog sync against a mock listing N models: the sync keeps priced models only
(catalog/offers.py: `unpriced`), and synthetic names have no price in the pricing data, so a
sync would store none of them. The rows written here are what a sync of priced models writes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gatewayz.accounts import api_keys
from gatewayz.accounts.provisioning import PRIMARY_KEY_NAME
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.storage import users
from gatewayz.storage.db import Database, upgrade

sys.path.insert(0, str(Path(__file__).resolve().parent))
from catalog_bench import PROVIDERS, write_synthetic_catalog

# The bench user's terms (bench/lib.sh bench_user): enterprise plan, $1M, limits out of reach.
CREDITS = Decimal(1_000_000)
LIMITS = {"rpm": 1_000_000_000, "tokens_per_day": 10**12, "tokens_per_month": 10**12}
BATCH = 100  # users per transaction


def log(msg: str) -> None:
    print(f"[seed] {msg}", file=sys.stderr, flush=True)


async def seed_users(settings: Settings, n: int) -> list[str]:
    keyring = KeyRing(*settings.secrets)
    db = Database(settings.resolved_database_url)
    keys: list[str] = []
    started = time.perf_counter()
    try:
        for first in range(0, n, BATCH):
            async with db.begin() as conn:
                for i in range(first, min(n, first + BATCH)):
                    email = "bench@example.com" if i == 0 else f"bench{i}@example.com"
                    user = await users.create_user(
                        conn, email, role="dev", plan="enterprise", credits_usd=CREDITS
                    )
                    _, key = await api_keys.create_api_key(
                        conn,
                        keyring,
                        user["id"],
                        settings.env,
                        name=PRIMARY_KEY_NAME,
                        is_primary=True,
                        limits=LIMITS,
                    )
                    keys.append(key)
    finally:
        await db.dispose()
    log(f"{n} users with a key each in {time.perf_counter() - started:.1f} s")
    return keys


async def seed_catalog(settings: Settings, models: int) -> None:
    db = Database(settings.resolved_database_url)
    started = time.perf_counter()
    try:
        async with db.begin() as conn:
            written, _ = await write_synthetic_catalog(conn, models)
    finally:
        await db.dispose()
    log(
        f"catalog: {models} models, {written} offers over {', '.join(PROVIDERS)} "
        f"in {time.perf_counter() - started:.1f} s"
    )


LEDGER_SQL = [
    # Users that own the history (none of them is the bench user).
    """INSERT INTO users (id, email, role, plan, credits_nanos)
       SELECT 'ledger-' || g, 'ledger' || g || '@example.com', 'dev', 'enterprise', 0
       FROM generate_series(1, $1::int) g""",
    # Per user: a grant, then usage rows; balance_after is the running sum, as the ledger keeps.
    """INSERT INTO credit_transactions
         (user_id, type, amount_nanos, balance_after_nanos, request_id, description, created_at)
       SELECT u, t, a, SUM(a) OVER (PARTITION BY u ORDER BY g), r, NULL,
              now() - make_interval(secs => $2::int - g)
       FROM (SELECT g, 'ledger-' || (1 + g % $1::int) AS u,
                    CASE WHEN g <= $1::int THEN 'grant' ELSE 'usage' END AS t,
                    CASE WHEN g <= $1::int THEN 1000000000000000 ELSE -1000000 END AS a,
                    CASE WHEN g <= $1::int THEN NULL ELSE 'ledger-req-' || g END AS r
             FROM generate_series(1, $2::int) g) s""",
    # The users' balances agree with their rows.
    """UPDATE users SET credits_nanos = t.total
       FROM (SELECT user_id, SUM(amount_nanos) AS total FROM credit_transactions
             WHERE user_id LIKE 'ledger-%' GROUP BY user_id) t
       WHERE users.id = t.user_id""",
    # Settled holds, expired long ago, as requests leave them.
    """INSERT INTO credit_holds (request_id, user_id, amount_nanos, status, created_at, expires_at)
       SELECT 'ledger-hold-' || g, 'ledger-' || (1 + g % $1::int), 2000000, 'settled',
              now() - make_interval(secs => $2::int - g + 3600),
              now() - make_interval(secs => $2::int - g)
       FROM generate_series(1, $2::int) g""",
]


def plain_url(url: str) -> str:
    u = urlsplit(url)
    return urlunsplit(("postgresql", u.netloc, u.path, u.query, ""))


async def seed_ledger(settings: Settings, n_users: int, transactions: int, holds: int) -> None:
    url = settings.resolved_database_url
    if not url.startswith("postgresql"):
        sys.exit("seed.py ledger: PostgreSQL only (the production shape)")
    conn = await asyncpg.connect(plain_url(url), timeout=10)
    started = time.perf_counter()
    try:
        async with conn.transaction():
            await conn.execute(LEDGER_SQL[0], n_users)
            await conn.execute(LEDGER_SQL[1], n_users, transactions)
            await conn.execute(LEDGER_SQL[2])
            await conn.execute(LEDGER_SQL[3], n_users, holds)
        counts = [
            await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("users", "credit_transactions", "credit_holds")
        ]
    finally:
        await conn.close()
    log(
        f"ledger: users {counts[0]:,}, credit_transactions {counts[1]:,}, "
        f"credit_holds {counts[2]:,} in {time.perf_counter() - started:.1f} s"
    )


async def analyze(settings: Settings) -> None:
    url = settings.resolved_database_url
    if not url.startswith("postgresql"):
        return
    conn = await asyncpg.connect(plain_url(url), timeout=10)
    try:
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    u = sub.add_parser("users")
    u.add_argument("n", type=int)
    u.add_argument("--keys-file", type=Path, required=True)
    c = sub.add_parser("catalog")
    c.add_argument("n", type=int)
    g = sub.add_parser("ledger")
    g.add_argument("--users", type=int, default=1000)
    g.add_argument("--transactions", type=int, default=1_000_000)
    g.add_argument("--holds", type=int, default=1_000_000)
    sub.add_parser("analyze")
    a = ap.parse_args()
    settings = Settings.from_env()
    asyncio.run(upgrade(settings.resolved_database_url))
    if a.what == "users":
        keys = asyncio.run(seed_users(settings, a.n))
        a.keys_file.write_text("".join(k + "\n" for k in keys))
    elif a.what == "catalog":
        asyncio.run(seed_catalog(settings, a.n))
    elif a.what == "ledger":
        asyncio.run(seed_ledger(settings, a.users, a.transactions, a.holds))
    else:
        asyncio.run(analyze(settings))


if __name__ == "__main__":
    main()
