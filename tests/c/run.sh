#!/usr/bin/env bash
# The C ABI tests: builds libquiver and the test server, fails if include/quiver.h is stale,
# installs the (debug) library into a scratch prefix with `make install`, starts the loopback
# test servers (three more: one without HTTP/3 datagrams, one refusing every 5th HTTP/2 stream,
# one sending GOAWAY after each HTTP/2 stream), compiles the C tests (gcc -std=c11 -Wall
# -Wextra -Werror), the C++ test (g++ -std=c++17 ... -pedantic) and the examples (`make
# c-examples`) against the installed libquiver.so (via pkg-config) and libquiver.a, runs them,
# and runs the tests again under valgrind (leak check; any error fails).
# Exits non-zero on any failure. QUIVER_C_TESTS_NO_VALGRIND=1 skips the valgrind runs;
# QUIVER_C_TESTS="test_a test_b" runs only those tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT="$PWD"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CC="${CC:-gcc}"
CXX="${CXX:-g++}"
CFLAGS=(-std=c11 -Wall -Wextra -Werror -g -O1 -pthread)
CXXFLAGS=(-std=c++17 -Wall -Wextra -Werror -pedantic -g -O1 -pthread)

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf '\033[1;31mFAILED: %s\033[0m\n' "$*" >&2; exit 1; }

