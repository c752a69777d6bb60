#!/usr/bin/env bash
# Fetches the Grubhub MDRP benchmark (github.com/grubhub/mdrplib) at the commit the
# project's figures were measured on, for the real-data replay test and `dispatchd replay`:
#   tools/fetch-mdrplib.sh [DIR]      (default: $MDRPLIB_DIR, else ./data/mdrplib)
#   MDRPLIB_DIR=DIR cargo test -p dispatch-sim --test replay
#   cargo run --release -- replay --instance DIR/instances/1o50t100s2p100
# The data has no licence file (research use only): it is never committed; data/ is in
# .gitignore. MDRPLIB_REPO=URL|PATH clones from a mirror instead.
set -euo pipefail
REPO=${MDRPLIB_REPO:-https://github.com/grubhub/mdrplib}
COMMIT=a3eca9c56fb70e2bf10768f45c99020a6b8b8e84
root=$(cd "$(dirname "$0")/.." && pwd)
# DIR and MDRPLIB_DIR are taken from where the script is called; the default sits in the
# workspace, where the replay test looks for it.
dir=${1:-${MDRPLIB_DIR:-$root/data/mdrplib}}

if [ -d "$dir/.git" ]; then
  git -C "$dir" fetch --quiet origin
else
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    echo "$dir exists and is not a git clone; remove it or pick another DIR" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$dir")"
  git clone --quiet "$REPO" "$dir"
fi
git -C "$dir" -c advice.detachedHead=false checkout --quiet "$COMMIT"
# The repository keeps the instances in public_instances/; the replay, its test and the
# docs name them DIR/instances/<name>.
if [ ! -e "$dir/instances" ]; then
  ln -s public_instances "$dir/instances"
fi
if [ ! -f "$dir/instances/1r50t75s2p100/orders.txt" ]; then
  echo "fetched $dir but instances/1r50t75s2p100 is missing: is this the MDRP library?" >&2
  exit 1
fi
echo "MDRP instances in $(cd "$dir" && pwd)/instances"
echo "use: MDRPLIB_DIR=$(cd "$dir" && pwd) cargo test -p dispatch-sim --test replay"
