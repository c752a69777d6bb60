//! One rider socket: connect from a chosen local address, go online, then (while the run
//! runs) send fixes at the socket's share of `--fixes-per-s`, accept or decline offers,
//! and work each assigned order: `picked_up` after about a third of `--delivery-s`,
//! `delivered` at about `--delivery-s`, then free again. The offer latency is taken here,
//! when an offer frame names an order the order generator is waiting on.

use super::movement::{CityBox, Mover};
use super::Shared;
use crate::stats::bump;
use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::{Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// Sockets connect, go online, send one fix; nothing else yet.
    Connecting,
    Running,
    Stopping,
}

/// What every rider task shares.
pub struct RiderSetup {
    pub shared: Arc<Shared>,
    pub server: SocketAddr,
    /// `ws://host:port` of the server.
    pub ws_base: String,
    pub city: CityBox,
    /// Time between two fixes of one socket.
    pub period: Duration,
    pub accept_prob: f64,
    pub delivery_s: f64,
    pub phase: watch::Receiver<Phase>,
    /// Bounds the handshakes in flight.
    pub handshakes: Arc<Semaphore>,
    /// Index of the node these sockets connect to, when the run has several: each timed
    /// first offer is then also logged in `Shared::offer_log`.
    pub node: Option<usize>,
}

/// A first offer of an order, seen at a socket on node `rider_node`.
#[derive(Clone, Debug)]
pub struct TimedOffer {
    pub order_id: String,
    pub rider_node: usize,
    pub latency: Duration,
    pub at: Instant,
}

/// Opens a socket bound to (`source`, any port) and upgrades it; waits for `welcome`.
async fn connect(server: SocketAddr, source: IpAddr, url: &str) -> Result<Ws, String> {
    let sock = if server.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {:?}", e.kind()))?;
    no_port_at_bind(&sock);
    sock.bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {:?}", e.kind()))?;
    let stream = tokio::time::timeout(IO_TIMEOUT, sock.connect(server))
        .await
        .map_err(|_| "connect: timeout".to_string())?
        .map_err(|e| format!("connect: {:?}", e.kind()))?;
    stream.set_nodelay(true).ok();
    let (mut ws, _) =
        tokio::time::timeout(IO_TIMEOUT, tokio_tungstenite::client_async(url, stream))
            .await
            .map_err(|_| "upgrade: timeout".to_string())?
            .map_err(|e| format!("upgrade: {e}"))?;
    match tokio::time::timeout(IO_TIMEOUT, ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) if t.contains("\"welcome\"") => Ok(ws),
        Ok(Some(Ok(_))) => Err("welcome: unexpected first frame".into()),
        Ok(Some(Err(e))) => Err(format!("welcome: {e}")),
        Ok(None) => Err("welcome: closed".into()),
        Err(_) => Err("welcome: timeout".into()),
    }
}

