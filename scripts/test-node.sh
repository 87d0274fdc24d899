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

./scripts/setup-node.sh

# The build regenerates these checked-in files; like include/quiver.h, a stale copy fails.
generated=(bindings/node/index.d.ts bindings/node/binding.js)
if git ls-files --error-unmatch "${generated[@]}" >/dev/null 2>&1 \
  && ! git diff --quiet -- "${generated[@]}"; then
  git --no-pager diff --stat -- "${generated[@]}"
  echo "test-node: the generated ${generated[*]} changed; commit them" >&2
  exit 1
fi

say "node --test bindings/node/__test__"
cd bindings/node
# One file at a time: the backpressure test measures this process's memory, the concurrency
# test its throughput. The tests start the test server themselves (it exits with its stdin).
exec node --test --test-concurrency=1 --test-timeout=300000 --test-reporter=spec "$@" __test__/ </dev/null
