//! Engine configuration: the `timers`, `dispatch` and `gps` sections of config.toml.
//! Durations are seconds as `f64` (tests use 1–3 s; decimals allowed).

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct TimersConfig {
    pub merchant_accept_s: f64,
    pub offer_ttl_s: f64,
    pub dispatch_remind_s: f64,
    pub pickup_late_s: f64,
    pub delivery_timeout_s: f64,
    pub rider_silent_s: f64,
    pub rider_lost_s: f64,
}

impl Default for TimersConfig {
    fn default() -> Self {
        Self {
            merchant_accept_s: 300.0,
            offer_ttl_s: 30.0,
            dispatch_remind_s: 600.0,
            pickup_late_s: 600.0,
            delivery_timeout_s: 1800.0,
            rider_silent_s: 30.0,
            rider_lost_s: 120.0,
        }
    }
}

/// How orders find riders (`dispatch.policy`).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(try_from = "String")]
pub enum Policy {
    /// Each order on its own, at once: the nearest idle rider (docs/protocol.md, "Dispatch").
    #[default]
    Nearest,
    /// Rolling-horizon batch matching: every `round_s` the planner assigns the waiting
    /// orders to riders at once by projected click-to-door, offering each order when its
    /// rider should leave for the food rather than as early as possible.
    Batch,
}

impl TryFrom<String> for Policy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "nearest" => Ok(Policy::Nearest),
            "batch" => Ok(Policy::Batch),
            other => Err(format!(
                "dispatch.policy must be \"nearest\" or \"batch\", not {other:?}"
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct DispatchConfig {
    pub policy: Policy,
    /// Seconds between planning rounds (`batch`); an order about to fall due gets a round
    /// of its own earlier.
    pub round_s: f64,
    /// `batch`: early rounds (for orders falling due) come no closer than this after the
    /// last round; also how late past its due time an order may be offered.
    pub min_round_gap_s: f64,
    /// `batch`: a new order asks for a round as soon as `min_round_gap_s` allows, instead
    /// of waiting for the regular round or its food's ready time.
    pub first_look: bool,
    /// `batch`: keep an order uncommitted until its rider should leave (false: every
    /// order is offered at the first round that finds it a rider; for comparisons).
    pub late_commitment: bool,
    /// `batch`: a busy rider whose work in hand (every order picked up) ends within this
    /// many seconds may hold one offer for its next job (docs/protocol.md, v1.1). 0: never.
    pub next_job_s: f64,
    /// `batch`: most orders of one merchant one offer may carry (a bundle). 1: no bundles.
    pub max_bundle: usize,
    /// Rider speed used for travel-time estimates.
    pub speed_mps: f64,
    pub initial_radius_m: f64,
    pub max_radius_m: f64,
    /// How many candidates one matcher query returns before re-ranking.
    pub candidates_k: usize,
    /// How many riders may hold an open offer for one order at once.
    pub offer_fanout: usize,
    /// When nobody is in range at the widest radius, try again after this long.
    pub retry_interval_s: f64,
    /// How far a rider may stray from its point in the matcher's R-trees before the trees
    /// move it (`crate::matcher::RiderIndex::with_slack_m`).
    pub index_slack_m: f64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            // The replay sweep shows batch winning (docs/dispatch.md): it is the default.
            policy: Policy::Batch,
            round_s: 30.0,
            min_round_gap_s: crate::plan::schedule::MIN_EARLY_GAP_MS as f64 / 1000.0,
            first_look: false,
            late_commitment: true,
            next_job_s: 300.0,
            max_bundle: 3,
            speed_mps: 5.0,
            initial_radius_m: 3000.0,
            max_radius_m: 20000.0,
            candidates_k: 10,
            offer_fanout: 1,
            retry_interval_s: 2.0,
            index_slack_m: crate::matcher::INDEX_SLACK_M,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct GpsConfig {
    /// `location_interval_s` told to riders.
    pub interval_s: f64,
    /// Implied movement faster than this between two fixes is rejected.
    pub max_speed_mps: f64,
    /// A fix stamped further than this in the future is rejected.
    pub max_future_ms: u64,
}

impl Default for GpsConfig {
    fn default() -> Self {
        Self {
            interval_s: 10.0,
            max_speed_mps: 70.0,
            max_future_ms: 30_000,
        }
    }
}

/// How long what is finished stays in the engine's memory. Nothing here is lost: a final
/// order and a resolved escalation stay in the store (for the memory store, a bounded
/// archive; see `store.memory_archive_max_orders`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct RetentionConfig {
    /// Final orders (in the memory store's archive) and resolved escalations (in the
    /// desk's book, so `GET /escalations` lists them) are kept this long.
    pub final_s: f64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self { final_s: 3600.0 }
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct EngineConfig {
    pub timers: TimersConfig,
    pub dispatch: DispatchConfig,
    pub gps: GpsConfig,
    pub retention: RetentionConfig,
    /// Run the matcher on its own Arbiter (thread). Tests under a paused clock keep it on
    /// the current one so that virtual time only advances when the whole engine is idle.
    #[serde(skip)]
    pub matcher_own_arbiter: bool,
    /// Capacity of the event bus; a subscriber that lags further loses events (counted).
    #[serde(skip)]
    pub event_bus_capacity: usize,
}

impl EngineConfig {
    pub fn for_tests() -> Self {
        Self {
            matcher_own_arbiter: false,
            event_bus_capacity: 4096,
            ..Default::default()
        }
    }
}

/// Seconds (possibly fractional) to a `Duration`, never negative.
pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

/// Several engine nodes sharing one city through Redis (`[cluster]`, docs/cluster.md).
/// Off by default: a single node is unchanged by everything here.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// This node's id in leases and announcements; empty: `<hostname>-<pid>`.
    pub node_id: String,
    /// H3 resolution of zones (0..=15; 7: cells of about 5 km²).
    pub zone_resolution: u8,
    /// A zone lease lapses this long after its last renewal.
    pub lease_ttl_ms: u64,
    /// Leases are renewed (and the node announced) this often; under half the TTL, so one
    /// lost renewal never costs a lease.
    pub lease_renew_ms: u64,
    /// This node's public address, shown to operators (empty: none).
    pub advertise: String,
    /// How often the city feed reads the other nodes' zones' event streams for this
    /// node's dashboards, merchant apps and tracking pages (docs/cluster.md); 0: never
    /// (those sockets hear of this node's actors' orders only).
    pub city_feed_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            node_id: String::new(),
            zone_resolution: 7,
            lease_ttl_ms: 6000,
            lease_renew_ms: 2000,
            advertise: String::new(),
            city_feed_ms: 200,
        }
    }
}

