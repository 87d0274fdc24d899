#!/usr/bin/env bash
# The benchmark's own set-up (bench/run.sh calls it; `make bench` runs that). Idempotent:
# what is already there is left alone. Installs
#   - Debian packages: servers (nginx + echo module, h2o), h2load, openssl, gcc and
#     libcurl4-openssl-dev (bench/c/curl_multi.c), python3-venv; with apt-get, as root or `sudo -n`;
#   - a venv in bench/.work/venv with the pinned Python peers (bench/requirements.txt; niquests'
#     urllib3-future built apart from upstream urllib3, which requests and urllib3 keep using);
#   - undici in bench/node/node_modules (bench/node/package-lock.json), if Node >= 20 is here.
# Node itself is not installed (Debian 12's nodejs is 18, too old for undici 7): without it the
# Node rows are reported as not built.
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$PWD
WORK=$BENCH/.work
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi

PACKAGES=(nginx libnginx-mod-http-echo h2o nghttp2-client openssl gcc libc6-dev pkg-config
          libcurl4-openssl-dev python3 python3-venv)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the packaged services where it can; the bench starts its own on loopback.
  $SUDO service nginx stop >/dev/null 2>&1 || true
  $SUDO service h2o stop >/dev/null 2>&1 || true
fi

# Python peers. Debian's python3 (the one python3-venv goes with) when present.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
VENV=$WORK/venv
if [ ! -x "$VENV/bin/python" ]; then
  say "python venv in bench/.work/venv"
  mkdir -p "$WORK"
  "$PY" -m venv "$VENV"
fi
# URLLIB3_NO_OVERRIDE=1: urllib3-future (niquests' transport) is built without its drop-in copy of
# `urllib3`, so requests and the urllib3 row keep upstream urllib3 (see bench/requirements.txt).
export URLLIB3_NO_OVERRIDE=1
pip_q() { "$VENV/bin/python" -m pip -q --disable-pip-version-check "$@"; }
# `import urllib3` must be upstream urllib3 (version x.y.z with z < 900), not urllib3-future's
# drop-in copy (an earlier plain `pip install niquests` leaves one, with a .pth hook that redoes it
# at every start). Repair: remove the fork and its copy, reinstall both apart.
urllib3_upstream() {
  "$VENV/bin/python" -c 'import sys, urllib3; sys.exit(int(urllib3.__version__.split(".")[-1]) >= 900)' 2>/dev/null
}
repair_urllib3() {
  local site
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  say "urllib3 in bench/.work/venv is urllib3-future's drop-in: reinstalling both apart"
  pip_q uninstall -y urllib3-future
  rm -rf "$site/urllib3" "$site/urllib3_future.pth"
  pip_q install --force-reinstall --no-deps "$(grep -E '^urllib3==' requirements.txt)"
  pip_q install --no-cache-dir --no-deps --force-reinstall --no-binary urllib3-future \
    "$(grep -E '^urllib3-future==' requirements.txt)"
}
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$want" ] || ! urllib3_upstream; then
  say "pip install -r bench/requirements.txt"
  pip_q install -r requirements.txt
  urllib3_upstream || repair_urllib3
  urllib3_upstream || { echo "bench/setup.sh: urllib3 in bench/.work/venv is still urllib3-future" >&2; exit 1; }
  echo "$want" > "$VENV/.requirements.sha256"
fi

# Node peers.
if command -v node >/dev/null 2>&1 && node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  want=$(sha256sum node/package-lock.json | cut -d' ' -f1)
  if [ "$(cat node/node_modules/.lock.sha256 2>/dev/null)" != "$want" ]; then
    say "npm ci in bench/node"
    (cd node && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > node/node_modules/.lock.sha256
  fi
else
  say "Node >= 20 not found: the Node rows will be reported as not built"
fi
