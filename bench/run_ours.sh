#!/usr/bin/env bash
# Gatewayz vs direct vs the LiteLLM proxy, in one run (see bench/README.md).
#   bash bench/run_ours.sh                    # full run: chat + chat_stream at 1, 32, 128 connections
#   SKIP_LITELLM=1 DURATION=5 ROUNDS=1 bash bench/run_ours.sh   # quick: direct vs ours
# Any run_peer.sh knob (MODES, CONNS, ROUNDS, DURATION, MOCK_LATENCY_MS, ...) passes through.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
GW=$ROOT/.venv/bin/gatewayz
[[ -x $GW ]] || { echo "run 'make install' first" >&2; exit 1; }
OUR_PORT=${OUR_PORT:-18080}
MOCK_PORT=${MOCK_PORT:-18000}
DATA=$(mktemp -d "${TMPDIR:-/tmp}/gwbench-data.XXXXXX")
export GATEWAYZ_DATA_DIR=$DATA GATEWAYZ_PORT=$OUR_PORT GATEWAYZ_WORKERS=1 GATEWAYZ_LOG_LEVEL=warning \
  GATEWAYZ_PROVIDER_VLLM_BASE_URL=http://127.0.0.1:$MOCK_PORT/v1 GATEWAYZ_PROVIDER_VLLM_MODELS=mock-gpt
KEY=$("$GW" users create --email bench@example.com --role dev --plan enterprise \
  --credits 1000000 --rpm-limit 1000000000 --tokens-per-day 1000000000000 --tokens-per-month 1000000000000 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])')
"$GW" serve >"$DATA/gateway.log" 2>&1 &
GW_PID=$!
trap 'kill $GW_PID 2>/dev/null || true; wait $GW_PID 2>/dev/null || true; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$OUR_PORT/health" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$OUR_PORT/health" || { cat "$DATA/gateway.log"; exit 1; }
OUT_DIR=${OUT_DIR:-$ROOT/bench-results} OUR_PIDS=$GW_PID MOCK_PORT=$MOCK_PORT \
  bash "$HERE/run_peer.sh" "http://127.0.0.1:$OUR_PORT" "$KEY"
