# Shell functions shared by run_ours.sh, soak.sh and scaling.sh (sourced, not run).
#
# Everything a script makes through these functions is undone by `lib_cleanup` (installed as
# the EXIT trap by `lib_init`): processes stopped by PID (TERM, then KILL after 10 s),
# databases dropped (WITH (FORCE)), Redis keys under each prefix deleted, temporary dirs removed.
#
#   lib_init NAME                 defaults, a temporary dir $DATA, the cleanup trap
#   production_env NAME           a fresh database gwbench_<random> and Redis prefix
#                                 gwbench-<random>:, as PROD_ENV=(GATEWAYZ_DATABASE_URL=... ...)
#   gateway_env NAME PORT ENV...  GW_ENV: the shape's ENV plus the bench settings (one worker,
#                                 data dir $DATA/NAME, vllm -> the mock serving mock-gpt)
#   bench_user                    the bench user (CLI, GW_ENV): prints its API key
#   start_gateway NAME PORT       `gatewayz serve` with GW_ENV, pinned to $SUT_CPUS: GW_PID
#   start_mock                    mock_upstream.py pinned to $LOAD_CPUS: MOCK_PID
#   lib_mark, lib_undo "${LIB_MARK[@]}"   undo only what was made since lib_mark
#   redis_keys count|delete PREFIX, pg_admin create|drop|url DB, psql_show SETTING, stop_pid PID
#
# Knobs: MOCK_PORT (18000), SUT_CPUS (1), LOAD_CPUS (0), BENCH_PG_URL (an admin connection,
# postgresql://postgres@127.0.0.1:5432/postgres), BENCH_REDIS_URL (redis://127.0.0.1:6379/0).

