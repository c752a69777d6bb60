//! Several engine nodes sharing one city (docs/cluster.md): who should own each zone
//! ([`owner`], rendezvous hashing), what a node does with its leases at each renewal
//! ([`plan`]), and the task that keeps them in Redis and tells the node which zones it
//! may act on ([`keeper`]).

pub mod keeper;
pub mod owner;
pub mod plan;

pub use keeper::{HeldZones, KeeperHandle, KeeperSettings};

#[cfg(test)]
pub(crate) mod test_redis;
