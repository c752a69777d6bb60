//! Idempotency keys reserved before their request runs. A key holds either a response
//! (`hash\nstatus\nbody`, see records.rs) or, while its request runs, a pending marker
//! with the request's owner id; a marker is never read as a response. Each step is one
//! Lua script, so reserving, completing and releasing are atomic against other servers.
//!
//! These go straight to Redis, not through the group-commit writer: a request must know
//! at once whether the key is its own, and during an outage it answers 503 rather than
//! having its reservation kept for later.

use super::records::{decode_response, encode_response, value_string};
use super::RedisStore;
use crate::store::{Reservation, StoreError, StoredResponse};
use redis::Value;
use std::time::Duration;

const PENDING_MARKER: &str = "pending\n";

/// KEYS: the key. ARGV: marker, lease in ms. Returns 1 reserved, else what is there.
const RESERVE_LUA: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return redis.call('GET', KEYS[1])
"#;

/// KEYS: the key. ARGV: response, ttl in s. A marker (this request's, or one that lapsed
/// into it) gives way to the response; an earlier response stays. Returns what is stored.
const COMPLETE_LUA: &str = r#"
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, 8) ~= 'pending\n' then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return ARGV[1]
"#;

/// KEYS: the key. ARGV: this request's marker. Deletes it only if it is still there.
const RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

fn marker(owner: &str) -> String {
    format!("{PENDING_MARKER}{owner}")
}

impl RedisStore {
    /// Runs one of the scripts above on `key` with its arguments.
    async fn eval_on(
        &self,
        script: &str,
        key: &str,
        args: impl redis::ToRedisArgs,
    ) -> Result<Value, StoreError> {
        let mut c = redis::cmd("EVAL");
        c.arg(script).arg(1).arg(self.key(key)).arg(args);
        self.read(c).await
    }

    pub(super) async fn reserve_key(
        &self,
        key: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Reservation, StoreError> {
        let lease_ms = lease.as_millis().max(1) as u64;
        let v = self
            .eval_on(RESERVE_LUA, key, (marker(owner), lease_ms))
            .await?;
        Ok(match v {
            Value::Int(1) => Reservation::Reserved,
            other => match value_string(&other).and_then(|s| decode_response(&s)) {
                Some(r) => Reservation::Done(r),
                None => Reservation::Pending,
            },
        })
    }

    pub(super) async fn complete_key(
        &self,
        key: &str,
        resp: StoredResponse,
        ttl: Duration,
    ) -> Result<StoredResponse, StoreError> {
        let ttl_s = ttl.as_secs().max(1);
        let v = self
            .eval_on(COMPLETE_LUA, key, (encode_response(&resp), ttl_s))
            .await?;
        Ok(value_string(&v)
            .and_then(|s| decode_response(&s))
            .unwrap_or(resp))
    }

    pub(super) async fn release_key(&self, key: &str, owner: &str) -> Result<(), StoreError> {
        self.eval_on(RELEASE_LUA, key, marker(owner))
            .await
            .map(|_| ())
    }
}