LIB_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$LIB_HERE/.." && pwd)
GW=$ROOT/.venv/bin/gatewayz
PY=$ROOT/.venv/bin/python   # has asyncpg, redis (the gateway's own drivers) and uvloop
MOCK_PORT=${MOCK_PORT:-18000}
SUT_CPUS=${SUT_CPUS:-1}
LOAD_CPUS=${LOAD_CPUS:-0}
BENCH_PG_URL=${BENCH_PG_URL:-postgresql://postgres@127.0.0.1:5432/postgres}
BENCH_REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
LIB_NAME=bench
LIB_PIDS=()       # processes to stop, in order of start (stopped in reverse)
LIB_DBS=()        # databases to drop
LIB_PREFIXES=()   # Redis key prefixes whose keys are deleted
DATA=""

say() { echo "[$LIB_NAME] $*" >&2; }

lib_init() {  # NAME: the prefix of messages
  LIB_NAME=$1
  [[ -x $GW ]] || { say "run 'make install' first"; exit 1; }
  DATA=$(mktemp -d "${TMPDIR:-/tmp}/gwbench-data.XXXXXX")
  trap lib_cleanup EXIT
  trap 'exit 130' INT TERM
}

random_id() { python3 -c 'import secrets; print(secrets.token_hex(4))'; }

pg_admin() {  # create|drop|url DB: a run's database, through the admin connection
  "$PY" - "$1" "$2" "$BENCH_PG_URL" <<'PY'
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

psql_show() {  # SETTING: the server's value (SHOW), through the admin connection
  "$PY" - "$1" "$BENCH_PG_URL" <<'PY'
import asyncio
import re
import sys

import asyncpg

name, admin = sys.argv[1:]
assert re.fullmatch(r"[a-z_]+", name), name


async def main() -> None:
    conn = await asyncpg.connect(admin, timeout=10)
    try:
        print(await conn.fetchval(f"SHOW {name}"))
    finally:
        await conn.close()


asyncio.run(main())
PY
}

redis_keys() {  # count|delete PREFIX: the keys under a run's prefix
  "$PY" - "$1" "$BENCH_REDIS_URL" "$2" <<'PY'
import sys

import redis

op, url, prefix = sys.argv[1:]
assert prefix.startswith("gwbench-"), prefix
r = redis.Redis.from_url(url, socket_timeout=10)
keys = list(r.scan_iter(match=prefix + "*", count=1000))
if op == "delete":
    for i in range(0, len(keys), 500):
        r.delete(*keys[i : i + 500])
print(len(keys))
PY
}

stop_pid() {  # PID: TERM, then KILL after 10 s
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

lib_mark() {  # remember what exists now, for lib_undo
  LIB_MARK=("${#LIB_PIDS[@]}" "${#LIB_DBS[@]}" "${#LIB_PREFIXES[@]}")
}

lib_undo() {  # [P D R]: undo what was made since (default: everything) -- processes stopped
  local p=${1:-0} d=${2:-0} r=${3:-0} i
  for ((i = ${#LIB_PIDS[@]} - 1; i >= p; i--)); do stop_pid "${LIB_PIDS[i]}"; done
  LIB_PIDS=("${LIB_PIDS[@]:0:p}")
  for ((i = d; i < ${#LIB_DBS[@]}; i++)); do
    pg_admin drop "${LIB_DBS[i]}" && say "dropped database ${LIB_DBS[i]}" \
      || say "WARNING: could not drop database ${LIB_DBS[i]}"
  done
  LIB_DBS=("${LIB_DBS[@]:0:d}")
  for ((i = r; i < ${#LIB_PREFIXES[@]}; i++)); do
    say "deleted $(redis_keys delete "${LIB_PREFIXES[i]}" || echo '?') Redis keys under ${LIB_PREFIXES[i]}"
  done
  LIB_PREFIXES=("${LIB_PREFIXES[@]:0:r}")
}

lib_cleanup() {
  trap '' PIPE   # a closed output pipe must not cut the cleanup short
  lib_undo
  [[ -n $DATA ]] && rm -rf "$DATA"
  DATA=""
}

production_env() {  # NAME: a fresh database and Redis prefix; sets PROD_ENV, PROD_DB, PROD_PREFIX
  local id
  id=$(random_id)
  PROD_DB=gwbench_$id
  PROD_PREFIX=gwbench-$id:
  redis_keys count "$PROD_PREFIX" >/dev/null || { say "Redis at $BENCH_REDIS_URL is not reachable"; exit 1; }
  pg_admin create "$PROD_DB" || { say "cannot create database $PROD_DB through $BENCH_PG_URL"; exit 1; }
  LIB_DBS+=("$PROD_DB")
  LIB_PREFIXES+=("$PROD_PREFIX")
  say "$1: database $PROD_DB, Redis $BENCH_REDIS_URL with key prefix $PROD_PREFIX"
  PROD_ENV=("GATEWAYZ_DATABASE_URL=$(pg_admin url "$PROD_DB")" "GATEWAYZ_REDIS_URL=$BENCH_REDIS_URL"
    "GATEWAYZ_REDIS_KEY_PREFIX=$PROD_PREFIX")
}

gateway_env() {  # NAME PORT ENV...: GW_ENV, the environment of one gateway (and its CLI calls);
  # ENV first (it may hold `env` options such as -u NAME). Logging as deployed: INFO, an access
  # line per request (to the gateway's log file in $DATA).
  local name=$1 port=$2
  shift 2
  GW_ENV=("$@" "GATEWAYZ_DATA_DIR=$DATA/$name" "GATEWAYZ_PORT=$port" GATEWAYZ_WORKERS=1
    GATEWAYZ_LOG_LEVEL=info "GATEWAYZ_PROVIDER_VLLM_BASE_URL=http://127.0.0.1:$MOCK_PORT/v1"
    GATEWAYZ_PROVIDER_VLLM_MODELS=mock-gpt)
}

bench_user() {  # the bench user, written by the CLI with GW_ENV (the same database): its key
  env "${GW_ENV[@]}" "$GW" users create --email bench@example.com --role dev --plan enterprise \
    --credits 1000000 --rpm-limit 1000000000 --tokens-per-day 1000000000000 \
    --tokens-per-month 1000000000000 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])'
}

start_gateway() {  # NAME PORT: `gatewayz serve` with GW_ENV, pinned; sets GW_PID
  local name=$1 port=$2
  env "${GW_ENV[@]}" taskset -c "$SUT_CPUS" "$GW" serve >"$DATA/$name.log" 2>&1 &
  GW_PID=$!
  LIB_PIDS+=("$GW_PID")
  for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$port/health" || { cat "$DATA/$name.log" >&2; exit 1; }
  say "$name: gateway pid $GW_PID on :$port"
}

start_mock() {  # mock_upstream.py on MOCK_PORT, pinned to the load core; sets MOCK_PID
  taskset -c "$LOAD_CPUS" "$PY" "$LIB_HERE/mock_upstream.py" --port "$MOCK_PORT" >"$DATA/mock.log" 2>&1 &
  MOCK_PID=$!
  LIB_PIDS+=("$MOCK_PID")
  for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$MOCK_PORT/health" && break; sleep 0.1; done
  curl -sf -o /dev/null "http://127.0.0.1:$MOCK_PORT/health" || { cat "$DATA/mock.log" >&2; exit 1; }
  say "mock upstream pid $MOCK_PID on :$MOCK_PORT"
}
