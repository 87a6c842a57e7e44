#!/usr/bin/env bash
# How cost grows (bench/README.md, "Scaling"): CPU ms per request and RPS of the production-shape
# gateway, A against B, for three sizes:
#   keys    1 key                 vs N_KEYS keys (N_KEYS users, a key each; wrk spreads the
#                                    requests over the keys, round robin)
#   models  10 catalog models     vs N_MODELS (synthetic offers over five providers, written as
#                                    a sync writes them; the requests go to mock-gpt on vllm)
#   ledger  an empty ledger       vs LEDGER_ROWS credit_transactions and HOLD_ROWS settled
#                                    credit_holds rows of LEDGER_USERS other users
#   observability  metrics and the access log off  vs on (the default): their cost per request
#                  (not part of the default CASES)
#   ab      AB_KEYS keys (1), A_ENV vs the same, B_ENV (each space-separated NAME=value): any two
#           settings, or two versions of the code (A_ENV=PYTHONPATH=/path/to/old/src), in one run
#           (not part of the default CASES)
#   bash bench/scaling.sh                                  # all three, about 6 min
#   CASES=keys ROUNDS=5 DURATION=20 bash bench/scaling.sh
# Per case both gateways run at once, each with its own database and Redis prefix (lib.sh
# production_env), both pinned to SUT_CPUS, and are measured alternately (A, B, A, B, ...) by
# measure.py ab; then they are stopped and their databases dropped before the next case. The
# table (medians, B/A) is printed at the end and written to OUT_DIR.
# Knobs: CASES (keys,models,ledger), N_KEYS (1000), N_MODELS (10000), LEDGER_ROWS (1000000),
# HOLD_ROWS (1000000), LEDGER_USERS (1000), ROUNDS (3), DURATION (10), WARMUP (5), CONNS (32),
# MODE (chat), PORT_A (18081), PORT_B (18082), OUT_DIR (bench-results), SIDE_ENV (more gateway
# settings for both sides, space-separated NAME=value, e.g. GATEWAYZ_BILLING_LEASES=false), and
# lib.sh's.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
source "$HERE/lib.sh"
CASES=${CASES:-keys,models,ledger}
N_KEYS=${N_KEYS:-1000}
N_MODELS=${N_MODELS:-10000}
LEDGER_ROWS=${LEDGER_ROWS:-1000000}
HOLD_ROWS=${HOLD_ROWS:-1000000}
LEDGER_USERS=${LEDGER_USERS:-1000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-5}
CONNS=${CONNS:-32}
MODE=${MODE:-chat}
PORT_A=${PORT_A:-18081}
PORT_B=${PORT_B:-18082}
OUT_DIR=${OUT_DIR:-$ROOT/bench-results}
read -r -a SIDE_ENV <<<"${SIDE_ENV:-}"
# The catalog case serves the synthetic offers' providers (catalog_bench.py PROVIDERS); their
# endpoint is a closed port: nothing is sent to them, and a sync of them would fail (keeping the
# offers written) rather than replace them.
CATALOG_ENV=()
for p in OPENROUTER TOGETHER DEEPINFRA FIREWORKS GROQ; do
  CATALOG_ENV+=("GATEWAYZ_PROVIDER_${p}_BASE_URL=http://127.0.0.1:9/v1" "GATEWAYZ_PROVIDER_${p}_API_KEY=bench-unused")
done
command -v wrk >/dev/null || { echo "wrk is missing (apt-get install wrk)" >&2; exit 1; }
for c in ${CASES//,/ }; do
  [[ $c == keys || $c == models || $c == ledger || $c == observability || $c == ab ]] || { echo "unknown case '$c' (CASES=keys,models,ledger,observability,ab)" >&2; exit 1; }
done
mkdir -p "$OUT_DIR"
lib_init scaling
RESULTS=$OUT_DIR/scaling-$(date +%Y%m%d-%H%M%S).json
start_mock

seed() {  # seed.py with the gateway's environment (GW_ENV)
  env "${GW_ENV[@]}" "$PY" "$HERE/seed.py" "$@"
}

side() {  # NAME PORT USERS WHAT [ENV...]: a gateway of one side; sets SPEC (for measure.py ab)
  local name=$1 port=$2 n=$3 what=$4
  shift 4
  production_env "$name"
  gateway_env "$name" "$port" "${PROD_ENV[@]}" "${SIDE_ENV[@]}" "$@"
  seed users "$n" --keys-file "$DATA/$name.keys"
  case $what in
    models:*) seed catalog "${what#models:}" ;;
    ledger) seed ledger --users "$LEDGER_USERS" --transactions "$LEDGER_ROWS" --holds "$HOLD_ROWS" ;;
  esac
  seed analyze   # planner statistics on every side (a fresh database has none)
  start_gateway "$name" "$port"
  SPEC="$name=http://127.0.0.1:$port,$DATA/$name.keys,$GW_PID,$PROD_DB"
}

models_known() {  # PORT KEYS_FILE: how many models GET /v1/models lists
  curl -sf -H "Authorization: Bearer $(head -1 "$2")" "http://127.0.0.1:$1/v1/models" \
    | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]))'
}

for c in ${CASES//,/ }; do
  lib_mark
  case $c in
    keys)
      side keys-1 "$PORT_A" 1 -; A=$SPEC
      side "keys-$N_KEYS" "$PORT_B" "$N_KEYS" -; B=$SPEC ;;
    models)
      side models-10 "$PORT_A" 1 models:10 "${CATALOG_ENV[@]}"; A=$SPEC
      side "models-$N_MODELS" "$PORT_B" 1 "models:$N_MODELS" "${CATALOG_ENV[@]}"; B=$SPEC
      say "models listed by GET /v1/models: A $(models_known "$PORT_A" "$DATA/models-10.keys"), B $(models_known "$PORT_B" "$DATA/models-$N_MODELS.keys")" ;;
    ledger)
      side ledger-empty "$PORT_A" 1 -; A=$SPEC
      side "ledger-$LEDGER_ROWS" "$PORT_B" 1 ledger; B=$SPEC ;;
    ab)
      read -r -a a_env <<<"${A_ENV:-}"; read -r -a b_env <<<"${B_ENV:-}"
      side a "$PORT_A" "${AB_KEYS:-1}" - "${a_env[@]}"; A=$SPEC
      side b "$PORT_B" "${AB_KEYS:-1}" - "${b_env[@]}"; B=$SPEC ;;
    observability)
      side observability-off "$PORT_A" 1 - GATEWAYZ_METRICS=false GATEWAYZ_ACCESS_LOG=false; A=$SPEC
      side observability-on "$PORT_B" 1 -; B=$SPEC ;;
  esac
  "$PY" "$HERE/measure.py" --load-cpus "$LOAD_CPUS" ab --case "$c" --a "$A" --b "$B" \
    --mode "$MODE" --conns "$CONNS" --rounds "$ROUNDS" --duration "$DURATION" --warmup "$WARMUP" \
    --json-out "$RESULTS"
  if [[ $c == models ]]; then
    say "models listed after the runs: A $(models_known "$PORT_A" "$DATA/models-10.keys"), B $(models_known "$PORT_B" "$DATA/models-$N_MODELS.keys")"
  fi
  lib_undo "${LIB_MARK[@]}"
done

echo
"$PY" "$HERE/measure.py" table "$RESULTS" | tee "${RESULTS%.json}.md"
say "results: ${RESULTS%.json}.md (+ .json)"
