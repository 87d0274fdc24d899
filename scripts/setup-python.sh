#!/usr/bin/env bash
# Sets up the Python package for the tests: creates the project's virtual environment (.venv),
# installs the pinned dev tools (bindings/python/requirements-dev.txt) and builds quiver-http into
# it with `maturin develop` (debug profile, the workspace's target/ folder; the Python sources
# are installed editable). Idempotent and non-interactive: a step whose inputs did not change
# since it last succeeded is skipped.
#
#   scripts/setup-python.sh            # QUIVER_VENV=... to use another environment
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${QUIVER_VENV:-$ROOT/.venv}
PKG=bindings/python
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  say "python3 -m venv $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input -q)

stamp_requirements="$VENV/.quiver-requirements.sha256"
hash_requirements=$(sha256sum "$PKG/requirements-dev.txt" | cut -d' ' -f1)
if [ "$(cat "$stamp_requirements" 2>/dev/null)" != "$hash_requirements" ]; then
  say "pip install -r $PKG/requirements-dev.txt"
  "${PIP[@]}" install -r "$PKG/requirements-dev.txt"
  echo "$hash_requirements" >"$stamp_requirements"
fi

# What the extension is built from: the Rust sources of the binding and of the core, the
# manifests, the lock file and the compiler. (The Python sources need no rebuild: editable.)
build_inputs() {
  rustc -V
  find "$PKG/src" quiver-core/src -type f -name '*.rs' -print0 | sort -z | xargs -0 sha256sum
  sha256sum Cargo.toml Cargo.lock "$PKG/Cargo.toml" "$PKG/pyproject.toml" quiver-core/Cargo.toml
  if [ -f quiver-core/build.rs ]; then sha256sum quiver-core/build.rs; fi
}
stamp_build="$VENV/.quiver-build.sha256"
hash_build=$(build_inputs | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp_build" 2>/dev/null)" = "$hash_build" ] \
  && "$VENV/bin/python" -c 'import quiver' >/dev/null 2>&1; then
  say "quiver-http is up to date in $VENV"
else
  say "maturin develop (quiver-http into $VENV)"
  rm -f "$stamp_build"
  VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" \
    "$VENV/bin/maturin" develop --locked --quiet --manifest-path "$PKG/Cargo.toml"
  "$VENV/bin/python" -c 'import quiver' >/dev/null
  echo "$hash_build" >"$stamp_build"
fi
