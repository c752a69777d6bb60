#!/usr/bin/env bash
# A local Redis Cluster of masters (no replicas) from the installed redis-server, for
# tests and demos of several engine nodes (docs/operations.md, "Several nodes").
#
#   tools/redis-cluster.sh start   # starts it, waits until every slot is served, prints
#                                  # the seed list for store.redis_url
#   tools/redis-cluster.sh stop    # shuts its servers down and removes their files
#   tools/redis-cluster.sh url     # prints the seed list
#
# Settings (environment): BIND (default 127.0.0.1), PORTS (default "7001 7002 7003"),
# DIR (default /tmp/dispatchd-redis-cluster-<first port>), APPENDONLY (yes: AOF with
# fsync always, so a killed master keeps what it acknowledged; default no).
set -euo pipefail

BIND=${BIND:-127.0.0.1}
PORTS=${PORTS:-"7001 7002 7003"}
read -r -a ports <<<"$PORTS"
DIR=${DIR:-/tmp/dispatchd-redis-cluster-${ports[0]}}
APPENDONLY=${APPENDONLY:-no}

url() {
  local seeds=()
  for p in "${ports[@]}"; do seeds+=("redis://$BIND:$p"); done
  (IFS=,; echo "${seeds[*]}")
}

stop() {
  for p in "${ports[@]}"; do
    redis-cli -h "$BIND" -p "$p" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$DIR"
}

start() {
  command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
  stop
  mkdir -p "$DIR"
  local addrs=()
  for p in "${ports[@]}"; do
    mkdir -p "$DIR/$p"
    (cd "$DIR/$p" && redis-server --port "$p" --bind "$BIND" --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 2000 --save '' \
      --appendonly "$APPENDONLY" --appendfsync always --protected-mode no \
      --daemonize yes --logfile "$DIR/$p/log" --dir "$DIR/$p")
    addrs+=("$BIND:$p")
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 100); do
      redis-cli -h "$BIND" -p "$p" ping >/dev/null 2>&1 && break
      sleep 0.05
    done
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$DIR/create.log" 2>&1 \
    || { cat "$DIR/create.log" >&2; exit 1; }
  for _ in $(seq 1 200); do
    local ok=1
    for p in "${ports[@]}"; do
      redis-cli -h "$BIND" -p "$p" cluster info 2>/dev/null | grep -q 'cluster_state:ok' || ok=0
    done
    [ "$ok" = 1 ] && { url; return 0; }
    sleep 0.05
  done
  echo "the cluster did not come up (see $DIR/*/log)" >&2
  exit 1
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
