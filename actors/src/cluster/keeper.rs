//! The lease keeper: a task that every `cluster.lease_renew_ms` announces the node, reads
//! the live nodes, the zones and their leases, runs the [plan](super::plan), takes, renews
//! and releases leases, and publishes the zones this node holds with their fencing
//! numbers on a watch channel. Whatever acts on a zone follows that channel, and only it.
//!
//! A lease is published only while it is surely still this node's in Redis: until the
//! send time of its last successful renewal (or acquisition) plus the TTL, less a margin.
//! Redis starts the TTL when it runs the script, after the send, so by then the lease has
//! not lapsed yet. When that time comes without a newer renewal answered (Redis away,
//! paused, or slow), the keeper drops the zone from the published set itself, even while
//! a call to Redis is still hanging: a node that cannot renew stops acting on a zone before
//! another can take it. (Writes still carry the fence, so one already in flight is refused.)
//!
//! A graceful [stop](KeeperHandle::stop) unpublishes every zone, releases every lease and
//! withdraws the node, so the new owners take over at their next round instead of after the
//! TTL. Dropping the handle aborts the task without releasing anything (as a crash would):
//! the receivers then see the channel closed, which means "holds nothing".

use super::plan::{Plan, View};
use crate::config::ClusterConfig;
use crate::domain::ZoneId;
use crate::metric_names as m;
use crate::store::redis::Leases;
use crate::store::StoreError;
use futures_util::future::join_all;
use redis::aio::ConnectionLike;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The zones this node holds, each with the fencing number it took the zone with.
pub type HeldZones = BTreeMap<ZoneId, u64>;

/// What a keeper needs to know about its node.
#[derive(Debug, Clone)]
pub struct KeeperSettings {
    /// The node id in leases and announcements (inside an engine: the store's
    /// `RedisStore::node_id()`, the id its order writes are fenced with).
    pub node: String,
    /// Shown to operators in the node's announcement (its public address).
    pub info: String,
    pub ttl: Duration,
    pub renew: Duration,
}

impl KeeperSettings {
    pub fn new(node: impl Into<String>, cfg: &ClusterConfig) -> KeeperSettings {
        KeeperSettings {
            node: node.into(),
            info: cfg.advertise.clone(),
            ttl: cfg.lease_ttl(),
            renew: cfg.lease_renew(),
        }
    }

    fn ttl_ms(&self) -> u64 {
        self.ttl.as_millis().max(1) as u64
    }

    /// How long after sending a successful renewal the lease is surely still ours: the TTL
    /// less 1/8 of it, for Redis's clock and ours running at slightly different rates and
    /// for this task being woken late on a busy machine.
    fn trusted_for(&self) -> Duration {
        self.ttl - self.ttl / 8
    }
}

/// The running keeper.
pub struct KeeperHandle {
    held: watch::Receiver<HeldZones>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl KeeperHandle {
    /// The zones this node holds, as they change.
    pub fn held(&self) -> watch::Receiver<HeldZones> {
        self.held.clone()
    }

    /// Stops acting on every zone, releases every lease and withdraws the node.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for KeeperHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts a keeper for `settings.node` over `leases`. Must be called inside a tokio
/// runtime.
pub fn spawn<C>(leases: Leases<C>, settings: KeeperSettings) -> KeeperHandle
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    let (tx, held) = watch::channel(HeldZones::new());
    let (stop_tx, stop_rx) = oneshot::channel();
    let keeper = Keeper {
        leases,
        s: settings,
        held: BTreeMap::new(),
        tx,
        published: 0,
        reachable: true,
    };
    KeeperHandle {
        held,
        stop: Some(stop_tx),
        task: Some(tokio::spawn(keeper.run(stop_rx))),
    }
}

/// One held lease.
struct Lease {
    fence: u64,
    /// Until when it is surely still ours in Redis.
    trusted_until: Instant,
}

struct Keeper<C> {
    leases: Leases<C>,
    s: KeeperSettings,
    held: BTreeMap<ZoneId, Lease>,
    tx: watch::Sender<HeldZones>,
    /// How many zones the gauge counts for this keeper.
    published: usize,
    /// Whether the last round reached Redis (logged on change only).
    reachable: bool,
}

/// Runs when the task ends, also when it is aborted: this keeper's zones leave the gauge
/// (the receivers see the channel closed).
impl<C> Drop for Keeper<C> {
    fn drop(&mut self) {
        metrics::gauge!(m::CLUSTER_LEASES_HELD).decrement(self.published as f64);
    }
}

fn timed_out() -> StoreError {
    StoreError::Unavailable("redis: timed out".into())
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl<C> Keeper<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        let mut next = Instant::now();
        loop {
            // Until the next round, drop leases as their trust runs out.
            while Instant::now() < next {
                let wake = self.next_expiry().map_or(next, |e| e.min(next));
                tokio::select! {
                    _ = &mut stop => return self.shutdown().await,
                    _ = tokio::time::sleep_until(wake) => self.expire(),
                }
            }
            next = Instant::now() + self.s.renew;
            self.round().await;
        }
    }

