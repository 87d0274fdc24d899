#!/usr/bin/env bash
# Installs what a fresh Debian machine needs for the demo and the tests, then builds.
# Idempotent: packages already present are not reinstalled. Non-interactive (CI has no stdin).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi

PACKAGES=(nginx libnginx-mod-http-echo h2o nghttp2-client wrk valgrind pkg-config python3-venv)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts nginx/h2o services where it can; tests start their own on loopback.
  $SUDO service nginx stop >/dev/null 2>&1 || true
  $SUDO service h2o stop >/dev/null 2>&1 || true
fi

say "cargo build (core, C ABI, test server)"
cargo build --locked --all-targets -q

say "Python package (quiver-http) into .venv"
./scripts/setup-python.sh

say "Node package (quiver-http)"
./scripts/setup-node.sh
