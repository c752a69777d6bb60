#!/usr/bin/env bash
# Replays MDRP instances under both dispatch policies, two at a time, and prints one
# markdown row per instance and policy: undelivered %, click-to-door mean and p90,
# ready-to-pickup mean, wall seconds.
#   tools/replay-compare.sh [INSTANCE_NAME...]    (default: a quiet, a mixed and a busy day)
# Reads $MDRPLIB_DIR (default ../shared/data/mdrplib); builds the release binary first.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${MDRPLIB_DIR:-../shared/data/mdrplib}/instances"
[ -d "$dir" ] || { echo "no MDRP instances in $dir (tools/fetch-mdrplib.sh fetches them)" >&2; exit 2; }
cargo build --release --bin dispatchd >&2
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(2o100t100s1p100 1o50t100s2p100 4o100t100s1p100)
one() {
  local name=$1 policy=$2 out
  out=$(target/release/dispatchd replay --instance "$dir/$name" --policy "$policy" --out "$(mktemp -d)")
  local pick='{for(i=1;i<=NF;i++) if($i==k){print $(i+1); exit}}'
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$policy" \
    "$(echo "$out" | awk '$1=="pct_undelivered"{print $2}')" \
    "$(echo "$out" | awk '$1=="ctd_mean_min"{print $2}')" \
    "$(echo "$out" | awk '$1=="ctd_p90_min"{print $2}')" \
    "$(echo "$out" | awk '$1=="rtp_mean_min"{print $2}')" \
    "$(echo "$out" | awk -v k=in "$pick" | head -1)"
}
export -f one; export dir
echo "| instance | policy | undelivered % | CtD mean | CtD p90 | RtP mean | wall s |"
echo "|---|---|---|---|---|---|---|"
for n in "${names[@]}"; do printf '%s nearest\n%s batch\n' "$n" "$n"; done \
  | xargs -P 2 -L 1 bash -c 'one "$0" "$1"' | sort
