#!/usr/bin/env bash
# Gatewayz vs direct vs LiteLLM vs Portkey, in one run (see bench/README.md).
#   bash bench/run_ours.sh                    # full run: direct, LiteLLM, Portkey, ours, ours-pg;
#                                             # chat + chat_stream at 1, 32, 128 connections
#   SKIP_LITELLM=1 DURATION=5 ROUNDS=1 bash bench/run_ours.sh   # quick
#   SHAPES=default SKIP_LITELLM=1 SKIP_PORTKEY=1 bash bench/run_ours.sh   # direct vs ours only
# Our gateway runs in one or both shapes (SHAPES=default,production), one worker each, pinned
# to the gateway core (SUT_CPUS) like the peers:
#   default     SQLite in a fresh data dir, in-process state; port OUR_PORT (18080), target "ours"
#   production  PostgreSQL: a fresh database gwbench_<random> made through BENCH_PG_URL (an
#               admin connection, default postgresql://postgres@127.0.0.1:5432/postgres) and
#               dropped on exit; Redis at BENCH_REDIS_URL (redis://127.0.0.1:6379/0) under a
#               fresh key prefix gwbench-<random>:, whose keys are deleted on exit;
#               port OUR_PG_PORT (18081), target "ours-pg"
# Any run_peer.sh knob (MODES, CONNS, ROUNDS, DURATION, SKIP_LITELLM, SKIP_PORTKEY,
# MOCK_LATENCY_MS, ...) passes through.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
GW=$ROOT/.venv/bin/gatewayz
PY=$ROOT/.venv/bin/python   # has asyncpg and redis (the gateway's own drivers)
[[ -x $GW ]] || { echo "run 'make install' first" >&2; exit 1; }
SHAPES=${SHAPES:-default,production}
OUR_PORT=${OUR_PORT:-18080}
OUR_PG_PORT=${OUR_PG_PORT:-18081}
MOCK_PORT=${MOCK_PORT:-18000}
SUT_CPUS=${SUT_CPUS:-1}
BENCH_PG_URL=${BENCH_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
BENCH_REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
say() { echo "[run_ours] $*" >&2; }
for s in ${SHAPES//,/ }; do
  [[ $s == default || $s == production ]] || { say "unknown shape '$s' (SHAPES=default,production)"; exit 1; }
done

DATA=$(mktemp -d "${TMPDIR:-/tmp}/gwbench-data.XXXXXX")
RUN_ID=$(python3 -c 'import secrets; print(secrets.token_hex(4))')
PG_DB=gwbench_$RUN_ID
REDIS_PREFIX=gwbench-$RUN_ID:
GW_PIDS=()        # our gateways (this script's only long-lived children besides run_peer.sh)
PG_CREATED=0
REDIS_USED=0

pg_admin() {  # create|drop|url: the run's database, through the admin connection
  "$PY" - "$1" "$PG_DB" "$BENCH_PG_URL" <<'PY'
import asyncio
import re
import sys
from urllib.parse import urlsplit, urlunsplit

import asyncpg

op, db, admin = sys.argv[1:]
assert re.fullmatch(r"gwbench_[0-9a-f]+", db), db
if op == "url":  # the gateway's URL: same server and user, the run's database, asyncpg driver
    u = urlsplit(admin)
    print(urlunsplit(("postgresql+asyncpg", u.netloc, f"/{db}", u.query, "")))
    sys.exit()


async def main() -> None:
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        if op == "create":
            await conn.execute(f'CREATE DATABASE "{db}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    finally:
        await conn.close()


asyncio.run(main())
PY
}
redis_keys() {  # count|delete: the keys under the run's prefix
  "$PY" - "$1" "$BENCH_REDIS_URL" "$REDIS_PREFIX" <<'PY'
import sys

import redis

op, url, prefix = sys.argv[1:]
r = redis.Redis.from_url(url, socket_timeout=10)
keys = list(r.scan_iter(match=prefix + "*", count=1000))
if op == "delete":
    for i in range(0, len(keys), 500):
        r.delete(*keys[i : i + 500])
print(len(keys))
PY
}

cleanup() {
  local pid
  for pid in "${GW_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${GW_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ $PG_CREATED == 1 ]]; then
    pg_admin drop && say "dropped database $PG_DB" || say "WARNING: could not drop database $PG_DB"
  fi
  if [[ $REDIS_USED == 1 ]]; then
    say "deleted $(redis_keys delete || echo '?') Redis keys under $REDIS_PREFIX"
  fi
  rm -rf "$DATA"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

OUR_TARGETS=""
launch() {  # target name, port, then the shape's environment (NAME=value ...)
  local name=$1 port=$2 key pid
  shift 2
  local envs=("$@" "GATEWAYZ_DATA_DIR=$DATA/$name" "GATEWAYZ_PORT=$port" GATEWAYZ_WORKERS=1
    GATEWAYZ_LOG_LEVEL=warning "GATEWAYZ_PROVIDER_VLLM_BASE_URL=http://127.0.0.1:$MOCK_PORT/v1"
    GATEWAYZ_PROVIDER_VLLM_MODELS=mock-gpt)
  # The bench user, written by the CLI with the same environment: the same database.
  key=$(env "${envs[@]}" "$GW" users create --email bench@example.com --role dev --plan enterprise \
    --credits 1000000 --rpm-limit 1000000000 --tokens-per-day 1000000000000 \
    --tokens-per-month 1000000000000 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
  env "${envs[@]}" taskset -c "$SUT_CPUS" "$GW" serve >"$DATA/$name.log" 2>&1 &
  pid=$!
  GW_PIDS+=("$pid")
  for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/health" || { cat "$DATA/$name.log" >&2; exit 1; }
  say "$name: gateway pid $pid on :$port"
  OUR_TARGETS+="$name=http://127.0.0.1:$port,$key,$pid "
}

if [[ ,$SHAPES, == *,default,* ]]; then
  # Default shape: whatever database or Redis the caller's environment names is not used.
  launch ours "$OUR_PORT" -u GATEWAYZ_DATABASE_URL -u GATEWAYZ_REDIS_URL -u GATEWAYZ_REDIS_KEY_PREFIX
fi
if [[ ,$SHAPES, == *,production,* ]]; then
  redis_keys count >/dev/null || { say "Redis at $BENCH_REDIS_URL is not reachable"; exit 1; }
  pg_admin create || { say "cannot create database $PG_DB through $BENCH_PG_URL"; exit 1; }
  PG_CREATED=1
  REDIS_USED=1
  say "production shape: database $PG_DB, Redis $BENCH_REDIS_URL with key prefix $REDIS_PREFIX"
  launch ours-pg "$OUR_PG_PORT" "GATEWAYZ_DATABASE_URL=$(pg_admin url)" \
    "GATEWAYZ_REDIS_URL=$BENCH_REDIS_URL" "GATEWAYZ_REDIS_KEY_PREFIX=$REDIS_PREFIX"
fi
[[ -n $OUR_TARGETS ]] || { say "no shape to run (SHAPES=$SHAPES)"; exit 1; }

OUT_DIR=${OUT_DIR:-$ROOT/bench-results} OUR_TARGETS=$OUR_TARGETS MOCK_PORT=$MOCK_PORT SUT_CPUS=$SUT_CPUS \
  bash "$HERE/run_peer.sh"
if [[ $REDIS_USED == 1 ]]; then
  say "production shape used Redis: $(redis_keys count) keys under $REDIS_PREFIX"
fi
