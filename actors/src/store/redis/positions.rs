//! Rider positions: the most frequent write by far, so they skip the writer queue. The
//! latest fix per rider is kept in memory and flushed every `position_flush`; a rider
//! reporting ten times between flushes costs one write, and an outage costs nothing but
//! staleness (the newest fix wins when Redis is back).
//!
//! Each waiting position remembers when the engine accepted the oldest fix it stands for,
//! so once Redis acknowledges the write, `dispatch_store_position_lag_seconds` says how
//! long Redis trailed the engine for that rider (a fix superseded before it was written
//! counts from its own acceptance, not the newer one's).

use super::config::RedisConfig;
use super::conn::StoreConn;
use super::health::Status;
use super::RedisStore;
use crate::domain::{GeoPoint, RiderId};
use crate::metric_names;
use parking_lot::Mutex;
use redis::Cmd;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;

/// The latest fix of one rider not yet written.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingFix {
    pub(super) at: GeoPoint,
    pub(super) ts_ms: u64,
    /// When the engine accepted the oldest fix of this rider not yet in Redis.
    pub(super) accepted: Instant,
}

/// Positions waiting for the flusher, and whether a pipeline of them is on its way:
/// together under one lock, so [`Positions::settled`] never sees a batch that is neither
/// here nor written.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) map: HashMap<RiderId, PendingFix>,
    in_flight: bool,
}

pub(super) type Positions = Mutex<Pending>;

/// Keeps `at` unless a newer fix of this rider is already waiting (fixes can arrive out of
/// order); a rider already waiting keeps its earlier acceptance time.
pub(super) fn keep_latest(positions: &Positions, rider: &RiderId, at: GeoPoint, ts_ms: u64) {
    let now = Instant::now();
    let mut p = positions.lock();
    match p.map.get_mut(rider) {
        Some(cur) if cur.ts_ms > ts_ms => {}
        Some(cur) => {
            cur.at = at;
            cur.ts_ms = ts_ms;
        }
        None => {
            p.map.insert(
                rider.clone(),
                PendingFix {
                    at,
                    ts_ms,
                    accepted: now,
                },
            );
        }
    }
}

/// Nothing waiting and nothing on its way: every position recorded so far is in Redis.
pub(super) fn settled(positions: &Positions) -> bool {
    let p = positions.lock();
    p.map.is_empty() && !p.in_flight
}

/// What the flusher holds of the store: weakly, so the task ends once the store is dropped.
pub(super) struct WeakStore {
    cfg: Arc<RedisConfig>,
    conn: StoreConn,
    status: Weak<Status>,
    positions: Weak<Positions>,
}

impl RedisStore {
    pub(super) fn clone_weak(&self) -> WeakStore {
        WeakStore {
            cfg: self.cfg.clone(),
            conn: self.conn.clone(),
            status: Arc::downgrade(&self.status),
            positions: Arc::downgrade(&self.positions),
        }
    }
}

/// The `positions` hash value of a fix: `lat,lon,ts_ms` (read back by `parse_position`).
pub(super) fn position_value(p: GeoPoint, ts_ms: u64) -> String {
    format!("{},{},{}", p.lat(), p.lon(), ts_ms)
}

/// The writes of many positions: per 1,000 riders one `HSET` into `hash` (exact, with the
/// fix time) and one `GEOADD` into `geo` (for `GEOSEARCH` by ordinary Redis tools).
pub(super) fn position_cmds<'a>(
    hash: &str,
    geo: &str,
    fixes: impl IntoIterator<Item = (&'a RiderId, GeoPoint, u64)>,
) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    let fixes: Vec<_> = fixes.into_iter().collect();
    for chunk in fixes.chunks(1000) {
        let mut h = redis::cmd("HSET");
        h.arg(hash);
        let mut g = redis::cmd("GEOADD");
        g.arg(geo);
        let mut in_geo = 0;
        for (r, p, ts) in chunk {
            h.arg(r.as_str()).arg(position_value(*p, *ts));
            // GEOADD refuses latitudes beyond ±85.05112878 (Web Mercator).
            if p.lat().abs() <= 85.05 {
                g.arg(p.lon()).arg(p.lat()).arg(r.as_str());
                in_geo += 1;
            }
        }
        cmds.push(h);
        if in_geo > 0 {
            cmds.push(g);
        }
    }
    cmds
}

/// Every tick: the latest position of each rider that moved. Kept in memory while Redis
/// is away; the newest wins when it is back.
pub(super) async fn position_flusher(w: WeakStore) {
    let hash = format!("{}positions", w.cfg.prefix);
    let geo = format!("{}geo", w.cfg.prefix);
    let mut conn = w.conn.clone();
    let mut tick = tokio::time::interval(w.cfg.position_flush);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let lag = metrics::histogram!(metric_names::STORE_POSITION_LAG_SECONDS);
    let round_trip = metrics::histogram!(metric_names::STORE_WRITE_SECONDS, "record" => "position");
    loop {
        tick.tick().await;
        let (Some(status), Some(positions)) = (w.status.upgrade(), w.positions.upgrade()) else {
            return;
        };
        if !status.healthy.load(Ordering::SeqCst) {
            continue;
        }
        let batch: HashMap<RiderId, PendingFix> = {
            let mut p = positions.lock();
            if p.map.is_empty() {
                continue;
            }
            // Taken and marked on its way under one lock: `settled` sees one or the other.
            p.in_flight = true;
            std::mem::take(&mut p.map)
        };
        let mut pipe = redis::pipe();
        for c in position_cmds(&hash, &geo, batch.iter().map(|(r, f)| (r, f.at, f.ts_ms))) {
            pipe.add_command(c).ignore();
        }
        let n = batch.len();
        let sent = Instant::now();
        let res = tokio::time::timeout(w.cfg.op_timeout, pipe.query_async::<()>(&mut conn)).await;
        if matches!(res, Ok(Ok(()))) {
            round_trip.record(sent.elapsed().as_secs_f64());
            for f in batch.values() {
                lag.record(f.accepted.elapsed().as_secs_f64());
            }
            metrics::counter!(metric_names::STORE_POSITIONS_WRITTEN_TOTAL).increment(n as u64);
            positions.lock().in_flight = false;
        } else {
            // Put them back unless a newer fix arrived meanwhile; either way the rider has
            // been waiting since the older acceptance.
            let mut p = positions.lock();
            for (r, v) in batch {
                match p.map.get_mut(&r) {
                    Some(cur) if cur.ts_ms >= v.ts_ms => {
                        cur.accepted = cur.accepted.min(v.accepted);
                    }
                    cur => {
                        let accepted = cur.map_or(v.accepted, |c| c.accepted.min(v.accepted));
                        p.map.insert(r, PendingFix { accepted, ..v });
                    }
                }
            }
            p.in_flight = false;
            drop(p);
            status.set_healthy(false);
        }
    }
}

/// Reads one `positions` hash value, `lat,lon,ts_ms` (recovery).
pub(super) fn parse_position(s: &str) -> Option<(GeoPoint, u64)> {
    let mut it = s.split(',');
    let lat: f64 = it.next()?.parse().ok()?;
    let lon: f64 = it.next()?.parse().ok()?;
    let ts: u64 = it.next()?.parse().ok()?;
    Some((GeoPoint::new(lat, lon).ok()?, ts))
}