    /// Runs one call to Redis (bounded by the renewal period), dropping leases whose trust
    /// runs out while it waits.
    async fn call<T>(
        &mut self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let call = tokio::time::timeout(self.s.renew, call);
        tokio::pin!(call);
        loop {
            tokio::select! {
                r = &mut call => return r.unwrap_or_else(|_| Err(timed_out())),
                _ = sleep_until_some(self.next_expiry()) => self.expire(),
            }
        }
    }

    fn next_expiry(&self) -> Option<Instant> {
        self.held.values().map(|l| l.trusted_until).min()
    }

    /// Drops every lease whose trust ran out.
    fn expire(&mut self) {
        let now = Instant::now();
        let before = self.held.len();
        self.held.retain(|zone, l| {
            let keep = l.trusted_until > now;
            if !keep {
                tracing::warn!(%zone, fence = l.fence, "zone lease not renewed in time: stopped acting on it");
            }
            keep
        });
        let lost = before - self.held.len();
        if lost > 0 {
            metrics::counter!(m::CLUSTER_LEASE_LOSSES_TOTAL, "why" => "unrenewed")
                .increment(lost as u64);
            self.publish();
        }
    }

    fn publish(&mut self) {
        let now: HeldZones = self.held.iter().map(|(z, l)| (*z, l.fence)).collect();
        let n = now.len();
        self.tx.send_if_modified(|cur| {
            let changed = *cur != now;
            *cur = now;
            changed
        });
        metrics::gauge!(m::CLUSTER_LEASES_HELD).increment(n as f64 - self.published as f64);
        self.published = n;
    }

    fn note_reachable(&mut self, ok: bool, e: Option<&StoreError>) {
        if ok != self.reachable {
            self.reachable = ok;
            match e {
                Some(e) => tracing::warn!(node = %self.s.node, "zone leases: {e}"),
                None => tracing::info!(node = %self.s.node, "zone leases: redis answers again"),
            }
        }
    }

    /// What this round should do: the plan over what Redis shows, or, when it cannot be
    /// read, renewing what is held (another slot's master may still answer).
    async fn read_plan(&mut self) -> Plan {
        let leases = self.leases.clone();
        let s = self.s.clone();
        let read = async {
            leases.announce(&s.node, &s.info, s.ttl_ms()).await?;
            let live = leases.live_nodes().await?;
            let zones = leases.zones().await?;
            Ok::<_, StoreError>((live, zones))
        };
        let (live, zones) = match self.call(read).await {
            Ok(r) => r,
            Err(e) => return self.renew_only(e),
        };
        let ask: Vec<ZoneId> = zones.iter().chain(self.held.keys()).copied().collect();
        let holders = match self.call(leases.holders(ask)).await {
            Ok(h) => h,
            Err(e) => return self.renew_only(e),
        };
        self.note_reachable(true, None);
        let live: Vec<String> = live.into_keys().collect();
        let held: HeldZones = self.held.iter().map(|(z, l)| (*z, l.fence)).collect();
        View {
            me: &s.node,
            zones: &zones,
            live: &live,
            held: &held,
            holders: &holders,
        }
        .plan()
    }

