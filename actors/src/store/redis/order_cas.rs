//! Order writes by compare-and-set: a Lua script refuses the write when another writer
//! (another engine process) has moved the order past the version this actor took it over
//! at, so two nodes can never both move one order. A script rather than WATCH/MULTI: it
//! costs no extra round trip and pipelines with everything else in the batch.

use super::{unavailable, RedisStore};
use crate::store::{OrderRecord, StoreError};
use redis::Cmd;

/// Writes an order if no other writer moved it past the version this actor took it over
/// at, and appends the events of the change to the event stream in the same step. KEYS:
/// order hash, live-order set, timers zset, event stream. ARGV: order id, version, base
/// version, writer, status, final (0/1), record JSON, timer count, then (name, due_ms)
/// pairs, then the stream's MAXLEN, event count and (type, data) pairs, then the write's
/// sequence number last. Returns 1 written, 2 skipped (this same writer already stored
/// this write or a newer one: (version, seq) not greater; its events are in the stream
/// already), 0 conflict (nothing written, no event).
pub(super) const CAS_ORDER_LUA: &str = r#"
local cur = redis.call('HMGET', KEYS[1], 'version', 'writer', 'timers', 'seq')
local v = tonumber(ARGV[2])
local seq = tonumber(ARGV[#ARGV])
if cur[1] then
  local sv = tonumber(cur[1])
  if cur[2] == ARGV[4] then
    local sseq = tonumber(cur[4]) or 0
    if sv > v or (sv == v and sseq >= seq) then return 2 end
  elseif sv ~= tonumber(ARGV[3]) then
    return 0
  end
end
if cur[3] and cur[3] ~= '' then
  for m in string.gmatch(cur[3], '[^ ]+') do redis.call('ZREM', KEYS[3], m) end
end
local members = {}
local n = tonumber(ARGV[8])
if ARGV[6] == '1' then
  redis.call('SREM', KEYS[2], ARGV[1])
else
  redis.call('SADD', KEYS[2], ARGV[1])
  for i = 1, n do
    local m = ARGV[1] .. '|' .. ARGV[7 + 2 * i]
    redis.call('ZADD', KEYS[3], ARGV[8 + 2 * i], m)
    members[#members + 1] = m
  end
end
redis.call('HSET', KEYS[1], 'version', ARGV[2], 'writer', ARGV[4], 'status', ARGV[5],
  'data', ARGV[7], 'timers', table.concat(members, ' '), 'seq', ARGV[#ARGV])
local e = 9 + 2 * n
for j = 1, tonumber(ARGV[e + 1]) do
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[e], '*',
    'type', ARGV[e + 2 * j], 'data', ARGV[e + 2 * j + 1])
end
return 1
"#;

/// The script is sent by hash (`EVALSHA`) so a pipeline does not carry its text each time;
/// the writer loads it in the same pipeline whenever the connection may be new.
fn cas_sha() -> &'static str {
    use std::sync::OnceLock;
    static SHA: OnceLock<String> = OnceLock::new();
    SHA.get_or_init(|| redis::Script::new(CAS_ORDER_LUA).get_hash().to_string())
}

impl RedisStore {
    /// The `EVALSHA` of one order write. Its timers and open offers' expiry also go into the
    /// `timers` sorted set (by due time, for operators: docs/operations.md); recovery reads
    /// them from the record itself.
    pub(super) fn order_cmd(
        &self,
        rec: &OrderRecord,
        events: &[(String, String)],
    ) -> Result<Cmd, StoreError> {
        let o = &rec.order;
        let data = serde_json::to_string(rec).map_err(|e| unavailable(format!("encode: {e}")))?;
        let mut c = redis::cmd("EVALSHA");
        c.arg(cas_sha())
            .arg(4)
            .arg(self.key(&format!("order:{}", o.order_id)))
            .arg(self.key("orders:live"))
            .arg(self.key("timers"))
            .arg(self.key("events"))
            .arg(o.order_id.as_str())
            .arg(o.version)
            .arg(rec.base_version)
            .arg(&*self.node)
            .arg(o.status.as_str())
            .arg(if o.status.is_final() { "1" } else { "0" })
            .arg(data);
        let mut timers: Vec<(String, u64)> = rec
            .timers
            .iter()
            .map(|t| {
                let name = serde_json::to_value(t.timer)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                (name, t.due_ms)
            })
            .collect();
        for o in &rec.offers.open {
            timers.push((
                format!("offer_ttl:{}", o.offer.offer_id),
                o.offer.expires_at_ms,
            ));
        }
        c.arg(timers.len());
        for (name, due) in timers {
            c.arg(name).arg(due);
        }
        c.arg(self.cfg.event_stream_maxlen).arg(events.len());
        for (kind, data) in events {
            c.arg(kind).arg(data);
        }
        c.arg(rec.seq);
        Ok(c)
    }
}