WORK="$(mktemp -d)"
cleanup() {
    exec 3>&- 4>&- 5>&- 6>&- # closing the servers' stdin stops them
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
# (Outputs are captured before grep -q: with pipefail, grep exiting early fails the pipe.)
DYNAMIC="$(readelf -d "$LIB/libquiver.so.0")"
grep -q 'SONAME.*\[libquiver\.so\.0\]' <<< "$DYNAMIC" ||
    fail "libquiver.so has no SONAME libquiver.so.0"
export PKG_CONFIG_PATH="$LIB/pkgconfig"
[ "$(pkg-config --modversion quiver)" = "$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)" ] ||
    fail "quiver.pc version"
read -r -a PC_CFLAGS <<< "$(pkg-config --cflags quiver)"
read -r -a PC_LIBS <<< "$(pkg-config --libs quiver)"

say "compile the C and C++ tests and the examples"
TESTS=(${QUIVER_C_TESTS:-test_api test_channel test_queue test_proxy test_dialing test_scenarios test_client_layer test_observability test_cpp})
for t in test_api test_channel test_queue test_proxy test_dialing test_scenarios test_client_layer test_observability demo; do # against libquiver.so, through pkg-config
    "$CC" "${CFLAGS[@]}" "${PC_CFLAGS[@]}" "tests/c/$t.c" -o "$WORK/$t" "${PC_LIBS[@]}" \
        -Wl,-rpath,"$LIB"
done
"$CXX" "${CXXFLAGS[@]}" "${PC_CFLAGS[@]}" tests/c/test_cpp.cpp -o "$WORK/test_cpp" \
    "${PC_LIBS[@]}" -Wl,-rpath,"$LIB"
make -s c-examples QUIVER_PC_PATH="$LIB/pkgconfig" EXAMPLES_OUT="$WORK/examples" CC="$CC"
"$CC" "${CFLAGS[@]}" "${PC_CFLAGS[@]}" tests/c/test_static.c -o "$WORK/test_static" \
    "$LIB/libquiver.a" -lpthread -ldl -lm
if grep -q libquiver <<< "$(ldd "$WORK/test_static")"; then fail "test_static links libquiver.so"; fi
grep -q "libquiver.so.0 => $LIB/libquiver.so.0" <<< "$(ldd "$WORK/test_api")" ||
    fail "test_api does not load the installed libquiver.so.0"

say "start the test servers"
exec 3> >("$TARGET/debug/quiver-testserver" --dir "$WORK/server" > "$WORK/server.json")
exec 4> >("$TARGET/debug/quiver-testserver" --dir "$WORK/server2" --h3-no-datagrams \
    > "$WORK/server2.json")
exec 5> >("$TARGET/debug/quiver-testserver" --dir "$WORK/server3" --h2-refuse-every 5 \
    > "$WORK/server3.json")
exec 6> >("$TARGET/debug/quiver-testserver" --dir "$WORK/server4" --h2-goaway-after 1 \
    > "$WORK/server4.json")
SERVERS=("$WORK/server.json" "$WORK/server2.json" "$WORK/server3.json" "$WORK/server4.json")
servers_up() { for f in "${SERVERS[@]}"; do [ -s "$f" ] || return 1; done; }
for _ in $(seq 200); do servers_up && break; sleep 0.05; done
servers_up || fail "the test servers did not start"
json_port() { sed -nE "s/.*\"$1\": *([0-9]+).*/\1/p" "${2:-$WORK/server.json}"; }
json_str() { sed -nE "s/.*\"$1\": *\"([^\"]*)\".*/\1/p" "${2:-$WORK/server.json}"; }
export QUIVER_TEST_HTTP="http://127.0.0.1:$(json_port http)"
export QUIVER_TEST_HTTPS="https://localhost:$(json_port https)"
export QUIVER_TEST_CA_FILE="$(json_str ca_file)"
export QUIVER_TEST_WRONG_CA_FILE="$(json_str wrong_ca_file)"
if [ -n "$(json_port h2c)" ]; then export QUIVER_TEST_H2C="http://127.0.0.1:$(json_port h2c)"; fi
if [ -n "$(json_port h3)" ]; then export QUIVER_TEST_H3="https://localhost:$(json_port h3)"; fi
if [ -n "$(json_port h3 "$WORK/server2.json")" ]; then
    export QUIVER_TEST_H3_NO_DATAGRAMS="https://localhost:$(json_port h3 "$WORK/server2.json")"
    export QUIVER_TEST_H3_NO_DATAGRAMS_CA_FILE="$(json_str ca_file "$WORK/server2.json")"
fi
export QUIVER_TEST_H2C_REFUSE="http://127.0.0.1:$(json_port h2c "$WORK/server3.json")"
export QUIVER_TEST_H2C_GOAWAY="http://127.0.0.1:$(json_port h2c "$WORK/server4.json")"
export QUIVER_TEST_PROXY="http://127.0.0.1:$(json_port proxy)"
export QUIVER_TEST_PROXY_TLS="https://localhost:$(json_port proxy_tls)"
if [ -n "$(json_port proxy_h3)" ]; then export QUIVER_TEST_PROXY_H3="https://localhost:$(json_port proxy_h3)"; fi
export QUIVER_TEST_UDP_ECHO_PORT="$(json_port udp_echo)"
export QUIVER_TEST_HTTP_PORT="$(json_port http)"
export QUIVER_TEST_SECOND_PORT="$(json_port second)"
export QUIVER_TEST_BLACKHOLE_PORT="$(json_port blackhole)"
export QUIVER_TEST_SOCKS5_PORT="$(json_port socks5)"
export QUIVER_TEST_SOCKS5_AUTH_PORT="$(json_port socks5_auth)"
export QUIVER_TEST_UNIX_HTTP="$(json_str unix_http)"
export QUIVER_TEST_UNIX_H2C="$(json_str unix_h2c)"
export QUIVER_TEST_HTTPS_ALT_PORT="$(json_port https_alt)"
export QUIVER_TEST_HTTPS_PORT="$(json_port https)"
export QUIVER_TEST_DNS_PORT="$(json_port dns)"
export QUIVER_TEST_HTTPS_ALT_BLOCKED_PORT="$(json_port https_alt_blocked)"
export QUIVER_TEST_SCENARIOS="$ROOT/tests/server/scenarios.tsv"
echo "server: $(cat "$WORK/server.json")"

say "test_static (libquiver.a)"
"$WORK/test_static"

for t in "${TESTS[@]}"; do
    say "$t (libquiver.so)"
    "$WORK/$t"
done

say "demo"
"$WORK/demo" "$QUIVER_TEST_HTTPS/bytes/42" "$QUIVER_TEST_CA_FILE" | tee "$WORK/demo.out"
grep -q '^HTTP/2 200$' "$WORK/demo.out" && grep -q '(42 body bytes)' "$WORK/demo.out" ||
    fail "demo output"

say "examples"
EX="$WORK/examples"
"$EX/get" "$QUIVER_TEST_HTTP/bytes/26" > "$WORK/get.out"
grep -qx 'HTTP/1.1 200' "$WORK/get.out" && grep -qx 'abcdefghijklmnopqrstuvwxyz' "$WORK/get.out" ||
    fail "example get: $(cat "$WORK/get.out")"
"$EX/stream" "$QUIVER_TEST_HTTPS/bytes/8000000" "$QUIVER_TEST_CA_FILE" | tee "$WORK/stream.out"
grep -q '^8000000 bytes, paused [1-9][0-9]* times$' "$WORK/stream.out" || fail "example stream"
if [ -n "${QUIVER_TEST_H3:-}" ]; then
    "$EX/datagram" "$QUIVER_TEST_H3/datagram-echo" "$QUIVER_TEST_CA_FILE" | tee "$WORK/datagram.out"
    grep -q '^datagram: hello [0-9]$' "$WORK/datagram.out" &&
        grep -q '^trailer x-datagrams-echoed: [0-9]*$' "$WORK/datagram.out" || fail "example datagram"
fi
if [ -n "${QUIVER_TEST_PROXY_H3:-}" ]; then
    "$EX/udp_tunnel" --ca "$QUIVER_TEST_CA_FILE" "${QUIVER_TEST_PROXY_H3/:\/\//://quiver:secret@}" \
        127.0.0.1 "$QUIVER_TEST_UDP_ECHO_PORT" | tee "$WORK/udp_tunnel.out"
    grep -q '^open: 200 to 127.0.0.1:[0-9]*, payloads up to [1-9][0-9]* bytes$' "$WORK/udp_tunnel.out" &&
        grep -q '^echo: hello [0-9]$' "$WORK/udp_tunnel.out" && grep -qx closed "$WORK/udp_tunnel.out" ||
        fail "example udp_tunnel (HTTP/3)"
fi
"$EX/udp_tunnel" --http2 --ca "$QUIVER_TEST_CA_FILE" "$QUIVER_TEST_PROXY_TLS" 127.0.0.1 \
    "$QUIVER_TEST_UDP_ECHO_PORT" | tee "$WORK/udp_tunnel2.out"
grep -q '^echo: hello [0-9]$' "$WORK/udp_tunnel2.out" && grep -qx closed "$WORK/udp_tunnel2.out" ||
    fail "example udp_tunnel (HTTP/2)"
"$EX/epoll" --ca "$QUIVER_TEST_CA_FILE" "$QUIVER_TEST_HTTP/bytes/10" "$QUIVER_TEST_HTTPS/bytes/20" \
    "$QUIVER_TEST_HTTP/status/404" | sort | tee "$WORK/epoll.out"
[ "$(grep -c -e '/bytes/10: HTTP/1.1 200, 10 bytes$' -e '/bytes/20: HTTP/2 200, 20 bytes$' \
    -e '/status/404: HTTP/1.1 404, 10 bytes$' "$WORK/epoll.out")" = 3 ] || fail "example epoll"

if [ "${QUIVER_C_TESTS_NO_VALGRIND:-0}" != 1 ]; then
    for t in "${TESTS[@]}"; do
        say "$t under valgrind"
        QUIVER_TEST_SLOW=10 QUIVER_TEST_VALGRIND=1 valgrind -q --error-exitcode=1 \
            --errors-for-leak-kinds=definite --leak-check=full --show-leak-kinds=definite \
            --suppressions=tests/c/valgrind.supp "$WORK/$t"
    done
fi

say "C tests passed"
