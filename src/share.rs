//! Share links, the server's side (docs/protocol.md, "Share links"): settings, the check
//! every door runs (page, REST read, socket), what a link's holder may see of the order,
//! and closing the sockets of a link that dies while they are open. The link itself and
//! its rules are `dispatch_actors::domain::share`; the records are in the store.
//!
//! A share socket is counted in [`Sockets`] under the link (`share:{link_id}`), so the caps
//! hold per link and a revocation ends them by key; it expires with the link. An order
//! that turns final while sockets are open ends them `after_final_s` later (a task per
//! such order, only while some of its links have a socket).

use crate::errors::ApiError;
use crate::sockets::Sockets;
use dispatch_actors::domain::order::{Order, OrderLine, OrderStatus, Pickup, TimelineEntry};
use dispatch_actors::domain::share::{ShareLink, SharePrivacy, ShareToken};
use dispatch_actors::domain::{GeoPoint, MerchantId, OrderId, ShareLinkId};
use dispatch_actors::events::Event;
use dispatch_actors::metric_names;
use dispatch_actors::store::Store;
use dispatch_actors::Engine;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ShareSettings {
    /// Shortest and longest life a customer may give a link, seconds.
    pub min_ttl_s: u64,
    pub max_ttl_s: u64,
    /// A link stops working this long after its order became final (delivered,
    /// cancelled, failed), seconds.
    pub after_final_s: f64,
    /// Links of one order that may be live at once (revoked and expired ones do not count).
    pub max_links_per_order: usize,
}

impl Default for ShareSettings {
    fn default() -> Self {
        Self {
            min_ttl_s: 60,
            max_ttl_s: 86_400,
            after_final_s: 1800.0,
            max_links_per_order: 10,
        }
    }
}

impl ShareSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.min_ttl_s == 0 || self.min_ttl_s > self.max_ttl_s || self.max_ttl_s > 86_400 {
            return Err(
                "share.min_ttl_s must be 1..=share.max_ttl_s, and max_ttl_s at most 86400".into(),
            );
        }
        if !(self.after_final_s.is_finite() && self.after_final_s >= 0.0) {
            return Err("share.after_final_s must be a number >= 0".into());
        }
        if self.max_links_per_order == 0 {
            return Err("share.max_links_per_order must be at least 1".into());
        }
        Ok(())
    }

    pub fn after_final_ms(&self) -> u64 {
        (self.after_final_s * 1000.0) as u64
    }
}

/// The order as a link's holder sees it: no customer or rider ids, and the ETA only
/// when the link shows the rider's position.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SharedOrder<'a> {
    pub order_id: &'a OrderId,
    pub merchant_id: &'a MerchantId,
    pub status: OrderStatus,
    pub items: &'a [OrderLine],
    pub total_cents: i64,
    pub pickup: &'a Pickup,
    pub dropoff: &'a GeoPoint,
    pub created_ms: u64,
    pub updated_ms: u64,
    pub eta_s: Option<u64>,
    pub timeline: &'a [TimelineEntry],
}

impl<'a> SharedOrder<'a> {
    pub fn of(order: &'a Order, privacy: SharePrivacy) -> Self {
        Self {
            order_id: &order.order_id,
            merchant_id: &order.merchant_id,
            status: order.status,
            items: &order.items,
            total_cents: order.total_cents,
            pickup: &order.pickup,
            dropoff: &order.dropoff,
            created_ms: order.created_ms,
            updated_ms: order.updated_ms,
            eta_s: order.eta_s.filter(|_| privacy.shows_position()),
            timeline: &order.timeline,
        }
    }
}

/// When the order became final, if it is.
pub fn final_ms(order: &Order) -> Option<u64> {
    order
        .status
        .is_final()
        .then(|| order.entered_ms(order.status).unwrap_or(order.updated_ms))
}

/// A live link, the order it shows and when it stops working.
pub struct Resolved {
    pub link: ShareLink,
    pub order: Order,
    pub closes_at_ms: u64,
}

fn count(event: &'static str) {
    metrics::counter!(metric_names::SHARE_LINKS_TOTAL, "event" => event).increment(1);
}

pub struct ShareLinks {
    pub settings: ShareSettings,
    store: Arc<dyn Store>,
    sockets: Arc<Sockets>,
    /// Open share sockets per order and link (how many each), for closing them when the
    /// order turns final.
    open: Mutex<HashMap<OrderId, HashMap<ShareLinkId, usize>>>,
}

