#!/usr/bin/env bash
# Builds the fuzz targets (fuzz/, cargo-fuzz, nightly) and runs each for a short while
# from its committed corpus (docs/reliability.md, "Fuzzing"). Exits non-zero when a target
# crashes, hangs or runs out of memory; exits 0 with a message when nightly or cargo-fuzz
# is not installed.
#
#   tools/fuzz-smoke.sh                 every target, 30 s each
#   FUZZ_SECONDS=600 tools/fuzz-smoke.sh rider_message
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz smoke: SKIPPED: no nightly toolchain (rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz smoke: SKIPPED: cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
  exit 0
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

(cd fuzz && cargo +nightly fuzz build)

# New inputs go to a scratch directory: the committed seeds stay as they are.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  echo "== fuzz $t (${seconds} s)"
  if (cd fuzz && cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        2>"$scratch/$t.log"); then
    grep -E "^(Done|stat::number_of_executed_units)" "$scratch/$t.log" || true
  else
    tail -n 40 "$scratch/$t.log"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz smoke: FAILED: ${failed[*]} (the crashing input is in fuzz/artifacts/<target>/)"
  echo "fuzz: $(( ${#targets[@]} - ${#failed[@]} )) passed, ${#failed[@]} failed"
  exit 1
fi
echo "fuzz smoke: ${#targets[@]} targets, ${seconds} s each, no crash"
echo "fuzz: ${#targets[@]} passed, 0 failed"
