#!/usr/bin/env bash
# Runs the Node package's tests (bindings/node/__test__, node:test) against the package as
# scripts/setup-node.sh builds it. Builds the loopback test server first and runs
# scripts/setup-node.sh (a no-op when nothing changed). Extra arguments go to `node --test`,
# e.g. `scripts/test-node.sh --test-name-pattern=abort`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
export QUIVER_TESTSERVER=${QUIVER_TESTSERVER:-$CARGO_TARGET_DIR/debug/quiver-testserver}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "cargo build -p quiver-testserver"
cargo build --locked -q -p quiver-testserver

# The build regenerates these checked-in files; like include/quiver.h, a stale copy fails: one
# the build rewrote differs from what its sources (src/, header.d.ts) generate. (Compared with
# the files as they were before the build, not with git, so that uncommitted work that keeps
# them current passes; in a clean checkout that is the committed copy.)
generated=(bindings/node/index.d.ts bindings/node/binding.js)
generated_before=$(cat "${generated[@]}" 2>/dev/null | sha256sum)

./scripts/setup-node.sh

if [ "$(cat "${generated[@]}" 2>/dev/null | sha256sum)" != "$generated_before" ]; then
  git --no-pager diff --stat -- "${generated[@]}" || true
  echo "test-node: the build regenerated ${generated[*]}: the copies were stale (now updated; commit them)" >&2
  exit 1
fi

say "node --test bindings/node/__test__"
cd bindings/node
# One file at a time: the backpressure test measures this process's memory, the concurrency
# test its throughput. The tests start the test server themselves (it exits with its stdin).
exec node --test --test-concurrency=1 --test-timeout=300000 --test-reporter=spec "$@" __test__/ </dev/null
