//! Two nodes of one city, as the whole-city tests (city_*.rs, whole_city.rs) start them:
//! node-a and node-b on one Redis, and the zone of the test shop, which rendezvous hashing
//! gives node-a of the two, so an order of the shop lives on A while sockets connect to B.

use crate::harness::*;
use crate::nodes::{node_env, until_holder};
use crate::support::*;
use dispatch_actors::store::redis::RedisStore;

/// The zone of [`SHOP`] (the nodes' default zone resolution, 7).
pub(crate) fn shop_zone() -> String {
    dispatch_actors::domain::Zoning::new(7)
        .unwrap()
        .zone_of(dispatch_actors::domain::GeoPoint::new(SHOP.0, SHOP.1).unwrap())
        .to_string()
}

pub(crate) struct CityPair {
    pub a: Server,
    pub b: Server,
    /// The store both write to, for reading zone leases.
    pub store: RedisStore,
    /// The zone of [`SHOP`].
    pub zone: String,
}

impl CityPair {
    /// Starts node-a and node-b on `url` (keys under `prefix`), each with `node_env` and
    /// its own settings on top.
    pub(crate) async fn start(
        url: &str,
        prefix: &str,
        more_a: &[(&'static str, &'static str)],
        more_b: &[(&'static str, &'static str)],
    ) -> CityPair {
        let env = |id, more: &[(&'static str, &'static str)]| {
            let mut env = node_env(id);
            env.extend_from_slice(more);
            env
        };
        let a = Server::start_ready(url, prefix, &env("node-a", more_a)).await;
        let b = Server::start_ready(url, prefix, &env("node-b", more_b)).await;
        CityPair {
            a,
            b,
            store: open_store(url, prefix),
            zone: shop_zone(),
        }
    }

    /// A merchant at the shop, made through A, once A holds the shop's zone (every order
    /// of the merchant lives on A from then on).
    pub(crate) async fn merchant_on_a(&self) -> Merchant {
        let m = self.a.api().merchant().await;
        assert_eq!(
            until_holder(&self.store, &self.zone, Some("node-b")).await,
            "node-a"
        );
        m
    }
}
