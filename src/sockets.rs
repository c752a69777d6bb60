//! Open WebSockets, counted per client IP and per token holder so each count has a cap
//! (`server.max_sockets_per_ip`, `server.max_sockets_per_principal`), and reachable by
//! holder so a dispatcher revoking a rider's tokens closes the rider's socket. Each socket
//! holds a [`SocketTicket`] for its whole life; dropping it gives its place back.
//!
//! A rider is not capped per holder: the rider's actor keeps one socket, and a new one
//! replaces the old (a reconnecting app must never be locked out by its own dead socket).

use crate::auth::Principal;
use crate::errors::ApiError;
use actix_ws::{CloseCode, CloseReason};
use dispatch_actors::metric_names;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Why a socket is ended from outside: its close frame's reason.
pub type EndReason = &'static str;

/// One open socket: its id and the switch that ends it.
type Switch = (u64, watch::Sender<Option<EndReason>>);

#[derive(Default)]
struct Inner {
    per_ip: HashMap<IpAddr, usize>,
    /// Sockets by holder (`Principal::scope`).
    by_holder: HashMap<String, Vec<Switch>>,
}

pub struct Sockets {
    inner: Mutex<Inner>,
    max_per_ip: usize,
    max_per_principal: usize,
    next_id: AtomicU64,
}

impl Sockets {
    pub fn new(max_per_ip: usize, max_per_principal: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner::default()),
            max_per_ip: max_per_ip.max(1),
            max_per_principal: max_per_principal.max(1),
            next_id: AtomicU64::new(0),
        })
    }

    /// A place for one more socket of `who` from `ip`, or 429 when either cap is reached
    /// (counted in `dispatch_ws_refused_total{why}`). `expires_ms`: when the token ends
    /// (the socket closes then).
    pub fn admit(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        who: &Principal,
        expires_ms: Option<u64>,
    ) -> Result<SocketTicket, ApiError> {
        let capped = !matches!(who, Principal::Rider(_));
        self.admit_as(ip, who.scope(), capped, expires_ms, "token expired")
    }

    /// [`Sockets::admit`] for a holder named by `key` (a share link, which has no
    /// principal), capped per holder when `capped`; at `expires_ms` the socket closes
    /// with `expiry_reason`.
    pub fn admit_as(
        self: &Arc<Self>,
        ip: Option<IpAddr>,
        key: String,
        capped: bool,
        expires_ms: Option<u64>,
        expiry_reason: EndReason,
    ) -> Result<SocketTicket, ApiError> {
        let mut inner = self.inner.lock();
        if let Some(ip) = ip {
            if inner.per_ip.get(&ip).copied().unwrap_or(0) >= self.max_per_ip {
                drop(inner);
                return Err(refused("ip_cap"));
            }
        }
        let held = inner.by_holder.get(&key).map_or(0, Vec::len);
        if capped && held >= self.max_per_principal {
            drop(inner);
            return Err(refused("principal_cap"));
        }
        if let Some(ip) = ip {
            *inner.per_ip.entry(ip).or_default() += 1;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        inner
            .by_holder
            .entry(key.clone())
            .or_default()
            .push((id, tx));
        drop(inner);
        Ok(SocketTicket {
            sockets: self.clone(),
            id,
            ip,
            key,
            end: rx,
            expires_ms,
            expiry_reason,
        })
    }

    /// Ends every open socket of `who` with `reason` (their close frames say it).
    /// Returns how many.
    pub fn end_all(&self, who: &Principal, reason: EndReason) -> usize {
        self.end_key(&who.scope(), reason)
    }

    /// Ends every open socket admitted under `key` ([`Sockets::admit_as`]).
    pub fn end_key(&self, key: &str, reason: EndReason) -> usize {
        let inner = self.inner.lock();
        let Some(list) = inner.by_holder.get(key) else {
            return 0;
        };
        for (_, tx) in list {
            let _ = tx.send(Some(reason));
        }
        list.len()
    }

    /// Open sockets from `ip`, and of `who` (tests, metrics).
    pub fn counts(&self, ip: IpAddr, who: &Principal) -> (usize, usize) {
        let inner = self.inner.lock();
        (
            inner.per_ip.get(&ip).copied().unwrap_or(0),
            inner.by_holder.get(&who.scope()).map_or(0, Vec::len),
        )
    }

    fn release(&self, id: u64, ip: Option<IpAddr>, key: &str) {
        let mut inner = self.inner.lock();
        if let Some(ip) = ip {
            if let Some(n) = inner.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    inner.per_ip.remove(&ip);
                }
            }
        }
        if let Some(list) = inner.by_holder.get_mut(key) {
            list.retain(|(i, _)| *i != id);
            if list.is_empty() {
                inner.by_holder.remove(key);
            }
        }
    }
}

