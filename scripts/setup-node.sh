#!/usr/bin/env bash
# Sets up the Node package for the tests: installs bindings/node's npm dependencies from its
# lock file (@napi-rs/cli, plus typescript and @types/node for the type test) and builds the
# native module with `napi build` (debug profile, the workspace's target/ folder), which also
# regenerates bindings/node/binding.js and bindings/node/index.d.ts. Idempotent and
# non-interactive: a step whose inputs did not change since it last succeeded is skipped.
#
#   scripts/setup-node.sh            # QUIVER_NODE_PROFILE=release for an optimised build
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PKG=bindings/node
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${QUIVER_NODE_PROFILE:-debug}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "setup-node: node and npm are needed (Node 20 or newer)" >&2
  exit 1
fi
if [ "$(node -p 'Number(process.versions.node.split(".")[0])')" -lt 20 ]; then
  echo "setup-node: Node $(node -v) is too old; quiver-http needs Node 20 or newer" >&2
  exit 1
fi

stamp_deps="$PKG/node_modules/.quiver-deps.sha256"
hash_deps=$(cat "$PKG/package.json" "$PKG/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp_deps" 2>/dev/null)" != "$hash_deps" ]; then
  say "npm install ($PKG, from package-lock.json)"
  # Not `npm ci`: it refuses a lock file that lacks optional platform packages a partial
  # registry mirror does not serve. `--no-save` installs the locked versions without
  # rewriting the lock; --ignore-scripts: the package's own install hook would build, and the
  # step below does that.
  (cd "$PKG" && npm install --no-save --ignore-scripts --include=dev --no-audit --no-fund --loglevel=error)
  echo "$hash_deps" >"$stamp_deps"
fi

# What the native module is built from: the Rust sources of the binding and of the core, the
# manifests, the lock file, the compiler, and what shapes the generated files.
build_inputs() {
  echo "$PROFILE"
  rustc -V
  find "$PKG/src" quiver-core/src -type f -name '*.rs' -print0 | sort -z | xargs -0 sha256sum
  sha256sum Cargo.toml Cargo.lock quiver-core/Cargo.toml \
    "$PKG/Cargo.toml" "$PKG/build.rs" "$PKG/package.json" "$PKG/header.d.ts" "$PKG/install.js"
  # The generated files too: a hand-edited (or stale) copy is rebuilt, i.e. regenerated.
  sha256sum "$PKG/index.d.ts" "$PKG/binding.js" 2>/dev/null || true
  if [ -f quiver-core/build.rs ]; then sha256sum quiver-core/build.rs; fi
}
stamp_build="$PKG/node_modules/.quiver-build.sha256"
hash_build=$(build_inputs | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp_build" 2>/dev/null)" = "$hash_build" ] \
  && node -e "require('./$PKG')" >/dev/null 2>&1; then
  say "quiver-http's native module is up to date"
else
  say "napi build ($PROFILE): $PKG/quiver.<platform>.node"
  rm -f "$stamp_build"
  # CARGO: napi's host build shares target/<profile>/ with the rest of the workspace.
  (cd "$PKG" && CARGO="$ROOT/scripts/napi-cargo.sh" QUIVER_NODE_PROFILE="$PROFILE" \
    QUIVER_NODE_REBUILD=1 node install.js)
  node -e "require('./$PKG')" >/dev/null
  # Hashed again: the build has just rewritten the generated files.
  build_inputs | sha256sum | cut -d' ' -f1 >"$stamp_build"
fi