    fn renew_only(&mut self, e: StoreError) -> Plan {
        self.note_reachable(false, Some(&e));
        Plan {
            renew: self.held.iter().map(|(z, l)| (*z, l.fence)).collect(),
            ..Plan::default()
        }
    }

    async fn round(&mut self) {
        let plan = self.read_plan().await;
        let leases = self.leases.clone();
        let s = self.s.clone();
        let ttl_ms = s.ttl_ms();
        for zone in &plan.lost {
            if let Some(l) = self.held.remove(zone) {
                tracing::warn!(%zone, fence = l.fence, "zone lease taken over: stopped acting on it");
                metrics::counter!(m::CLUSTER_LEASE_LOSSES_TOTAL, "why" => "taken").increment(1);
            }
        }
        // Stop acting on a zone before letting it go.
        for (zone, _) in &plan.release {
            if self.held.remove(zone).is_some() {
                tracing::info!(%zone, "zone lease released: another node should own it");
                metrics::counter!(m::CLUSTER_LEASE_RELEASES_TOTAL).increment(1);
            }
        }
        self.publish();
        let releases = plan
            .release
            .iter()
            .map(|(z, f)| leases.release(*z, &s.node, *f));
        // A release that fails leaves the lease to lapse: nothing to do.
        let _ = self.call(async { Ok(join_all(releases).await) }).await;

        let sent = Instant::now();
        let renewals = plan
            .renew
            .iter()
            .map(|(z, f)| async { (*z, *f, leases.renew(*z, &s.node, *f, ttl_ms).await) });
        if let Ok(answers) = self.call(async { Ok(join_all(renewals).await) }).await {
            for (zone, fence, answer) in answers {
                match answer {
                    Ok(true) => {
                        if let Some(l) = self.held.get_mut(&zone).filter(|l| l.fence == fence) {
                            l.trusted_until = sent + s.trusted_for();
                        }
                    }
                    Ok(false) => {
                        if self.held.remove(&zone).is_some() {
                            tracing::warn!(%zone, fence, "zone lease renewal refused: stopped acting on it");
                            metrics::counter!(m::CLUSTER_LEASE_LOSSES_TOTAL, "why" => "taken")
                                .increment(1);
                        }
                    }
                    // Unanswered: the lease stays trusted until its time runs out.
                    Err(_) => {}
                }
            }
        }

        let sent = Instant::now();
        let takes = plan
            .acquire
            .iter()
            .map(|z| async { (*z, leases.acquire(*z, &s.node, ttl_ms).await) });
        if let Ok(answers) = self.call(async { Ok(join_all(takes).await) }).await {
            for (zone, answer) in answers {
                if let Ok(Some(fence)) = answer {
                    tracing::info!(%zone, fence, "zone lease acquired");
                    metrics::counter!(m::CLUSTER_LEASE_ACQUISITIONS_TOTAL).increment(1);
                    self.held.insert(
                        zone,
                        Lease {
                            fence,
                            trusted_until: sent + s.trusted_for(),
                        },
                    );
                }
            }
        }
        // Anything whose trust ran out while the calls above were answered goes now.
        self.expire();
        self.publish();
    }

    /// A graceful stop: unpublish, release, withdraw.
    async fn shutdown(mut self) {
        let gone: Vec<(ZoneId, u64)> = std::mem::take(&mut self.held)
            .into_iter()
            .map(|(z, l)| (z, l.fence))
            .collect();
        self.publish();
        metrics::counter!(m::CLUSTER_LEASE_RELEASES_TOTAL).increment(gone.len() as u64);
        let leases = self.leases.clone();
        let node = self.s.node.clone();
        let releases = gone.iter().map(|(z, f)| leases.release(*z, &node, *f));
        let _ = tokio::time::timeout(self.s.renew, join_all(releases)).await;
        if let Err(e) = tokio::time::timeout(self.s.renew, leases.withdraw(&node))
            .await
            .unwrap_or_else(|_| Err(timed_out()))
        {
            tracing::warn!(%node, "withdrawing the node: {e}");
        }
        tracing::info!(%node, released = gone.len(), "zone leases released");
    }
}

#[cfg(test)]
#[path = "keeper_tests.rs"]
mod tests;
