#!/usr/bin/env bash
# Runs the Python package's tests (bindings/python/tests) with the project's virtual environment.
# Builds the loopback test server first and runs scripts/setup-python.sh (a no-op when nothing
# changed). Extra arguments go to pytest, e.g. `scripts/test-python.sh -k fork -x`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${QUIVER_VENV:-$ROOT/.venv}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "cargo build -p quiver-testserver"
cargo build --locked -q -p quiver-testserver

./scripts/setup-python.sh

say "pytest bindings/python/tests"
# The tests start target/debug/quiver-testserver themselves (stdin closed: it exits).
exec "$VENV/bin/python" -m pytest bindings/python/tests -p no:cacheprovider "$@" </dev/null
