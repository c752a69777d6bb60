#!/usr/bin/env bash
# Starts a release dispatchd with the settings a city-scale run needs, drives it with
# `dispatch-load city`, and stops it. Everything after the options goes to `city`.
#   tools/city-run.sh [--bin DIR] [--redis PREFIX] [--policy P] -- --riders 10000 --fixes-per-s 50000 ...
# Extra server settings: export DISPATCH_... variables before calling. With METRICS_OUT=FILE
# the server's /metrics as the run ends is saved there (e.g. the batch planner's histograms).
set -euo pipefail
BIN=target/release
POLICY=nearest
REDIS=""
PERF=""
CPUS=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) BIN=$2; shift 2 ;;
    --redis) REDIS=$2; shift 2 ;;
    --policy) POLICY=$2; shift 2 ;;
    --perf) PERF=$2; shift 2 ;;   # seconds of `perf record -g` once the sockets are up
    --server-cpus) CPUS=$2; shift 2 ;;   # pin the server (taskset -c LIST): saturate it, not the box
    --) shift; break ;;
    *) break ;;
  esac
done
ulimit -n "$(ulimit -Hn)"
# Below the ephemeral range (32768+), where the riders' own client sockets take ports.
PORT=$((10000 + RANDOM % 20000))
OPS_PORT=$((PORT + 1))
export DISPATCH_DEMO__ENABLED=false
export DISPATCH_SERVER__BIND=127.0.0.1:$PORT
export DISPATCH_SERVER__OPS_BIND=127.0.0.1:$OPS_PORT
export DISPATCH_DISPATCH__POLICY=$POLICY
export DISPATCH_RATE_LIMIT__RIDER_FIXES_PER_10S=${DISPATCH_RATE_LIMIT__RIDER_FIXES_PER_10S:-1000}
export DISPATCH_RATE_LIMIT__RIDER_FIX_BURST=${DISPATCH_RATE_LIMIT__RIDER_FIX_BURST:-1000}
# One load tool on one address plays a whole city: the per-IP and per-holder request limits
# and the per-IP socket cap are for the internet, not for it.
export DISPATCH_RATE_LIMIT__PER_IP_PER_S=${DISPATCH_RATE_LIMIT__PER_IP_PER_S:-1000000}
export DISPATCH_RATE_LIMIT__PER_IP_BURST=${DISPATCH_RATE_LIMIT__PER_IP_BURST:-1000000}
export DISPATCH_RATE_LIMIT__PER_TOKEN_PER_S=${DISPATCH_RATE_LIMIT__PER_TOKEN_PER_S:-1000000}
export DISPATCH_RATE_LIMIT__PER_TOKEN_BURST=${DISPATCH_RATE_LIMIT__PER_TOKEN_BURST:-1000000}
export DISPATCH_RATE_LIMIT__AUTH_PER_IP_PER_MINUTE=${DISPATCH_RATE_LIMIT__AUTH_PER_IP_PER_MINUTE:-1000000}
export DISPATCH_SERVER__MAX_SOCKETS_PER_IP=${DISPATCH_SERVER__MAX_SOCKETS_PER_IP:-1000000}
export RUST_LOG=${RUST_LOG:-warn}
if [[ -n "$REDIS" ]]; then
  export DISPATCH_STORE__BACKEND=redis
  export DISPATCH_STORE__REDIS_PREFIX=$REDIS
  redis-cli --scan --pattern "$REDIS*" | xargs -r -n 1000 redis-cli del >/dev/null
fi
PIN=()
[[ -n "$CPUS" ]] && PIN=(taskset -c "$CPUS")
"${PIN[@]}" "$BIN/dispatchd" > /tmp/city-server-$PORT.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
if [[ -n "$PERF" ]]; then
  ( sleep "${PERF_DELAY_S:-40}"; perf record -F 499 -g -p $SERVER -o /tmp/city-perf.data -- sleep "$PERF" >/dev/null 2>&1 ) &
fi
"$BIN/dispatch-load" --url "http://127.0.0.1:$PORT" --pid $SERVER city --probe-url "http://127.0.0.1:$OPS_PORT" "$@"
if [[ -n "${METRICS_OUT:-}" ]]; then
  curl -sf "http://127.0.0.1:$OPS_PORT/metrics" > "$METRICS_OUT"
fi