/// Lets the kernel choose the local port at connect time rather than at bind, so one
/// source address serves many destinations' worth of ports (IP_BIND_ADDRESS_NO_PORT).
/// Best effort.
fn no_port_at_bind(sock: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd and a pointer to a c_int of the given size.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

async fn send(ws: &mut Ws, text: String) -> bool {
    matches!(
        tokio::time::timeout(IO_TIMEOUT, ws.send(Message::text(text))).await,
        Ok(Ok(()))
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn tick(t: &mut Option<Interval>) {
    match t {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

struct Held {
    order_id: String,
    pickup: (f64, f64),
    dropoff: (f64, f64),
    picked: bool,
}

#[derive(Clone, Copy)]
enum Act {
    PickUp,
    Deliver,
}

/// The rider's side of the protocol, apart from the socket.
struct Rider {
    setup: Arc<RiderSetup>,
    rng: SmallRng,
    mover: Mover,
    last_ts: u64,
    held: Vec<Held>,
    next: Option<(tokio::time::Instant, Act)>,
}

impl Rider {
    fn fix(&mut self) -> String {
        let city = &self.setup.city;
        self.mover.step(city, Instant::now(), &mut self.rng);
        let (lat, lon) = city.to_latlon(self.mover.x, self.mover.y);
        self.last_ts = now_ms().max(self.last_ts + 1);
        format!(
            r#"{{"type":"location","lat":{lat:.6},"lon":{lon:.6},"ts_ms":{},"accuracy_m":{:.1},"speed_mps":{:.1},"heading_deg":{:.0}}}"#,
            self.last_ts,
            self.rng.gen_range(3.0..25.0),
            self.mover.moving_speed,
            self.mover.heading_deg()
        )
    }

    fn xy(&self, p: &Value) -> Option<(f64, f64)> {
        Some(
            self.setup
                .city
                .to_xy(p["lat"].as_f64()?, p["lon"].as_f64()?),
        )
    }

    fn later(&mut self, lo: f64, hi: f64) -> tokio::time::Instant {
        let s = self.setup.delivery_s * self.rng.gen_range(lo..hi);
        tokio::time::Instant::now() + Duration::from_secs_f64(s.max(0.0))
    }

    /// Handles one server frame; returns what to send back.
    fn on_frame(&mut self, text: &str) -> Vec<String> {
        let shared = &self.setup.shared;
        let c = &shared.counters;
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            return vec![];
        };
        let mut out = Vec::new();
        match v["type"].as_str().unwrap_or("") {
            "offer" => {
                let now = Instant::now();
                bump(&c.offers);
                let mut ids: Vec<&str> = v["orders"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|o| o["order_id"].as_str()).collect())
                    .unwrap_or_default();
                if ids.is_empty() {
                    ids.extend(v["order_id"].as_str());
                }
                let waited: Vec<(&str, Duration)> = {
                    let mut p = shared.pending.lock().unwrap_or_else(|e| e.into_inner());
                    ids.iter()
                        .filter_map(|id| Some((*id, now.saturating_duration_since(p.remove(*id)?))))
                        .collect()
                };
                for &(id, d) in &waited {
                    shared.offer_latency.record(d);
                    bump(&c.offers_timed);
                    if let Some(rider_node) = self.setup.node {
                        shared
                            .offer_log
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(TimedOffer {
                                order_id: id.to_string(),
                                rider_node,
                                latency: d,
                                at: now,
                            });
                    }
                }
                let Some(offer_id) = v["offer_id"].as_str() else {
                    return out;
                };
                if self.rng.gen_bool(self.setup.accept_prob) {
                    bump(&c.accepts_sent);
                    out.push(json!({"type": "accept", "offer_id": offer_id}).to_string());
                    if self.held.is_empty() {
                        self.mover.target = self.xy(&v["pickup"]);
                    }
                } else {
                    bump(&c.declines_sent);
                    out.push(
                        json!({"type": "decline", "offer_id": offer_id, "reason": "load test"})
                            .to_string(),
                    );
                }
            }
            "assigned" => {
                let o = &v["order"];
                let (Some(id), Some(pickup), Some(dropoff)) = (
                    o["order_id"].as_str(),
                    self.xy(&o["pickup"]),
                    self.xy(&o["dropoff"]),
                ) else {
                    return out;
                };
                bump(&c.assigned);
                if !self.held.iter().any(|h| h.order_id == id) {
                    self.held.push(Held {
                        order_id: id.to_string(),
                        pickup,
                        dropoff,
                        picked: false,
                    });
                }
                if self.next.is_none() {
                    self.next = Some((self.later(0.3, 0.4), Act::PickUp));
                    self.mover.target = Some(pickup);
                }
            }
            "unassigned" | "order_cancelled" => {
                let id = v["order_id"].as_str().unwrap_or("");
                let before = self.held.len();
                self.held.retain(|h| h.order_id != id);
                if self.held.len() < before {
                    bump(&c.unassigned);
                }
                if self.held.is_empty() {
                    self.next = None;
                    self.mover.target = None;
                }
            }
            "offer_closed" => bump(&c.offers_closed),
            "error" => {
                bump(&c.server_errors);
                c.note(format!(
                    "rider socket error frame: {}",
                    v["code"].as_str().unwrap_or("?")
                ));
            }
            _ => {}
        }
        out
    }

    /// The scheduled pickup or drop-off is due.
    fn on_due(&mut self, act: Act) -> Vec<String> {
        let c = &self.setup.shared.counters;
        let mut out = Vec::new();
        self.next = None;
        match act {
            Act::PickUp => {
                for h in self.held.iter_mut().filter(|h| !h.picked) {
                    h.picked = true;
                    bump(&c.picked_up_sent);
                    out.push(json!({"type": "picked_up", "order_id": h.order_id}).to_string());
                }
                self.mover.target = self.held.first().map(|h| h.dropoff);
                if !self.held.is_empty() {
                    self.next = Some((self.later(0.6, 0.7), Act::Deliver));
                }
            }
            Act::Deliver => {
                for h in self.held.iter().filter(|h| h.picked) {
                    bump(&c.delivered_sent);
                    out.push(json!({"type": "delivered", "order_id": h.order_id}).to_string());
                }
                self.held.retain(|h| !h.picked);
                // Orders assigned meanwhile (a bundle's later frames, a next job).
                match self.held.first() {
                    Some(h) => {
                        self.mover.target = Some(h.pickup);
                        self.next = Some((self.later(0.1, 0.15), Act::PickUp));
                    }
                    None => self.mover.target = None,
                }
            }
        }
        out
    }
}

/// One rider, from connect to the end of the run. Failures are counted, not raised.
pub async fn run(setup: Arc<RiderSetup>, token: String, source: IpAddr) {
    let shared = setup.shared.clone();
    let c = &shared.counters;
    let url = format!("{}/ws/rider?token={token}", setup.ws_base);
    let mut ws = {
        let Ok(_permit) = setup.handshakes.acquire().await else {
            return;
        };
        match connect(setup.server, source, &url).await {
            Ok(ws) => ws,
            Err(why) => {
                bump(&c.connect_failed);
                c.note(why);
                return;
            }
        }
    };
    let mut rng = SmallRng::from_entropy();
    let mover = Mover::new(&setup.city, &mut rng);
    let mut rider = Rider {
        setup: setup.clone(),
        rng,
        mover,
        last_ts: 0,
        held: Vec::new(),
        next: None,
    };
    let online = json!({"type": "status", "status": "online"}).to_string();
    let first = rider.fix();
    if !(send(&mut ws, online).await && send(&mut ws, first).await) {
        bump(&c.connect_failed);
        c.note("going online: send failed");
        return;
    }
    bump(&c.fixes_sent);
    c.sockets_open.fetch_add(1, Ordering::Relaxed);
    let mut phase = setup.phase.clone();
    let mut ticker: Option<Interval> = None;
    let lost = |why: String| {
        bump(&c.ws_lost);
        c.note(why);
    };
    loop {
        let (due_at, act) = match rider.next {
            Some((t, a)) => (t, Some(a)),
            None => (tokio::time::Instant::now(), None),
        };
        let outgoing: Vec<String> = tokio::select! {
            changed = phase.changed() => {
                let now = if changed.is_ok() { *phase.borrow_and_update() } else { Phase::Stopping };
                match now {
                    Phase::Stopping => break,
                    Phase::Running if ticker.is_none() => {
                        // A random phase per socket spreads the fixes evenly.
                        let offset = setup.period.mul_f64(rider.rng.gen_range(0.0..1.0));
                        let mut t = tokio::time::interval_at(
                            tokio::time::Instant::now() + offset,
                            setup.period,
                        );
                        t.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        ticker = Some(t);
                        vec![]
                    }
                    _ => vec![],
                }
            }
            _ = tick(&mut ticker) => {
                bump(&c.fixes_sent);
                vec![rider.fix()]
            }
            _ = tokio::time::sleep_until(due_at), if act.is_some() => {
                rider.on_due(act.expect("guarded"))
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => rider.on_frame(&t),
                Some(Ok(Message::Close(f))) => {
                    lost(format!("rider socket closed by server: {}",
                        f.map_or("no code".into(), |f| u16::from(f.code).to_string())));
                    c.sockets_open.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => vec![],
                Some(Err(e)) => {
                    lost(format!("rider socket read error: {e}"));
                    c.sockets_open.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
                None => {
                    lost("rider socket ended".into());
                    c.sockets_open.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
            },
        };
        for text in outgoing {
            if !send(&mut ws, text).await {
                lost("rider socket: send failed or timed out".into());
                c.sockets_open.fetch_sub(1, Ordering::Relaxed);
                return;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    c.sockets_open.fetch_sub(1, Ordering::Relaxed);
}
