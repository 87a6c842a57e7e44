#!/usr/bin/env bash
# Soak: the production-shape gateway under wrk for SOAK_S seconds (bench/README.md, "Soak").
#   bash bench/soak.sh                      # 600 s, chat_stream, 32 connections
#   SOAK_S=120 bash bench/soak.sh           # shorter
# The gateway runs as in run_ours.sh's production shape (a fresh PostgreSQL database, a fresh
# Redis key prefix, the bench user, one worker pinned to SUT_CPUS); the mock upstream and wrk
# run on LOAD_CPUS. Every SAMPLE_S seconds the gateway tree's RSS (VmRSS summed over the tree),
# CPU, threads and open fds go to a CSV in OUT_DIR; at the end, the summary (RSS after the
# warm-up and at the end, min / max, change in %, RPS per minute). On exit everything is undone:
# processes stopped by PID, the database dropped, the Redis keys deleted.
# When the PostgreSQL server runs without autovacuum (SHOW autovacuum: off), the database is
# VACUUM ANALYZEd every VACUUM_S (60) seconds meanwhile, as autovacuum would keep it: without
# that the ledger's tables grow with the statistics (and the cached plans) of an empty table.
# Knobs: SOAK_S (600), CONNS (32), MODE (chat_stream), SAMPLE_S (10), WARMUP_S (60), VACUUM_S
# (60 without autovacuum, else 0; 0: never), OUT_DIR (bench-results), OUR_PG_PORT (18081), and lib.sh's (MOCK_PORT, SUT_CPUS, LOAD_CPUS,
# BENCH_PG_URL, BENCH_REDIS_URL).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
SOAK_S=${SOAK_S:-600}
CONNS=${CONNS:-32}
MODE=${MODE:-chat_stream}
SAMPLE_S=${SAMPLE_S:-10}
WARMUP_S=${WARMUP_S:-60}
OUR_PG_PORT=${OUR_PG_PORT:-18081}
OUT_DIR=${OUT_DIR:-$ROOT/bench-results}
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
mkdir -p "$OUT_DIR"
lib_init soak

start_mock
production_env ours-pg
gateway_env ours-pg "$OUR_PG_PORT" "${PROD_ENV[@]}"
bench_user >"$DATA/keys.txt"
start_gateway ours-pg "$OUR_PG_PORT"
if [[ -z ${VACUUM_S:-} ]]; then
  VACUUM_S=0
  if [[ $(psql_show autovacuum) == off ]]; then
    VACUUM_S=60
    say "the PostgreSQL server runs without autovacuum: VACUUM ANALYZE of $PROD_DB every $VACUUM_S s"
  fi
fi

CSV=$OUT_DIR/soak-$(date +%Y%m%d-%H%M%S).csv
"$PY" "$HERE/measure.py" --load-cpus "$LOAD_CPUS" soak \
  --target "ours-pg=http://127.0.0.1:$OUR_PG_PORT,$DATA/keys.txt,$GW_PID" --mode "$MODE" \
  --conns "$CONNS" --duration "$SOAK_S" --sample-s "$SAMPLE_S" --warmup-s "$WARMUP_S" --csv "$CSV" \
  --db "$PROD_DB" --vacuum-s "$VACUUM_S" \
  | tee "${CSV%.csv}.md"
say "Redis: $(redis_keys count "$PROD_PREFIX") keys under $PROD_PREFIX; samples in $CSV"
