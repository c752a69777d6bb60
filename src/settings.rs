//! Configuration: `config.toml` (or `--config PATH`), then environment overrides
//! `DISPATCH_<SECTION>__<KEY>` (e.g. `DISPATCH_TIMERS__OFFER_TTL_S=2`).

use dispatch_actors::config::{
    ClusterConfig, DispatchConfig, GpsConfig, RetentionConfig, TimersConfig,
};
use dispatch_actors::store::MemoryLimits;
use dispatch_actors::EngineConfig;
use serde::Deserialize;
use std::path::Path;

pub const DEV_DISPATCHER_TOKEN: &str = "dev-dispatcher-token";

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    pub bind: String,
    /// Browser origins allowed to open WebSockets; empty allows all (warned at start).
    pub allowed_origins: Vec<String>,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout_s: u64,
    /// Frames queued per socket before a client that does not read is disconnected.
    pub ws_queue_frames: usize,
    /// A socket write that waits longer than this closes the socket.
    pub ws_send_timeout_s: f64,
    pub heartbeat_interval_s: f64,
    pub client_timeout_s: f64,
    pub workers: usize,
    /// Connections the kernel may queue before the server accepts them (capped by
    /// net.core.somaxconn): a reconnect storm after a restart must not drop handshakes.
    pub listen_backlog: u32,
    /// A second listener for `/healthz`, `/readyz` and `/metrics` only, on a thread of
    /// its own (empty: off). Under full ingest the main workers' queues are long; probes
    /// here do not wait behind thousands of sockets.
    pub ops_bind: String,
    /// Open WebSockets per client IP; an upgrade past it is refused with 429.
    pub max_sockets_per_ip: usize,
    /// Open WebSockets per token holder (merchant, customer, dispatcher) beyond which an
    /// upgrade is refused with 429. A rider has one socket: a new one replaces the old.
    pub max_sockets_per_principal: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            allowed_origins: Vec::new(),
            shutdown_timeout_s: 10,
            ws_queue_frames: 256,
            ws_send_timeout_s: 10.0,
            heartbeat_interval_s: 10.0,
            client_timeout_s: 30.0,
            workers: 2,
            listen_backlog: 4096,
            ops_bind: String::new(),
            max_sockets_per_ip: 20_000,
            max_sockets_per_principal: 32,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    pub dispatcher_token: String,
    /// Lifetime of issued tokens (riders, merchants, customers), seconds.
    pub token_ttl_s: f64,
    /// Password hashing threads; 0: one per available core.
    pub hash_threads: usize,
    /// Sign-ups and logins that may wait for a hashing thread; more get 503 + Retry-After.
    pub hash_queue: usize,
    /// A hashing thread idle this long gives its 19 MiB working buffer back.
    pub hash_memory_idle_s: f64,
    /// Failed logins (per username, and per IP) allowed before each further attempt must
    /// wait; the wait doubles from `login_delay_s` per failure up to `login_delay_max_s`.
    pub login_failures_free: u32,
    pub login_delay_s: f64,
    pub login_delay_max_s: f64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            dispatcher_token: DEV_DISPATCHER_TOKEN.into(),
            token_ttl_s: 30.0 * 86_400.0,
            hash_threads: 0,
            hash_queue: 32,
            hash_memory_idle_s: 5.0,
            login_failures_free: 5,
            login_delay_s: 1.0,
            login_delay_max_s: 300.0,
        }
    }
}

impl AuthSettings {
    pub fn hash_pool(&self) -> crate::password::PoolConfig {
        crate::password::PoolConfig {
            threads: self.hash_threads,
            queue: self.hash_queue,
            idle_release: seconds(self.hash_memory_idle_s),
            ..Default::default()
        }
    }

    pub fn token_ttl(&self) -> std::time::Duration {
        seconds(self.token_ttl_s)
    }
}

