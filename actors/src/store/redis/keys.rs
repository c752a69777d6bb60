//! The keyspace (docs/cluster.md, "Redis Cluster"). Every key is under `store.redis_prefix`.
//! Keys one script or transaction touches together carry one hash tag, so on a cluster they
//! sit in one slot:
//! - zone-scoped keys (`order:<id>`, `orders:live`, `timers`, `events`, `lease`, `fence`)
//!   are `{prefix}{z:<cell>}:<rest>` for a zone; without a zone `{prefix}{city}:<rest>` on
//!   a cluster, and `{prefix}<rest>` on a plain Redis (exactly the keys from before zones);
//! - every other record is one key per command and needs no tag: `{prefix}<rest>`.

use crate::domain::zone::ZoneId;

#[derive(Debug, Clone)]
pub(super) struct Keys {
    prefix: String,
    cluster: bool,
}

impl Keys {
    pub(super) fn new(prefix: &str, cluster: bool) -> Keys {
        Keys {
            prefix: prefix.to_string(),
            cluster,
        }
    }

    /// A one-key record (riders, merchants, tokens, …): no hash tag.
    pub(super) fn plain(&self, rest: &str) -> String {
        format!("{}{rest}", self.prefix)
    }

    /// A key of `zone` (or of the zone-less city): tagged as the module says.
    pub(super) fn scoped(&self, zone: Option<ZoneId>, rest: &str) -> String {
        match zone {
            Some(z) => format!("{}{{{}}}:{rest}", self.prefix, z.tag()),
            None if self.cluster => format!("{}{{city}}:{rest}", self.prefix),
            None => self.plain(rest),
        }
    }

    /// An order's hash.
    pub(super) fn order(&self, zone: Option<ZoneId>, id: &str) -> String {
        self.scoped(zone, &format!("order:{id}"))
    }

    /// Where an order's zone is written, so its keys can be found from its id alone.
    pub(super) fn order_zone(&self, id: &str) -> String {
        self.plain(&format!("order_zone:{id}"))
    }

    /// The set of zones worth owning (and whose orders recovery reads).
    pub(super) fn zones(&self) -> String {
        self.plain("zones")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> ZoneId {
        ZoneId::parse("872a1072bffffff").unwrap()
    }

    #[test]
    fn a_plain_redis_without_zones_keeps_the_keys_from_before() {
        let k = Keys::new("p:", false);
        assert_eq!(k.order(None, "o_1"), "p:order:o_1");
        assert_eq!(k.scoped(None, "orders:live"), "p:orders:live");
        assert_eq!(k.scoped(None, "events"), "p:events");
    }

    #[test]
    fn a_cluster_without_zones_tags_the_city() {
        let k = Keys::new("p:", true);
        assert_eq!(k.order(None, "o_1"), "p:{city}:order:o_1");
        assert_eq!(k.scoped(None, "timers"), "p:{city}:timers");
        assert_eq!(k.plain("rider:r_1"), "p:rider:r_1");
    }

    #[test]
    fn zone_keys_carry_the_zone_tag_everywhere() {
        for cluster in [false, true] {
            let k = Keys::new("p:", cluster);
            assert_eq!(
                k.order(Some(zone()), "o_1"),
                "p:{z:872a1072bffffff}:order:o_1"
            );
            assert_eq!(
                k.scoped(Some(zone()), "lease"),
                "p:{z:872a1072bffffff}:lease"
            );
        }
        assert_eq!(Keys::new("p:", true).order_zone("o_1"), "p:order_zone:o_1");
    }
}
