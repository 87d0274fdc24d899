#!/usr/bin/env bash
# Runs every test of every language. `make test` calls this after `make setup`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "cargo fmt --check"
cargo fmt --all --check

say "cargo clippy (-D warnings)"
cargo clippy --locked --workspace --all-targets -q -- -D warnings
# The Cargo features: HTTP/1 + HTTP/2 only, and HTTP/3 without MASQUE, build and lint clean too.
cargo clippy --locked -p quiver-core --no-default-features --all-targets -q -- -D warnings
cargo clippy --locked -p quiver-core --no-default-features --features http3 --all-targets -q -- -D warnings
cargo clippy --locked -p quiver-core --features tracing --all-targets -q -- -D warnings

say "Rust tests"
# The chaos soak's short version (quiver-core/tests/soak.rs; `make soak` runs a million requests).
export QUIVER_SOAK_SECS=${QUIVER_SOAK_SECS:-60}
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast --failure-output final --status-level fail
else
  cargo test --locked -q
fi
cargo test --locked --doc -q
# The `tracing` feature (off by default): spans and events through a subscriber.
cargo test --locked -q -p quiver-core --features tracing --test tracing

say "C tests (libquiver)"
tests/c/run.sh

say "Python tests (quiver-http)"
scripts/test-python.sh

say "Node tests (quiver-http)"
scripts/test-node.sh

