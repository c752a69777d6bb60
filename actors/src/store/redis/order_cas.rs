//! Order writes by compare-and-set: a Lua script refuses the write when another writer
//! (another engine process) has moved the order past the version this actor took it over
//! at, so two nodes can never both move one order. A script rather than WATCH/MULTI: it
//! costs no extra round trip and pipelines with everything else in the batch.

use super::{unavailable, RedisStore};
use crate::store::{OrderRecord, StoreError};
use redis::{Cmd, Value};

/// What the order script answered, as the store's result.
pub(super) fn cas_outcome(rec: &OrderRecord, reply: Option<&Value>) -> Result<(), StoreError> {
    match reply {
        Some(Value::Int(0)) => Err(StoreError::Conflict(rec.order.order_id.to_string())),
        Some(Value::Int(3)) => {
            metrics::counter!(crate::metric_names::STORE_FENCED_WRITES_TOTAL, "by" => "lease")
                .increment(1);
            Err(StoreError::Fenced(
                rec.zone.map(|z| z.to_string()).unwrap_or_default(),
            ))
        }
        Some(Value::Int(_)) => Ok(()),
        other => Err(unavailable(format!("unexpected reply {other:?}"))),
    }
}

/// Writes an order if no other writer moved it past the version this actor took it over
/// at, and appends the events of the change to the event stream in the same step. KEYS:
/// order hash, live-order set, timers zset, event stream (all of the order's zone, one
/// slot), and for an order of a zone its lease. ARGV: order id, version, base version,
/// writer, status, final (0/1), record JSON, timer count, then (name, due_ms) pairs, then
/// the stream's MAXLEN, event count and (type, data) pairs, then (with a lease key) the
/// lease value this writer holds the zone with, then the write's sequence number last.
/// Each event entry also names its `writer` and the `lease` value (`"<node> <fence>"`,
/// empty for an order without a zone) the write was checked against, so an audit of a
/// zone's stream can see that fences never go backwards (no fenced-off node's write landed).
/// Returns 1 written, 2 skipped (this same writer already stored this write or a newer
/// one: (version, seq) not greater; its events are in the stream already), 0 conflict
/// (nothing written, no event), 3 fenced (the zone's lease is not, or no longer, this
/// writer's with this fencing number: nothing written).
pub(super) const CAS_ORDER_LUA: &str = r#"
if #KEYS == 5 and redis.call('GET', KEYS[5]) ~= ARGV[#ARGV - 1] then return 3 end
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
local lease = ''
if #KEYS == 5 then lease = ARGV[#ARGV - 1] end
for j = 1, tonumber(ARGV[e + 1]) do
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[e], '*',
    'type', ARGV[e + 2 * j], 'data', ARGV[e + 2 * j + 1],
    'writer', ARGV[4], 'lease', lease)
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
    /// Where an order of a zone is found from its id alone (`order_zone:<id>`), and its
    /// zone listed in `zones` (recovery reads the orders of every listed zone): written
    /// with the order's first write. Nothing for an order without a zone.
    pub(super) fn order_zone_cmds(&self, rec: &OrderRecord) -> Vec<Cmd> {
        let Some(zone) = rec.zone else {
            return Vec::new();
        };
        let mut set = redis::cmd("SET");
        set.arg(self.keys.order_zone(rec.order.order_id.as_str()))
            .arg(zone.to_string());
        let mut add = redis::cmd("SADD");
        add.arg(self.keys.zones()).arg(zone.to_string());
        vec![set, add]
    }

    /// The `EVALSHA` of one order write. Its timers and open offers' expiry also go into the
    /// `timers` sorted set (by due time, for operators: docs/operations.md); recovery reads
    /// them from the record itself. An order of a zone is written only while this store
    /// holds the zone (`Fenced` otherwise, nothing sent), and the script checks the lease.
    pub(super) fn order_cmd(
        &self,
        rec: &OrderRecord,
        events: &[(String, String)],
    ) -> Result<Cmd, StoreError> {
        let o = &rec.order;
        let claim = rec.zone.map(|z| self.lease_claim(z)).transpose()?;
        let data = serde_json::to_string(rec).map_err(|e| unavailable(format!("encode: {e}")))?;
        let zone = rec.zone;
        let mut c = redis::cmd("EVALSHA");
        c.arg(cas_sha())
            .arg(if zone.is_some() { 5 } else { 4 })
            .arg(self.keys.order(zone, o.order_id.as_str()))
            .arg(self.keys.scoped(zone, "orders:live"))
            .arg(self.keys.scoped(zone, "timers"))
            .arg(self.keys.scoped(zone, "events"));
        if let Some(z) = zone {
            c.arg(self.keys.scoped(Some(z), "lease"));
        }
        c.arg(o.order_id.as_str())
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
        if let Some(claim) = claim {
            c.arg(claim);
        }
        c.arg(rec.seq);
        Ok(c)
    }
}
