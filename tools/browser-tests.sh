#!/usr/bin/env bash
# Browser tests: starts dispatchd (demo city on, short merchant timer, batch dispatch with
# 5 s rounds) on a free port and
# runs tests/browser/pages.test.mjs in headless Chromium (Debian's /usr/bin/chromium).
# Installs Chromium (apt-get, needs root) and playwright-core (npm) when they are missing.
# Screenshots land in target/screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

bin=${DISPATCHD_BIN:-target/debug/dispatchd}
[ -x "$bin" ] || cargo build --bin dispatchd
log=$(mktemp)
token="browser-$(date +%s)"
DISPATCH_SERVER__BIND=127.0.0.1:0 \
DISPATCH_INGEST__OSMAND_BIND=127.0.0.1:0 \
DISPATCH_AUTH__DISPATCHER_TOKEN="$token" \
DISPATCH_DEMO__ENABLED=true \
DISPATCH_TIMERS__MERCHANT_ACCEPT_S=2 \
DISPATCH_DASHBOARD__UPDATE_INTERVAL_MS=200 \
DISPATCH_DISPATCH__POLICY=batch \
DISPATCH_DISPATCH__ROUND_S=5 \
  "$bin" >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 100); do
  url=$(grep -oE 'listening on http://[0-9.:]+' "$log" | head -n1 | sed 's/listening on //') || true
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "dispatchd did not start:"; cat "$log"; exit 1
fi
echo "browser tests against $url"
mkdir -p target/screenshots
(cd tests/browser && DISPATCH_URL="$url" DISPATCH_TOKEN="$token" node --test --test-concurrency=1 pages.test.mjs)
