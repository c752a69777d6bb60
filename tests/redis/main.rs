//! The Redis backend against a real Redis: the `dispatchd` binary runs as a child process
//! (so it can be killed with SIGKILL), with `store.backend = "redis"` and a key prefix of
//! its own per test. Needs Redis on 127.0.0.1:6379 (`.ci/run` starts one) and, for the
//! outage test, `redis-server` on PATH (it runs its own instance on a free port).

// Shared with tests/api; each crate uses only part of it.
#[allow(dead_code, unused_imports)]
#[path = "../support/mod.rs"]
mod support;

mod harness;
// A Redis Cluster of the test's own (shared with the store's cluster tests, which also
// stop and restart its nodes).
#[allow(dead_code)]
#[path = "../../actors/src/store/test_cluster.rs"]
mod test_cluster;

mod city_alerts;
mod city_notices;
mod city_pair;
mod city_riders;
mod city_sockets;
mod cluster;
mod devices;
mod idempotency;
mod lag;
mod nodes;
mod outage;
mod recovering;
mod restart;
mod revoke;
mod share_links;
mod shared_tokens;
mod store;
mod two_engines;
mod webhooks;
mod whole_city;
