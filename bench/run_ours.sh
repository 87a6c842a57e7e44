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
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"   # ROOT, GW, PY, MOCK_PORT, SUT_CPUS, BENCH_PG_URL, BENCH_REDIS_URL, ...
SHAPES=${SHAPES:-default,production}
OUR_PORT=${OUR_PORT:-18080}
OUR_PG_PORT=${OUR_PG_PORT:-18081}
for s in ${SHAPES//,/ }; do
  [[ $s == default || $s == production ]] || { echo "[run_ours] unknown shape '$s' (SHAPES=default,production)" >&2; exit 1; }
done
lib_init run_ours   # on exit: gateways stopped, the database dropped, the Redis keys deleted

OUR_TARGETS=""
launch() {  # target name, port, then the shape's environment (NAME=value ...)
  local name=$1 port=$2 key
  shift 2
  gateway_env "$name" "$port" "$@"
  key=$(bench_user)   # the bench user, written by the CLI with the same environment
  start_gateway "$name" "$port"
  OUR_TARGETS+="$name=http://127.0.0.1:$port,$key,$GW_PID "
}

if [[ ,$SHAPES, == *,default,* ]]; then
  # Default shape: whatever database or Redis the caller's environment names is not used.
  launch ours "$OUR_PORT" -u GATEWAYZ_DATABASE_URL -u GATEWAYZ_REDIS_URL -u GATEWAYZ_REDIS_KEY_PREFIX
fi
if [[ ,$SHAPES, == *,production,* ]]; then
  production_env ours-pg
  launch ours-pg "$OUR_PG_PORT" "${PROD_ENV[@]}"
fi
[[ -n $OUR_TARGETS ]] || { say "no shape to run (SHAPES=$SHAPES)"; exit 1; }

OUT_DIR=${OUT_DIR:-$ROOT/bench-results} OUR_TARGETS=$OUR_TARGETS MOCK_PORT=$MOCK_PORT SUT_CPUS=$SUT_CPUS \
  bash "$HERE/run_peer.sh"
if [[ ,$SHAPES, == *,production,* ]]; then
  say "production shape used Redis: $(redis_keys count "$PROD_PREFIX") keys under $PROD_PREFIX"
fi