impl ShareLinks {
    pub fn new(settings: ShareSettings, store: Arc<dyn Store>, sockets: Arc<Sockets>) -> Arc<Self> {
        Arc::new(Self {
            settings,
            store,
            sockets,
            open: Mutex::default(),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The key its sockets are counted and ended under.
    pub fn socket_key(link: &ShareLinkId) -> String {
        format!("share:{link}")
    }

    /// The link a token names: 404 for no link (or not a token at all).
    pub async fn find(&self, raw_token: &str) -> Result<ShareLink, ApiError> {
        let unknown = || {
            count("refused");
            ApiError::not_found("no such share link")
        };
        let token = ShareToken::parse(raw_token).map_err(|_| unknown())?;
        self.store
            .share_link(token.expose())
            .await?
            .ok_or_else(unknown)
    }

    /// Checks `link` against its order: 410 `gone` (with why) when it no longer works.
    pub fn check(&self, link: &ShareLink, order: &Order, now_ms: u64) -> Result<u64, ApiError> {
        link.check(now_ms, final_ms(order), self.settings.after_final_ms())
            .map_err(|dead| {
                count("refused");
                ApiError::Gone(dead.message().into())
            })
    }

    /// What every door does: the link, live, with its order.
    pub async fn resolve(&self, engine: &Engine, raw_token: &str) -> Result<Resolved, ApiError> {
        let link = self.find(raw_token).await?;
        let order = engine.order(&link.order_id).await?;
        let closes_at_ms = self.check(&link, &order, crate::auth::now_ms())?;
        count("opened");
        Ok(Resolved {
            link,
            order,
            closes_at_ms,
        })
    }

    pub fn created(&self) {
        count("created");
    }

    /// A socket was opened with a live link.
    pub fn served(&self) {
        count("opened");
    }

    /// A link was revoked: its open sockets close now.
    pub fn revoked(&self, link: &ShareLinkId) {
        count("revoked");
        self.sockets
            .end_key(&Self::socket_key(link), "share link revoked");
    }

    /// A share socket of `link` is open (call before reading the order it shows, so a
    /// final status cannot fall between the two).
    pub fn opened(&self, order: &OrderId, link: &ShareLinkId) {
        *self
            .open
            .lock()
            .entry(order.clone())
            .or_default()
            .entry(link.clone())
            .or_default() += 1;
    }

    pub fn closed(&self, order: &OrderId, link: &ShareLinkId) {
        let mut open = self.open.lock();
        if let Some(links) = open.get_mut(order) {
            if let Some(n) = links.get_mut(link) {
                *n -= 1;
                if *n == 0 {
                    links.remove(link);
                }
            }
            if links.is_empty() {
                open.remove(order);
            }
        }
    }

    /// Watches orders turn final and ends their share sockets `after_final_s` later.
    /// Stops at shutdown.
    pub fn start(self: &Arc<Self>, engine: &Engine, shutdown: watch::Receiver<bool>) {
        let mut rx = engine.subscribe();
        let me = self.clone();
        let mut stop = shutdown;
        actix_web::rt::spawn(async move {
            loop {
                let ev = tokio::select! {
                    ev = rx.recv() => ev,
                    _ = stop.wait_for(|s| *s) => break,
                };
                match ev {
                    Ok(Event::OrderChanged {
                        order,
                        previous_status,
                    }) if order.status.is_final() && previous_status != Some(order.status) => {
                        me.order_finished(&order);
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        metrics::counter!(metric_names::EVENTS_DROPPED_TOTAL, "subscriber" => "share")
                            .increment(n);
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }

    fn order_finished(self: &Arc<Self>, order: &Order) {
        let links: Vec<ShareLinkId> = match self.open.lock().get(&order.order_id) {
            Some(l) => l.keys().cloned().collect(),
            None => return,
        };
        let at_ms = final_ms(order).unwrap_or(order.updated_ms) + self.settings.after_final_ms();
        let wait = Duration::from_millis(at_ms.saturating_sub(crate::auth::now_ms()));
        let sockets = self.sockets.clone();
        actix_web::rt::spawn(async move {
            tokio::time::sleep(wait).await;
            for l in links {
                sockets.end_key(&Self::socket_key(&l), "order finished");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_refuse_nonsense() {
        assert!(ShareSettings::default().validate().is_ok());
        let bad = [
            ShareSettings {
                min_ttl_s: 0,
                ..Default::default()
            },
            ShareSettings {
                min_ttl_s: 100,
                max_ttl_s: 50,
                ..Default::default()
            },
            ShareSettings {
                max_ttl_s: 86_401,
                ..Default::default()
            },
            ShareSettings {
                after_final_s: f64::NAN,
                ..Default::default()
            },
            ShareSettings {
                max_links_per_order: 0,
                ..Default::default()
            },
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
    }
}
