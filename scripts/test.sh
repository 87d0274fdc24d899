#!/usr/bin/env bash
# Runs every test of every language. `make test` calls this after `make setup`.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

say "cargo fmt --check"
cargo fmt --all --check

say "cargo clippy (-D warnings)"
cargo clippy --locked --workspace --all-targets -q -- -D warnings

say "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast --failure-output final --status-level fail
else
  cargo test --locked --workspace -q
fi
cargo test --locked --workspace --doc -q
