#!/usr/bin/env bash
# Starts the loopback test server, fetches through quiver, prints what came back, stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -q -p quiver-testserver -p quiver-core --example demo
TARGET="${CARGO_TARGET_DIR:-target}"
WORK="$(mktemp -d)"
# The server exits when its stdin closes: keep a pipe open and close it at the end.
exec 3> >("$TARGET/debug/quiver-testserver" --dir "$WORK" > "$WORK/server.json")
trap 'exec 3>&-; sleep 0.2; rm -rf "$WORK"' EXIT
for _ in $(seq 100); do [ -s "$WORK/server.json" ] && break; sleep 0.05; done
[ -s "$WORK/server.json" ] || { echo "test server did not start" >&2; exit 1; }

echo "test server: $(cat "$WORK/server.json")"
echo
echo "--- Rust (quiver-core) ---"
"$TARGET/debug/examples/demo" "$(cat "$WORK/server.json")"