/// A duration from seconds in config (validated positive); absurdly large means "never".
pub fn seconds(s: f64) -> std::time::Duration {
    std::time::Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(std::time::Duration::MAX)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StoreSettings {
    pub backend: String,
    pub redis_url: String,
    pub redis_prefix: String,
    /// Most writes sent in one Redis pipeline (group commit); 1 turns batching off.
    pub group_commit_max_batch: usize,
    /// How long the writer waits after the first write for others to join its pipeline
    /// (0: only what queued while the previous pipeline was in flight).
    pub group_commit_linger_ms: f64,
    /// Rider positions are written to Redis this often, latest per rider.
    pub position_flush_ms: u64,
    /// Approximate length of the `events` stream (`XADD MAXLEN ~`).
    pub event_stream_maxlen: usize,
    /// The memory store keeps at most this many final orders (oldest go first).
    pub memory_archive_max_orders: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            backend: "memory".into(),
            redis_url: "redis://127.0.0.1:6379/0".into(),
            redis_prefix: "dispatch:".into(),
            group_commit_max_batch: 512,
            group_commit_linger_ms: 0.0,
            position_flush_ms: 100,
            event_stream_maxlen: 100_000,
            memory_archive_max_orders: 100_000,
        }
    }
}

impl StoreSettings {
    pub fn memory_limits(&self, retention: &RetentionConfig) -> MemoryLimits {
        let retention = std::time::Duration::from_secs_f64(retention.final_s.max(0.0));
        MemoryLimits {
            final_retention: retention,
            max_final_orders: self.memory_archive_max_orders,
            resolved_retention: retention,
            max_resolved_escalations: self.memory_archive_max_orders,
        }
    }

    pub fn redis_config(&self) -> dispatch_actors::store::redis::RedisConfig {
        dispatch_actors::store::redis::RedisConfig {
            url: self.redis_url.clone(),
            prefix: self.redis_prefix.clone(),
            max_batch: self.group_commit_max_batch.max(1),
            linger: std::time::Duration::from_secs_f64(
                self.group_commit_linger_ms.max(0.0) / 1000.0,
            ),
            position_flush: std::time::Duration::from_millis(self.position_flush_ms.max(1)),
            event_stream_maxlen: self.event_stream_maxlen.max(1),
            ..Default::default()
        }
    }
}

