//! Several hosts on one machine: `dispatchd` nodes in network namespaces of the test's own,
//! a Redis Cluster they all reach, partitions, paused and killed nodes, and nginx in front
//! of nodes. Needs root and iproute2 (`.ci/run` installs it and sets
//! `DISPATCH_REQUIRE_NETNS=1`); without them each test says loudly that it skipped.

// Shared with tests/api and tests/redis; each crate uses only part of it.
#[allow(dead_code, unused_imports)]
#[path = "../support/mod.rs"]
mod support;

mod bed;

mod net_bed;
mod nginx;
mod node_in_netns;
mod run_steps;
mod stream_audit;
mod three_nodes;
