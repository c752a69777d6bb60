//! Rider positions: the most frequent write by far, so they skip the writer queue. The
//! latest fix per rider is kept in memory and flushed every `position_flush`; a rider
//! reporting ten times between flushes costs one write, and an outage costs nothing but
//! staleness (the newest fix wins when Redis is back).

use super::config::RedisConfig;
use super::health::Status;
use super::RedisStore;
use crate::domain::{GeoPoint, RiderId};
use crate::metric_names;
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

/// Latest fix per rider not yet written: position and its time (ms).
pub(super) type Positions = Mutex<HashMap<RiderId, (GeoPoint, u64)>>;

/// Keeps `at` unless a newer fix of this rider is already waiting (fixes can arrive out of
/// order).
pub(super) fn keep_latest(positions: &Positions, rider: &RiderId, at: GeoPoint, ts_ms: u64) {
    let mut map = positions.lock();
    let newer = map.get(rider).is_some_and(|cur| cur.1 > ts_ms);
    if !newer {
        map.insert(rider.clone(), (at, ts_ms));
    }
}

/// What the flusher holds of the store: weakly, so the task ends once the store is dropped.
pub(super) struct WeakStore {
    cfg: Arc<RedisConfig>,
    conn: ConnectionManager,
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

/// Every tick: the latest position of each rider that moved, as one `HSET` (exact, with
/// the fix time) and one `GEOADD` (for `GEOSEARCH` by ordinary Redis tools). Kept in
/// memory while Redis is away; the newest wins when it is back.
pub(super) async fn position_flusher(w: WeakStore) {
    let hash = format!("{}positions", w.cfg.prefix);
    let geo = format!("{}geo", w.cfg.prefix);
    let mut conn = w.conn.clone();
    let mut tick = tokio::time::interval(w.cfg.position_flush);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(status), Some(positions)) = (w.status.upgrade(), w.positions.upgrade()) else {
            return;
        };
        if !status.healthy.load(Ordering::SeqCst) {
            continue;
        }
        let batch: HashMap<RiderId, (GeoPoint, u64)> = std::mem::take(&mut *positions.lock());
        if batch.is_empty() {
            continue;
        }
        let mut pipe = redis::pipe();
        for chunk in batch.iter().collect::<Vec<_>>().chunks(1000) {
            let mut h = redis::cmd("HSET");
            h.arg(&hash);
            let mut g = redis::cmd("GEOADD");
            g.arg(&geo);
            for (r, (p, ts)) in chunk {
                h.arg(r.as_str())
                    .arg(format!("{},{},{}", p.lat(), p.lon(), ts));
                // GEOADD refuses latitudes beyond ±85.05112878 (Web Mercator).
                if p.lat().abs() <= 85.05 {
                    g.arg(p.lon()).arg(p.lat()).arg(r.as_str());
                }
            }
            pipe.add_command(h).ignore();
            if g.args_iter().count() > 2 {
                pipe.add_command(g).ignore();
            }
        }
        let n = batch.len();
        let res = tokio::time::timeout(w.cfg.op_timeout, pipe.query_async::<()>(&mut conn)).await;
        if matches!(res, Ok(Ok(()))) {
            metrics::counter!(metric_names::STORE_POSITIONS_WRITTEN_TOTAL).increment(n as u64);
        } else {
            // Put them back unless a newer fix arrived meanwhile.
            let mut map = positions.lock();
            for (r, v) in batch {
                let newer = map.get(&r).is_some_and(|cur| cur.1 >= v.1);
                if !newer {
                    map.insert(r, v);
                }
            }
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
