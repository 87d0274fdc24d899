#!/usr/bin/env bash
# `make bench`: the set-up (bench/setup.sh), the builds the rows need, then the harness
# (bench/harness.py), which starts the servers, runs the matrix and writes bench/results/.
# Knobs are environment variables: QUICK=1, ROUNDS, DURATION, ONLY, CLIENTS, PROTOCOLS,
# MAX_MINUTES, BREAK (see bench/README.md), TESTSERVER_RELEASE=0 (keep the test server that is
# there instead of building the release one). Arguments are passed to the harness.
# On a shared machine: `nice -n 10 make bench`.
#
# Every quiver row is built in release (the workspace's [profile.release]: LTO, one codegen
# unit), into the shared target/ folder:
#   quiver (Rust)            bench/rust                    target/release/quiver-bench-rust
#   quiver-c                 libquiver (make install)      bench/.work/bin/quiver_bench_c
#   quiver-py, -async, -uvloop  a wheel of bindings/python installed into bench/.work/venv
#   quiver-node              cargo build -p quiver-node    bench/node/node_modules/quiver-http
# The binding builds are skipped when their inputs did not change (a hash of them, as
# scripts/setup-python.sh does). A build that fails does not stop the run: its rows are
# reported as not built, with the reason (bench/.work/build-failed/<row>).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/bench/.work
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[1;31m!!! %s\033[0m\n' "$*" >&2; }

./bench/setup.sh

# Whether any of these rows is asked for (CLIENTS unset: every row).
wanted() {
  [ -z "${CLIENTS:-}" ] && return 0
  local n
  for n in "$@"; do
    case ",$CLIENTS," in *",$n,"*) return 0 ;; esac
  done
  return 1
}

# build NAME ROW... -- COMMAND...: runs a build step, timed; on failure the rows are marked
# (bench/.work/build-failed/ROW holds the end of the log) and the run goes on without them.
mkdir -p "$WORK/bin" "$WORK/build-failed" "$WORK/logs"
build() {
  local name=$1 rows=() log t0 rc=0
  shift
  while [ "$1" != -- ]; do rows+=("$1"); shift; done
  shift
  log=$WORK/logs/build-$name.log
  t0=$(date +%s)
  # In the background and waited for: `set -e` then holds inside it (it would not in `a || b`).
  ( "$@" ) >"$log" 2>&1 &
  wait $! || rc=$?
  if [ $rc = 0 ]; then
    for r in "${rows[@]}"; do rm -f "$WORK/build-failed/$r"; done
    say "$name: done in $(( $(date +%s) - t0 )) s"
  else
    warn "$name failed (exit $rc) after $(( $(date +%s) - t0 )) s; rows ${rows[*]} left out. Log: ${log#"$ROOT"/}"
    tail -n 15 "$log" >&2
    for r in "${rows[@]}"; do
      { echo "$name failed (exit $rc), see ${log#"$ROOT"/}:"; grep -m1 -E '^error' "$log" || tail -n 1 "$log"; } \
        >"$WORK/build-failed/$r"
    done
  fi
  return 0
}

if [ ! -x "$WORK/bin/curl_multi" ] || [ bench/c/curl_multi.c -nt "$WORK/bin/curl_multi" ] \
  || [ bench/c/bench_common.h -nt "$WORK/bin/curl_multi" ]; then
  say "gcc bench/c/curl_multi.c"
  gcc -O2 -Wall -o "$WORK/bin/curl_multi" bench/c/curl_multi.c $(pkg-config --cflags --libs libcurl)
fi

if wanted quiver quiver-masque reqwest; then
  say "cargo build --release (bench/rust: quiver and reqwest)"
  # No --locked: bench/rust/Cargo.lock gains whatever quiver-core starts to depend on.
  build bench-rust quiver quiver-masque reqwest -- \
    bash -c 'cd bench/rust && cargo build --release --target-dir "$CARGO_TARGET_DIR"'
fi

# The test server serves the HTTP/3 cells (and the pool workload): its debug build is the
# bottleneck there, so the release one is built unless TESTSERVER_RELEASE=0.
if [ "${TESTSERVER_RELEASE:-1}" = 1 ]; then
  say "cargo build --release -p quiver-testserver (TESTSERVER_RELEASE=0 skips it)"
  build testserver -- cargo build --locked --release -p quiver-testserver
elif [ ! -x target/release/quiver-testserver ] && [ ! -x target/debug/quiver-testserver ]; then
  say "cargo build -p quiver-testserver (the slow server of the pool workload)"
  cargo build -q --locked -p quiver-testserver
fi

# quiver-c: libquiver in release, installed into bench/.work/prefix, linked statically.
if wanted quiver-c; then
  say "make install PROFILE=release (libquiver) + gcc bench/c/quiver_bench.c"
  build quiver-c quiver-c -- bash -c '
    set -e
    make --no-print-directory install PREFIX="$1" PROFILE=release
    gcc -O2 -Wall -Wextra -std=c11 -pthread -I "$1/include" -o "$2.tmp" bench/c/quiver_bench.c \
      "$1/lib/libquiver.a" -lpthread -ldl -lm
    mv "$2.tmp" "$2"' _ "$WORK/prefix" "$WORK/bin/quiver_bench_c"
fi

# quiver-py, quiver-py-async, quiver-py-uvloop: a release wheel of bindings/python (maturin),
# installed into the bench venv, rebuilt when what it is built from changes.
VENV=$WORK/venv
py_inputs() {
  rustc -V
  find bindings/python/src quiver-core/src -type f -name '*.rs' -print0 | sort -z | xargs -0 sha256sum
  find bindings/python/python -type f \( -name '*.py' -o -name '*.pyi' -o -name py.typed \) -print0 \
    | sort -z | xargs -0 sha256sum
  sha256sum Cargo.toml Cargo.lock bindings/python/Cargo.toml bindings/python/pyproject.toml \
    quiver-core/Cargo.toml
  if [ -f quiver-core/build.rs ]; then sha256sum quiver-core/build.rs; fi
}
build_wheel() {
  local maturin=$ROOT/.venv/bin/maturin
  if [ ! -x "$maturin" ]; then
    # Not set up by scripts/setup-python.sh: the pinned maturin, into the bench venv.
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
      "$(grep -E '^maturin==' bindings/python/requirements-dev.txt)"
    maturin=$VENV/bin/maturin
  fi
  rm -rf "$WORK/wheels"
  "$maturin" build --release --locked -m bindings/python/Cargo.toml -i "$VENV/bin/python" \
    -o "$WORK/wheels"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall \
    "$WORK"/wheels/quiver_http-*.whl
  # The installed package, not the editable debug build of bindings/python/python.
  (cd "$WORK" && env -u PYTHONPATH "$VENV/bin/python" -c \
    'import quiver; assert "site-packages" in quiver.__file__, quiver.__file__')
}
if wanted quiver-py quiver-py-async quiver-py-uvloop httpx+quiver httpx+quiver-sync requests+quiver; then
  want=$(py_inputs | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$VENV/.quiver-wheel.sha256" 2>/dev/null)" = "$want" ] \
    && (cd "$WORK" && "$VENV/bin/python" -c 'import quiver' >/dev/null 2>&1); then
    say "quiver-http (release wheel) is up to date in bench/.work/venv"
  else
    say "maturin build --release (bindings/python) + pip install into bench/.work/venv"
    rm -f "$VENV/.quiver-wheel.sha256"
    build python-wheel quiver-py quiver-py-async quiver-py-uvloop httpx+quiver httpx+quiver-sync \
      requests+quiver -- build_wheel
    if [ ! -e "$WORK/build-failed/quiver-py" ]; then echo "$want" >"$VENV/.quiver-wheel.sha256"; fi
  fi
fi

# quiver-node: the release build of bindings/node's native module, with the package's
# JavaScript, copied into bench/node/node_modules/quiver-http (a copy: bindings/node's own
# quiver.<platform>.node is the debug build its tests use).
NODE_PKG=bench/node/node_modules/quiver-http
node_inputs() {
  rustc -V
  find bindings/node/src quiver-core/src -type f -name '*.rs' -print0 | sort -z | xargs -0 sha256sum
  sha256sum Cargo.toml Cargo.lock quiver-core/Cargo.toml bindings/node/Cargo.toml \
    bindings/node/build.rs bindings/node/package.json bindings/node/*.js bindings/node/*.mjs \
    bindings/node/index.d.ts
  if [ -f quiver-core/build.rs ]; then sha256sum quiver-core/build.rs; fi
}
build_node() {
  cargo build --locked --release -p quiver-node
  local platform tmp=bench/node/node_modules/.quiver-http.tmp
  platform=$(node -p 'process.platform + "-" + process.arch')-gnu
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # The package's JavaScript: every top-level .js/.mjs file (index, binding, the adapters).
  cp bindings/node/package.json bindings/node/*.js bindings/node/*.mjs bindings/node/index.d.ts "$tmp/"
  cp "$CARGO_TARGET_DIR/release/libquiver_node.so" "$tmp/quiver.$platform.node"
  rm -rf "$NODE_PKG"
  mv "$tmp" "$NODE_PKG"
  (cd bench/node && node --input-type=module -e "await import('quiver-http')")
}
if wanted quiver-node fetch+quiver && command -v node >/dev/null 2>&1 \
  && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  want=$(node_inputs | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$NODE_PKG/.bench-build.sha256" 2>/dev/null)" = "$want" ]; then
    say "quiver-http (release) is up to date in bench/node/node_modules"
  else
    say "cargo build --release -p quiver-node + copy into bench/node/node_modules/quiver-http"
    build node quiver-node fetch+quiver -- build_node
    if [ ! -e "$WORK/build-failed/quiver-node" ]; then echo "$want" >"$NODE_PKG/.bench-build.sha256"; fi
  fi
fi

exec "$VENV/bin/python" bench/harness.py "$@"
