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
JSON="$(cat "$WORK/server.json")"
port() { sed -E "s/.*\"$1\":([0-9]+).*/\1/" <<< "$JSON"; }
CA="$WORK/ca.crt"

echo "--- Rust (quiver-core) ---"
"$TARGET/debug/examples/demo" "$JSON"

echo
echo "--- C (libquiver.so, include/quiver.h) ---"
make -s install PREFIX="$WORK/prefix" PROFILE=dev > /dev/null 2>&1
PKG_CONFIG_PATH="$WORK/prefix/lib/pkgconfig"
read -r -a PC <<< "$(PKG_CONFIG_PATH="$PKG_CONFIG_PATH" pkg-config --cflags --libs quiver)"
gcc -std=c11 -Wall -Wextra -Werror tests/c/demo.c -o "$WORK/demo_c" "${PC[@]}" -Wl,-rpath,"$WORK/prefix/lib"
"$WORK/demo_c" "https://localhost:$(port https)/bytes/64" "$CA"

echo
echo "--- Python (quiver-http, from .venv) ---"
.venv/bin/python scripts/demo/demo.py "$JSON"

echo
echo "--- Node (quiver-http) ---"
node scripts/demo/demo.mjs "$JSON"

