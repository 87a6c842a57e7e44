"""The Vercel entry point: Vercel's Python runtime serves the ASGI `app` of this file.

Configuration comes from the project's environment variables, as everywhere (README,
"Serverless"): a serverless instance needs `GATEWAYZ_DATABASE_URL` (PostgreSQL),
`GATEWAYZ_REDIS_URL`, the shared `GATEWAYZ_FERNET_KEY` and `GATEWAYZ_HMAC_KEY`, and
`GATEWAYZ_DATA_DIR=/tmp/gatewayz` (the only writable place). The schema is not migrated here
(every cold start would race to): run `gatewayz db upgrade` with the same database URL before
deploying a new version, e.g. as the build command. The background jobs (webhook
deliveries, credit-lease flushes, hold sweeps, the catalog sync, health probes) run only while
an instance is alive: run one long-lived `gatewayz serve` beside it for them.
"""

from gatewayz.app import create_app

app = create_app()
