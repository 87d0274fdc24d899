#!/usr/bin/env bash
# The C ABI tests: builds libquiver and the test server, fails if include/quiver.h is stale,
# installs the (debug) library into a scratch prefix with `make install`, starts the loopback
# test server, compiles the C programs (gcc -std=c11 -Wall -Wextra -Werror) against the
# installed libquiver.so (via pkg-config) and libquiver.a, runs them, and runs test_api again
# under valgrind.
# Exits non-zero on any failure. QUIVER_C_TESTS_NO_VALGRIND=1 skips the valgrind run.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CC="${CC:-gcc}"
CFLAGS=(-std=c11 -Wall -Wextra -Werror -g -O1 -pthread)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\033[1;31mFAILED: %s\033[0m\n' "$*" >&2; exit 1; }

WORK="$(mktemp -d)"
cleanup() {
    exec 3>&- # closing the server's stdin stops it
    sleep 0.2
    rm -rf "$WORK"
}
trap cleanup EXIT

# Two builds, not one `-p quiver-ffi -p quiver-testserver`: together they would unify
# dependency features, and `make install` (which builds quiver-ffi alone) would build it again.
say "cargo build -p quiver-ffi; cargo build -p quiver-testserver"
cargo build --locked -p quiver-ffi --message-format=json-render-diagnostics > "$WORK/build.json"
cargo build --locked -p quiver-testserver

say "include/quiver.h is current"
OUT_DIR="$(grep '"reason":"build-script-executed"' "$WORK/build.json" | grep 'quiver-ffi#' |
    sed -E 's/.*"out_dir":"([^"]*)".*/\1/' | tail -n 1)"
[ -f "$OUT_DIR/quiver.h" ] || fail "cannot find the generated header (out_dir: '$OUT_DIR')"
if ! diff -u "$ROOT/include/quiver.h" "$OUT_DIR/quiver.h" > "$WORK/header.diff"; then
    head -n 40 "$WORK/header.diff" >&2
    fail "include/quiver.h is stale: run 'make header' and commit it"
fi
echo '#include "quiver.h"' | g++ -x c++ -std=c++11 -Wall -Wextra -Werror -fsyntax-only \
    -I "$ROOT/include" - || fail "quiver.h does not compile as C++"

say "make install (debug build) into a scratch prefix"
make -s install PREFIX="$WORK/prefix" PROFILE=dev CARGO_TARGET_DIR="$TARGET" > /dev/null
LIB="$WORK/prefix/lib"
[ "$(readlink "$LIB/libquiver.so")" = libquiver.so.0 ] || fail "libquiver.so -> libquiver.so.0"
[ -f "$LIB/libquiver.a" ] && [ -f "$WORK/prefix/include/quiver.h" ] || fail "installed files"
readelf -d "$LIB/libquiver.so.0" | grep -q 'SONAME.*\[libquiver\.so\.0\]' ||
    fail "libquiver.so has no SONAME libquiver.so.0"
export PKG_CONFIG_PATH="$LIB/pkgconfig"
[ "$(pkg-config --modversion quiver)" = "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ] ||
    fail "quiver.pc version"
read -r -a PC_CFLAGS <<< "$(pkg-config --cflags quiver)"
read -r -a PC_LIBS <<< "$(pkg-config --libs quiver)"

say "compile the C tests"
for t in test_api demo; do # against libquiver.so, found through pkg-config
    "$CC" "${CFLAGS[@]}" "${PC_CFLAGS[@]}" "tests/c/$t.c" -o "$WORK/$t" "${PC_LIBS[@]}" \
        -Wl,-rpath,"$LIB"
done
"$CC" "${CFLAGS[@]}" "${PC_CFLAGS[@]}" tests/c/test_static.c -o "$WORK/test_static" \
    "$LIB/libquiver.a" -lpthread -ldl -lm
if ldd "$WORK/test_static" | grep -q libquiver; then fail "test_static links libquiver.so"; fi
ldd "$WORK/test_api" | grep -q "libquiver.so.0 => $LIB/libquiver.so.0" ||
    fail "test_api does not load the installed libquiver.so.0"

say "start the test server"
exec 3> >("$TARGET/debug/quiver-testserver" --dir "$WORK/server" > "$WORK/server.json")
for _ in $(seq 200); do [ -s "$WORK/server.json" ] && break; sleep 0.05; done
[ -s "$WORK/server.json" ] || fail "the test server did not start"
json_port() { sed -nE "s/.*\"$1\": *([0-9]+).*/\1/p" "$WORK/server.json"; }
json_str() { sed -nE "s/.*\"$1\": *\"([^\"]*)\".*/\1/p" "$WORK/server.json"; }
export QUIVER_TEST_HTTP="http://127.0.0.1:$(json_port http)"
export QUIVER_TEST_HTTPS="https://localhost:$(json_port https)"
export QUIVER_TEST_CA_FILE="$(json_str ca_file)"
export QUIVER_TEST_WRONG_CA_FILE="$(json_str wrong_ca_file)"
if [ -n "$(json_port h2c)" ]; then export QUIVER_TEST_H2C="http://127.0.0.1:$(json_port h2c)"; fi
echo "server: $(cat "$WORK/server.json")"

say "test_static (libquiver.a)"
"$WORK/test_static"

say "test_api (libquiver.so)"
"$WORK/test_api"

say "demo"
"$WORK/demo" "$QUIVER_TEST_HTTPS/bytes/42" "$QUIVER_TEST_CA_FILE" | tee "$WORK/demo.out"
grep -q '^HTTP/2 200$' "$WORK/demo.out" && grep -q '(42 body bytes)' "$WORK/demo.out" ||
    fail "demo output"

if [ "${QUIVER_C_TESTS_NO_VALGRIND:-0}" != 1 ]; then
    say "test_api under valgrind"
    QUIVER_TEST_SLOW=10 QUIVER_TEST_VALGRIND=1 valgrind -q --error-exitcode=1 \
        --errors-for-leak-kinds=definite --leak-check=full --show-leak-kinds=definite \
        --suppressions=tests/c/valgrind.supp "$WORK/test_api"
fi

say "C tests passed"