impl ClusterConfig {
    /// Checks the section on its own (the server adds what needs other sections).
    pub fn validate(&self) -> Result<(), String> {
        crate::domain::Zoning::new(self.zone_resolution)
            .map_err(|e| format!("cluster.zone_resolution: {e}"))?;
        if self.lease_ttl_ms == 0 {
            return Err("cluster.lease_ttl_ms must be at least 1".into());
        }
        if self.lease_renew_ms == 0 || self.lease_renew_ms.saturating_mul(2) >= self.lease_ttl_ms {
            return Err(format!(
                "cluster.lease_renew_ms ({}) must be positive and under half of \
                 cluster.lease_ttl_ms ({})",
                self.lease_renew_ms, self.lease_ttl_ms
            ));
        }
        if !self.node_id.is_empty() {
            check_node_id(&self.node_id).map_err(|e| format!("cluster.node_id: {e}"))?;
        }
        Ok(())
    }

    /// The configured node id, or `<hostname>-<pid>`.
    pub fn node_id(&self) -> String {
        if !self.node_id.is_empty() {
            return self.node_id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| {
                h.trim()
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .collect::<String>()
            })
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".into());
        format!("{host}-{}", std::process::id())
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    pub fn lease_renew(&self) -> Duration {
        Duration::from_millis(self.lease_renew_ms)
    }

    /// How often the city feed reads the other nodes' zones; None: it does not run.
    pub fn city_feed(&self) -> Option<Duration> {
        (self.city_feed_ms > 0).then(|| Duration::from_millis(self.city_feed_ms))
    }
}

/// A node id goes into lease values (`"<node> <fence>"`) and key names: letters, digits,
/// `-`, `_`, `.` and `:`, at most 128 of them.
pub fn check_node_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a node id (1 to 128 of letters, digits, '-', '_', '.', ':')"
        ))
    }
}

#[cfg(test)]
mod cluster_tests {
    use super::*;

    #[test]
    fn the_cluster_section_is_checked() {
        assert_eq!(ClusterConfig::default().validate(), Ok(()));
        let bad = |f: fn(&mut ClusterConfig)| {
            let mut c = ClusterConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.lease_renew_ms = 3000).contains("under half"));
        assert!(bad(|c| c.lease_renew_ms = 0).contains("lease_renew_ms"));
        assert!(bad(|c| c.lease_ttl_ms = 0).contains("lease_ttl_ms"));
        assert!(bad(|c| c.zone_resolution = 16).contains("zone_resolution"));
        assert!(bad(|c| c.node_id = "a b".into()).contains("node_id"));
        let c = ClusterConfig {
            node_id: "n-1".into(),
            ..Default::default()
        };
        assert_eq!(c.node_id(), "n-1");
        let auto = ClusterConfig::default().node_id();
        assert!(
            auto.ends_with(&format!("-{}", std::process::id())),
            "{auto}"
        );
        assert_eq!(check_node_id(&auto), Ok(()));
    }
}