/// 429: a socket closing frees a place within seconds.
fn refused(why: &'static str) -> ApiError {
    metrics::counter!(metric_names::WS_REFUSED_TOTAL, "why" => why).increment(1);
    ApiError::RateLimited { retry_after_s: 5 }
}

/// One open socket's place in the counts; given back when dropped.
pub struct SocketTicket {
    sockets: Arc<Sockets>,
    id: u64,
    ip: Option<IpAddr>,
    key: String,
    end: watch::Receiver<Option<EndReason>>,
    expires_ms: Option<u64>,
    /// The close reason at `expires_ms`.
    expiry_reason: EndReason,
}

impl SocketTicket {
    /// Resolves when the socket must close from outside: its tokens were revoked, or its
    /// token expired. Create it once per socket (it arms a timer).
    pub async fn ended(&mut self) -> CloseReason {
        let policy = |why: &str| CloseReason {
            code: CloseCode::Policy,
            description: Some(why.to_string()),
        };
        let expiry = self.expires_ms.and_then(|at| {
            let left = at.saturating_sub(crate::auth::now_ms());
            tokio::time::Instant::now().checked_add(std::time::Duration::from_millis(left))
        });
        let expiry_reason = self.expiry_reason;
        let expired = async move {
            match expiry {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = expired => policy(expiry_reason),
            r = self.end.wait_for(Option::is_some) => match r {
                Ok(why) => {
                    let why: Option<EndReason> = *why;
                    policy(why.unwrap_or("closed by the server"))
                }
                // The registry is gone (never while the server runs).
                Err(_) => std::future::pending().await,
            },
        }
    }
}

impl Drop for SocketTicket {
    fn drop(&mut self) {
        self.sockets.release(self.id, self.ip, &self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::ResponseError;
    use dispatch_actors::domain::{CustomerId, RiderId};

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn caps_hold_and_places_come_back() {
        let s = Sockets::new(3, 2);
        let c = Principal::Customer(CustomerId::generate());
        let a = s.admit(ip(1), &c, None).unwrap();
        let _b = s.admit(ip(1), &c, None).unwrap();
        let third = s.admit(ip(2), &c, None).err().expect("over the holder cap");
        assert_eq!(third.status_code().as_u16(), 429);
        let r = Principal::Rider(RiderId::generate());
        let _r1 = s.admit(ip(1), &r, None).unwrap();
        assert!(s.admit(ip(1), &r, None).is_err(), "per-IP cap of 3");
        // Riders are not capped per holder (a new socket replaces the old).
        let _r2 = s.admit(ip(3), &r, None).unwrap();
        let _r3 = s.admit(ip(4), &r, None).unwrap();
        assert_eq!(s.counts(ip(1).unwrap(), &c), (3, 2));
        drop(a);
        assert_eq!(s.counts(ip(1).unwrap(), &c), (2, 1));
        assert!(s.admit(ip(1), &c, None).is_ok());
    }

    #[tokio::test]
    async fn ending_a_holder_closes_its_sockets_only() {
        let s = Sockets::new(100, 100);
        let (r, other) = (
            Principal::Rider(RiderId::generate()),
            Principal::Rider(RiderId::generate()),
        );
        let mut t = s.admit(ip(1), &r, None).unwrap();
        let mut o = s.admit(ip(1), &other, None).unwrap();
        assert_eq!(s.end_all(&r, "token revoked"), 1);
        let reason = t.ended().await;
        assert_eq!(reason.code, CloseCode::Policy);
        assert_eq!(reason.description.as_deref(), Some("token revoked"));
        let still = tokio::time::timeout(std::time::Duration::from_millis(50), o.ended()).await;
        assert!(still.is_err(), "the other rider's socket stays open");
    }

    #[tokio::test]
    async fn a_socket_ends_when_its_token_expires() {
        let s = Sockets::new(100, 100);
        let c = Principal::Customer(CustomerId::generate());
        let mut t = s
            .admit(ip(1), &c, Some(crate::auth::now_ms() + 100))
            .unwrap();
        let reason = t.ended().await;
        assert_eq!(reason.description.as_deref(), Some("token expired"));
    }
}
