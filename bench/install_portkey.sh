#!/usr/bin/env bash
# Install the Portkey AI gateway (the second peer we benchmark against) from npm into a
# throwaway folder; run_peer.sh starts it from there with node.
# Usage: bash install_portkey.sh [DIR] [VERSION]    (default ${TMPDIR:-/tmp}/portkey-gw 1.15.2)
#
# @hono/node-server is pinned (npm "overrides") to 1.14.1: the package asks for ^1.3.3, and from
# 1.14.2 on node-server's Response keeps a fetch() response's immutable headers, so Portkey's
# streaming path fails ("TypeError: immutable" in updateHeaders, every stream answered 500
# "Something went wrong"; Portkey-AI/gateway issue #1389). Non-streaming works either way.
set -euo pipefail
DIR=${1:-${TMPDIR:-/tmp}/portkey-gw}
VER=${2:-1.15.2}
HONO_NODE_SERVER=${PORTKEY_HONO_NODE_SERVER:-1.14.1}
STAMP="$VER node-server $HONO_NODE_SERVER"
if [[ "$(cat "$DIR/.bench-portkey-ok" 2>/dev/null)" == "$STAMP" ]] \
  && [[ -f $DIR/node_modules/@portkey-ai/gateway/build/start-server.js ]]; then
  echo "portkey $VER already in $DIR"; exit 0
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "installing nodejs + npm (Debian)"; apt-get install -y -qq nodejs npm >/dev/null
fi
mkdir -p "$DIR"
rm -rf "$DIR/node_modules" "$DIR/package-lock.json" "$DIR/.bench-portkey-ok"
cat >"$DIR/package.json" <<EOF
{
  "private": true,
  "dependencies": { "@portkey-ai/gateway": "$VER" },
  "overrides": { "@hono/node-server": "$HONO_NODE_SERVER" }
}
EOF
# --ignore-scripts: the package's only install script is patch-package, with no patches shipped.
(cd "$DIR" && npm install --no-audit --no-fund --omit=dev --ignore-scripts --loglevel=error)
test -f "$DIR/node_modules/@portkey-ai/gateway/build/start-server.js"
echo "$STAMP" >"$DIR/.bench-portkey-ok"
echo "installed @portkey-ai/gateway@$VER (@hono/node-server $HONO_NODE_SERVER) in $DIR with node $(node --version)"
