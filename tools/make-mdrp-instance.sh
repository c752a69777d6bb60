#!/usr/bin/env bash
# Writes the project's own small MDRP instance (40 orders, 12 couriers, 8 restaurants, in
# the benchmark's file formats; dispatch_sim::mdrp::synthetic) into OUT_DIR, so a replay
# runs without the real data:
#   tools/make-mdrp-instance.sh /tmp/mdrp-small [SEED]
#   cargo run --release -- replay --instance /tmp/mdrp-small
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT_DIR [SEED]" >&2
  exit 2
fi
out=$1
seed=${2:-1}
cd "$(dirname "$0")/.."
# OUT_DIR is taken relative to where the script was called from.
case "$out" in
  /*) ;;
  *) out="$OLDPWD/$out" ;;
esac
cargo run --quiet --release -p dispatch-sim --bin make-mdrp-instance -- "$out" --seed "$seed"
