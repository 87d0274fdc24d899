#!/usr/bin/env bash
# Cargo as `napi build` runs it, for scripts/setup-node.sh (napi spawns $CARGO when it is set).
#
# napi always passes `--target <triple>`, even for the host. An explicit target puts every crate
# in a second tree (target/<triple>/), so the Node module would compile the whole dependency
# graph a second time next to the workspace's own build (minutes on 2 cores). For the host
# triple this drops `--target`, builds into the shared target/<profile>/, and links the
# library (libquiver_node.so) to where napi looks for it (target/<triple>/<profile>/). Any
# other target is passed through untouched.
set -euo pipefail

host=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${CARGO_TARGET_DIR:-$(cd "$(dirname "$0")/.." && pwd)/target}
args=()
profile=debug
prev=
for a in "$@"; do
  if [ "$prev" = --target ]; then
    prev=
    [ "$a" = "$host" ] || exec cargo "$@"
    continue
  fi
  case $a in
    --target) prev=--target; continue ;;
    --target=*) [ "${a#--target=}" = "$host" ] || exec cargo "$@"; continue ;;
    --release) profile=release ;;
  esac
  args+=("$a")
done

cargo "${args[@]}"
if [ "${args[0]:-}" = build ]; then
  mkdir -p "$target_dir/$host/$profile"
  # A hard link, as cargo makes its own outputs (the debug library is ~100 MB); a copy where
  # linking is refused.
  ln -f "$target_dir/$profile/libquiver_node.so" "$target_dir/$host/$profile/" 2>/dev/null \
    || cp -f "$target_dir/$profile/libquiver_node.so" "$target_dir/$host/$profile/"
fi
