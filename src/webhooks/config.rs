//! The `[webhooks]` section (config.toml documents each key).

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// Attempts per delivery, the first included; after the last it is a dead letter.
    pub max_attempts: u32,
    /// The wait before the second attempt; it doubles per attempt (with jitter)...
    pub backoff_base_ms: u64,
    /// ...up to this.
    pub backoff_max_ms: u64,
    /// One attempt (connect, send, answer) longer than this failed.
    pub timeout_ms: u64,
    /// Deliveries waiting per subscription; beyond, new events for it are dropped
    /// (counted in `dispatch_webhook_deliveries_total{outcome="dropped"}`).
    pub queue_max: usize,
    /// Dead letters kept (all subscriptions); beyond, the oldest goes (`evicted`).
    pub dead_letters_max: usize,
    /// Subscriptions at most.
    pub max_subscriptions: usize,
    /// Allow URLs on loopback, private, link-local and other non-public addresses. Off by
    /// default: a webhook URL is a request the server makes on a client's behalf (SSRF).
    pub allow_private: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_base_ms: 1_000,
            backoff_max_ms: 600_000,
            timeout_ms: 10_000,
            queue_max: 10_000,
            dead_letters_max: 10_000,
            max_subscriptions: 100,
            allow_private: false,
        }
    }
}

impl WebhookSettings {
    pub fn validate(&self) -> Result<(), String> {
        for (k, v) in [
            ("webhooks.max_attempts", u64::from(self.max_attempts)),
            ("webhooks.backoff_base_ms", self.backoff_base_ms),
            ("webhooks.timeout_ms", self.timeout_ms),
            ("webhooks.queue_max", self.queue_max as u64),
            ("webhooks.dead_letters_max", self.dead_letters_max as u64),
            ("webhooks.max_subscriptions", self.max_subscriptions as u64),
        ] {
            if v == 0 {
                return Err(format!("{k} must be at least 1"));
            }
        }
        if self.backoff_max_ms < self.backoff_base_ms {
            return Err("webhooks.backoff_max_ms must be >= webhooks.backoff_base_ms".into());
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused() {
        assert!(WebhookSettings::default().validate().is_ok());
        let zero = WebhookSettings {
            max_attempts: 0,
            ..Default::default()
        };
        assert!(zero.validate().unwrap_err().contains("max_attempts"));
        let upside_down = WebhookSettings {
            backoff_base_ms: 10,
            backoff_max_ms: 5,
            ..Default::default()
        };
        assert!(upside_down
            .validate()
            .unwrap_err()
            .contains("backoff_max_ms"));
    }
}