/// The `[demo]` section: the demo city's own settings, defined beside it.
pub use dispatch_sim::demo::DemoSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct DashboardSettings {
    pub update_interval_ms: u64,
    /// Update frames queued per dashboard socket. Frames are large (a whole fleet), so a
    /// dashboard that falls this far behind is disconnected; it reconnects to a snapshot.
    pub queue_frames: usize,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        Self {
            update_interval_ms: 1000,
            queue_frames: 16,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimitSettings {
    /// Location fixes a rider socket may send per 10 s (sustained)...
    pub rider_fixes_per_10s: u32,
    /// ...and at once (burst), e.g. after a reconnect.
    pub rider_fix_burst: u32,
    /// Other rider messages per 10 s.
    pub rider_messages_per_10s: u32,
    /// Logins and registrations per IP per minute.
    pub auth_per_ip_per_minute: u32,
    /// Every request (REST, socket upgrades, pages; not probes) per client IP per second,
    /// sustained, and at once.
    pub per_ip_per_s: u32,
    pub per_ip_burst: u32,
    /// Every request per token holder (rider, merchant, customer) per second, and at once.
    pub per_token_per_s: u32,
    pub per_token_burst: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self {
            rider_fixes_per_10s: 10,
            rider_fix_burst: 20,
            rider_messages_per_10s: 50,
            auth_per_ip_per_minute: 1000,
            per_ip_per_s: 1000,
            per_ip_burst: 20_000,
            per_token_per_s: 50,
            per_token_burst: 200,
        }
    }
}

/// The `[ingest]` section: fixes from tracking apps (docs/protocol.md, "Tracking apps").
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct IngestSettings {
    /// The OsmAnd / Traccar Client listener (empty: off).
    pub osmand_bind: String,
    /// The MQTT broker OwnTracks publishes to, `mqtt://[user:password@]host[:port]`
    /// (empty: no MQTT).
    pub mqtt_url: String,
    /// MQTT messages waiting to be read at most; more are dropped (counted).
    pub mqtt_queue: usize,
    /// An accepted tracker fix puts an offline rider online.
    pub sets_online: bool,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            osmand_bind: "127.0.0.1:5055".into(),
            mqtt_url: String::new(),
            mqtt_queue: 4096,
            sets_online: false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub auth: AuthSettings,
    pub store: StoreSettings,
    pub demo: DemoSettings,
    pub dashboard: DashboardSettings,
    pub rate_limit: RateLimitSettings,
    pub ingest: IngestSettings,
    pub webhooks: crate::webhooks::WebhookSettings,
    pub timers: TimersConfig,
    pub dispatch: DispatchConfig,
    pub gps: GpsConfig,
    pub retention: RetentionConfig,
    pub share: crate::share::ShareSettings,
    pub otel: crate::otel::OtelSettings,
    /// Several engine nodes sharing one city (docs/cluster.md); off by default.
    pub cluster: ClusterConfig,
}

impl Settings {
    /// Reads `path` (optional if it is the default `config.toml`), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Settings, String> {
        let mut b = config::Config::builder();
        match path {
            Some(p) => b = b.add_source(config::File::from(p).required(true)),
            None => b = b.add_source(config::File::with_name("config.toml").required(false)),
        }
        b = b.add_source(
            config::Environment::with_prefix("DISPATCH")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.allowed_origins"),
        );
        Self::build(b)
    }

    /// Settings from the text of a config file alone (no environment), read and validated
    /// as [`Settings::load`] reads a file.
    pub fn from_toml(text: &str) -> Result<Settings, String> {
        Self::build(
            config::Config::builder()
                .add_source(config::File::from_str(text, config::FileFormat::Toml)),
        )
    }

    fn build(b: config::ConfigBuilder<config::builder::DefaultState>) -> Result<Settings, String> {
        let s: Settings = b
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| format!("configuration: {e}"))?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), String> {
        let t = &self.timers;
        for (k, v) in [
            ("timers.merchant_accept_s", t.merchant_accept_s),
            ("timers.offer_ttl_s", t.offer_ttl_s),
            ("timers.dispatch_remind_s", t.dispatch_remind_s),
            ("timers.pickup_late_s", t.pickup_late_s),
            ("timers.delivery_timeout_s", t.delivery_timeout_s),
            ("timers.rider_silent_s", t.rider_silent_s),
            ("timers.rider_lost_s", t.rider_lost_s),
            ("dispatch.speed_mps", self.dispatch.speed_mps),
            ("dispatch.initial_radius_m", self.dispatch.initial_radius_m),
            ("dispatch.max_radius_m", self.dispatch.max_radius_m),
            ("dispatch.round_s", self.dispatch.round_s),
            ("gps.max_speed_mps", self.gps.max_speed_mps),
            ("retention.final_s", self.retention.final_s),
            ("auth.token_ttl_s", self.auth.token_ttl_s),
            ("auth.hash_memory_idle_s", self.auth.hash_memory_idle_s),
            ("auth.login_delay_s", self.auth.login_delay_s),
            ("auth.login_delay_max_s", self.auth.login_delay_max_s),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{k} must be a positive number, got {v}"));
            }
        }
        self.share.validate()?;
        self.otel.validate()?;
        if self.dispatch.max_radius_m < self.dispatch.initial_radius_m {
            return Err("dispatch.max_radius_m must be >= dispatch.initial_radius_m".into());
        }
        if !self.ingest.mqtt_url.is_empty() {
            crate::ingest::mqtt::options(&self.ingest.mqtt_url)?;
        }
        self.webhooks.validate()?;
        if self.ingest.mqtt_queue == 0 {
            return Err("ingest.mqtt_queue must be at least 1".into());
        }
        match self.store.backend.as_str() {
            "memory" => {}
            "redis" => {
                // One URL (a plain Redis) or comma-separated seeds (a Redis Cluster).
                self.store.redis_config().check()?;
                if !(self.store.group_commit_linger_ms.is_finite()
                    && (0.0..=1000.0).contains(&self.store.group_commit_linger_ms))
                {
                    return Err("store.group_commit_linger_ms must be 0..1000".into());
                }
            }
            other => {
                return Err(format!(
                    "store.backend {other:?} is unknown; use \"memory\" or \"redis\""
                ))
            }
        }
        self.cluster.validate()?;
        if self.cluster.enabled && self.store.backend != "redis" {
            return Err(format!(
                "cluster.enabled needs store.backend = \"redis\" (the nodes share their \
                 state and leases through it), not {:?}",
                self.store.backend
            ));
        }
        Ok(())
    }

    pub fn engine_config(&self) -> EngineConfig {
        let mut timers = self.timers.clone();
        if self.demo.enabled && self.demo.fast_timers {
            dispatch_sim::demo::cap_timers(&mut timers);
        }
        EngineConfig {
            timers,
            dispatch: self.dispatch.clone(),
            gps: self.gps.clone(),
            retention: self.retention.clone(),
            matcher_own_arbiter: true,
            event_bus_capacity: 65_536,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_caps_timers_but_keeps_shorter_ones() {
        let mut s = Settings::default();
        s.timers.merchant_accept_s = 2.0;
        let t = s.engine_config().timers;
        assert_eq!(t.merchant_accept_s, 2.0);
        assert_eq!(t.dispatch_remind_s, 120.0);
        assert_eq!(t.offer_ttl_s, 30.0);
        s.demo.enabled = false;
        assert_eq!(s.engine_config().timers.dispatch_remind_s, 600.0);
    }

    #[test]
    fn validation_refuses_nonsense() {
        let mut s = Settings::default();
        assert!(s.validate().is_ok());
        s.timers.offer_ttl_s = 0.0;
        assert!(s.validate().is_err());
        let mut s = Settings::default();
        s.dispatch.max_radius_m = 10.0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn the_cluster_section_is_off_by_default_and_checked() {
        // config.toml documents the defaults.
        let s = Settings::from_toml(include_str!("../config.toml")).unwrap();
        assert_eq!(s.cluster, ClusterConfig::default());
        assert!(!s.cluster.enabled);
        let on = "[cluster]\nenabled = true\nnode_id = \"n-1\"\nlease_ttl_ms = 900\n\
                  lease_renew_ms = 300\n";
        let err = Settings::from_toml(on).unwrap_err();
        assert!(
            err.contains("cluster.enabled") && err.contains("redis"),
            "{err}"
        );
        let s = Settings::from_toml(&format!("{on}[store]\nbackend = \"redis\"\n")).unwrap();
        assert_eq!(
            (
                s.cluster.node_id(),
                s.cluster.lease_ttl_ms,
                s.cluster.lease_renew_ms
            ),
            ("n-1".to_string(), 900, 300)
        );
        let slow = Settings::from_toml("[cluster]\nlease_ttl_ms = 1000\nlease_renew_ms = 500\n");
        assert!(slow.unwrap_err().contains("under half"));
        let res = Settings::from_toml("[cluster]\nzone_resolution = 20\n");
        assert!(res.unwrap_err().contains("cluster.zone_resolution"));
    }

    #[test]
    fn the_redis_url_takes_one_url_or_cluster_seeds() {
        let mut s = Settings::default();
        s.store.backend = "redis".into();
        assert!(s.validate().is_ok());
        s.store.redis_url = "redis://10.0.0.1:7001,redis://10.0.0.2:7001".into();
        assert!(s.validate().is_ok());
        s.store.redis_url = "redis://10.0.0.1:7001,10.0.0.2:7001".into();
        let err = s.validate().unwrap_err();
        assert!(
            err.contains("cluster seed \"10.0.0.2:7001\" must start with redis://"),
            "{err}"
        );
        s.store.redis_url = "localhost:6379".into();
        assert!(s
            .validate()
            .unwrap_err()
            .contains("must start with redis://"));
    }

    #[test]
    fn the_dispatch_policy_is_read_and_an_unknown_one_refused() {
        let dir = std::env::temp_dir().join(format!("dispatchd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let batch = file(
            "batch.toml",
            "[dispatch]\npolicy = \"batch\"\nround_s = 10\n",
        );
        let s = Settings::load(Some(&batch)).unwrap();
        assert_eq!(s.ingest.osmand_bind, "127.0.0.1:5055", "the default");
        assert!(!s.ingest.sets_online);
        assert_eq!(
            s.engine_config().dispatch.policy,
            dispatch_actors::config::Policy::Batch
        );
        assert_eq!(s.engine_config().dispatch.round_s, 10.0);
        let odd = file("odd.toml", "[dispatch]\npolicy = \"fastest\"\n");
        let err = Settings::load(Some(&odd)).unwrap_err();
        assert!(err.contains("fastest") && err.contains("batch"), "{err}");
        let mqtt = file("mqtt.toml", "[ingest]\nmqtt_url = \"ftp://x\"\n");
        assert!(Settings::load(Some(&mqtt))
            .unwrap_err()
            .contains("mqtt_url"));
        let zero = file("zero.toml", "[dispatch]\nround_s = 0\n");
        assert!(Settings::load(Some(&zero)).unwrap_err().contains("round_s"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
