#!/usr/bin/env bash
# `make bench`: the set-up (bench/setup.sh), the builds the rows need, then the harness
# (bench/harness.py), which starts the servers, runs the matrix and writes bench/results/.
# Knobs are environment variables: QUICK=1, ROUNDS, DURATION, ONLY, CLIENTS, PROTOCOLS,
# MAX_MINUTES, BREAK (see bench/README.md). Arguments are passed to the harness.
# On a shared machine: `nice -n 10 make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

./bench/setup.sh

mkdir -p bench/.work/bin
if [ ! -x bench/.work/bin/curl_multi ] || [ bench/c/curl_multi.c -nt bench/.work/bin/curl_multi ]; then
  say "gcc bench/c/curl_multi.c"
  gcc -O2 -Wall -o bench/.work/bin/curl_multi bench/c/curl_multi.c $(pkg-config --cflags --libs libcurl)
fi
# Future: the C row of quiver (bench/c/quiver_bench.c against include/quiver.h and libquiver)
# is built here into bench/.work/bin/quiver_bench_c once the C ABI can send requests.

say "cargo build --release (bench/rust: quiver and reqwest)"
# No --locked: bench/rust/Cargo.lock gains whatever quiver-core starts to depend on.
(cd bench/rust && cargo build --release -q --target-dir ../../target)

if [ "${TESTSERVER_RELEASE:-}" = 1 ]; then
  say "cargo build --release -p quiver-testserver (TESTSERVER_RELEASE=1)"
  cargo build -q --locked --release -p quiver-testserver
elif [ ! -x target/release/quiver-testserver ] && [ ! -x target/debug/quiver-testserver ]; then
  say "cargo build -p quiver-testserver (the slow server of the pool workload)"
  cargo build -q --locked -p quiver-testserver
fi

exec bench/.work/venv/bin/python bench/harness.py "$@"
