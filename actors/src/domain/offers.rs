//! Offers of one order: which riders hold an open offer, who declined (never offered this
//! order again), who let an offer expire (skipped until nobody else is left), and the trace
//! of every dispatch decision.

use super::ids::{OfferId, OrderId, RiderId};
use super::order::Pickup;
use super::GeoPoint;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// What a rider is shown. `order_id`, `dropoff` and `ready_at_ms` are the first leg's;
/// `orders` lists every order of the offer in drop-off sequence (docs/protocol.md,
/// "Bundles and next-job offers (v1.1)"): one element for a single order, several for a
/// bundle, all of one merchant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Offer {
    pub offer_id: OfferId,
    pub order_id: OrderId,
    pub pickup: Pickup,
    pub dropoff: GeoPoint,
    pub ready_at_ms: Option<u64>,
    pub expires_at_ms: u64,
    pub distance_m: f64,
    /// Empty only in records stored before bundles existed: read as the one order above.
    #[serde(default)]
    pub orders: Vec<OfferLeg>,
}

/// One order of an offer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfferLeg {
    pub order_id: OrderId,
    pub dropoff: GeoPoint,
    pub ready_at_ms: Option<u64>,
}

impl Offer {
    /// Every order of the offer, in drop-off sequence.
    pub fn order_ids(&self) -> Vec<OrderId> {
        if self.orders.is_empty() {
            vec![self.order_id.clone()]
        } else {
            self.orders.iter().map(|l| l.order_id.clone()).collect()
        }
    }

    /// More than one order (a bundle).
    pub fn is_bundle(&self) -> bool {
        self.orders.len() > 1
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OfferCloseReason {
    Expired,
    Taken,
    Withdrawn,
    Cancelled,
    Declined,
}

impl OfferCloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            OfferCloseReason::Expired => "expired",
            OfferCloseReason::Taken => "taken",
            OfferCloseReason::Withdrawn => "withdrawn",
            OfferCloseReason::Cancelled => "cancelled",
            OfferCloseReason::Declined => "declined",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenOffer {
    pub offer: Offer,
    pub rider_id: RiderId,
    pub sent_ms: u64,
}

/// One candidate as the matcher saw it, and what dispatch did with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CandidateTrace {
    pub rider_id: RiderId,
    pub distance_m: f64,
    pub travel_s: f64,
    /// `offered`, or why the rider was skipped.
    pub decision: String,
    /// Batch policy: what the planner priced this rider at for this order (projected
    /// click-to-door plus the weighted waits), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_s: Option<f64>,
}

/// A rider a search left out on purpose, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SkippedTrace {
    pub rider_id: RiderId,
    /// `declined` (for good), `offer_expired` (until nobody else is left) or `offer_open`
    /// (already holds an offer for this order).
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TraceEntry {
    pub at_ms: u64,
    pub radius_m: f64,
    pub event: String,
    pub candidates: Vec<CandidateTrace>,
    /// For a search: the riders excluded from it, with the reason.
    pub skipped: Vec<SkippedTrace>,
}

const TRACE_CAP: usize = 200;

/// The durable part of an [`OfferBook`] (see [`OfferBook::durable`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferBookState {
    pub open: Vec<OpenOffer>,
    pub declined: Vec<RiderId>,
    pub expired: Vec<RiderId>,
    pub won: Option<(OfferId, RiderId)>,
    /// Every rider ever offered this order (they may read it).
    #[serde(default)]
    pub offered: Vec<RiderId>,
    /// Shared with the book it came from: a write of the order does not copy it.
    #[serde(default)]
    pub trace: Arc<VecDeque<Arc<TraceEntry>>>,
}

#[derive(Debug, Default)]
pub struct OfferBook {
    open: HashMap<OfferId, OpenOffer>,
    declined: HashSet<RiderId>,
    expired: HashSet<RiderId>,
    /// The offer that won, and its rider (a repeated accept answers `assigned` again).
    won: Option<(OfferId, RiderId)>,
    offered: HashSet<RiderId>,
    /// Oldest first, at most `TRACE_CAP`; shared with the last stored record (an entry
    /// added after a write copies it once, a write copies nothing).
    /// Entries are shared too, so that copy clones pointers, not candidate lists.
    trace: Arc<VecDeque<Arc<TraceEntry>>>,
}

impl OfferBook {
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    pub fn open_offers(&self) -> impl Iterator<Item = &OpenOffer> {
        self.open.values()
    }

    pub fn get(&self, id: &OfferId) -> Option<&OpenOffer> {
        self.open.get(id)
    }

    pub fn add(&mut self, offer: Offer, rider_id: RiderId, sent_ms: u64) {
        self.offered.insert(rider_id.clone());
        self.open.insert(
            offer.offer_id.clone(),
            OpenOffer {
                offer,
                rider_id,
                sent_ms,
            },
        );
    }

    /// Takes back an offer the rider never got (it was not idle): no memory of it.
    pub fn withdraw(&mut self, id: &OfferId) -> Option<OpenOffer> {
        self.open.remove(id)
    }

    /// Was this order ever offered to `rider`?
    pub fn was_offered(&self, rider: &RiderId) -> bool {
        self.offered.contains(rider)
    }

    /// Riders not to offer this order now: decliners, riders holding an open offer for it,
    /// and riders whose offer expired.
    pub fn excluded(&self) -> HashSet<RiderId> {
        let mut s: HashSet<RiderId> = self.declined.union(&self.expired).cloned().collect();
        s.extend(self.open.values().map(|o| o.rider_id.clone()));
        s
    }

    /// The riders [`OfferBook::excluded`] leaves out, each with its reason, by id.
    pub fn skipped(&self) -> Vec<SkippedTrace> {
        let mut out: Vec<SkippedTrace> = self
            .declined
            .iter()
            .map(|r| (r, "declined"))
            .chain(
                self.expired
                    .iter()
                    .filter(|r| !self.declined.contains(*r))
                    .map(|r| (r, "offer_expired")),
            )
            .chain(self.open.values().map(|o| (&o.rider_id, "offer_open")))
            .map(|(r, why)| SkippedTrace {
                rider_id: r.clone(),
                reason: why.to_string(),
            })
            .collect();
        out.sort_by(|a, b| a.rider_id.cmp(&b.rider_id));
        out
    }

    pub fn has_declined(&self, rider: &RiderId) -> bool {
        self.declined.contains(rider)
    }

    /// How many riders let an offer of this order expire (and are skipped for now).
    /// Riders who let an offer of this order expire (and have not been forgiven).
    pub fn expired_riders(&self) -> HashSet<RiderId> {
        self.expired.clone()
    }

    pub fn expired_count(&self) -> usize {
        self.expired.len()
    }

    /// Nobody new is left: give riders who only let an offer expire another chance.
    /// Decliners stay excluded.
    pub fn forgive_expired(&mut self) -> bool {
        let any = !self.expired.is_empty();
        self.expired.clear();
        any
    }

    /// Closes one offer. Decline and expiry are remembered against the rider.
    pub fn close(&mut self, id: &OfferId, reason: OfferCloseReason) -> Option<OpenOffer> {
        let o = self.open.remove(id)?;
        match reason {
            OfferCloseReason::Declined => {
                self.declined.insert(o.rider_id.clone());
            }
            OfferCloseReason::Expired => {
                self.expired.insert(o.rider_id.clone());
            }
            _ => {}
        }
        Some(o)
    }

    /// Closes every open offer with `reason`, returning them (to tell their riders).
    pub fn close_all(&mut self, reason: OfferCloseReason) -> Vec<OpenOffer> {
        let ids: Vec<OfferId> = self.open.keys().cloned().collect();
        ids.iter().filter_map(|id| self.close(id, reason)).collect()
    }

    /// A rider handed the order back (release, lost, unassigned): counts as a decline.
    pub fn remember_decline(&mut self, rider: RiderId) {
        self.declined.insert(rider);
    }

    /// First accept wins: the claimed offer must be open and held by `rider`.
    /// Returns the other open offers, now closed `taken`.
    pub fn claim(&mut self, id: &OfferId, rider: &RiderId) -> Result<Vec<OpenOffer>, ClaimError> {
        if let Some((won, by)) = &self.won {
            if won == id && by == rider {
                return Err(ClaimError::AlreadyWon);
            }
        }
        match self.open.get(id) {
            Some(o) if &o.rider_id == rider => {}
            _ => return Err(ClaimError::NotAvailable),
        }
        self.open.remove(id);
        self.won = Some((id.clone(), rider.clone()));
        Ok(self.close_all(OfferCloseReason::Taken))
    }

    /// The order left `assigned` (unassign, release, lost): a new winner may come.
    pub fn forget_winner(&mut self) {
        self.won = None;
    }

    /// What must survive a restart: open offers, decliners, riders whose offer expired,
    /// and the winning offer.
    pub fn durable(&self) -> OfferBookState {
        let mut open: Vec<OpenOffer> = self.open.values().cloned().collect();
        open.sort_by(|a, b| a.offer.offer_id.cmp(&b.offer.offer_id));
        let mut declined: Vec<RiderId> = self.declined.iter().cloned().collect();
        declined.sort();
        let mut expired: Vec<RiderId> = self.expired.iter().cloned().collect();
        expired.sort();
        let mut offered: Vec<RiderId> = self.offered.iter().cloned().collect();
        offered.sort();
        OfferBookState {
            open,
            declined,
            expired,
            won: self.won.clone(),
            offered,
            trace: self.trace.clone(),
        }
    }

    /// The book as [`OfferBook::durable`] left it.
    pub fn restore(state: OfferBookState) -> Self {
        Self {
            open: state
                .open
                .into_iter()
                .map(|o| (o.offer.offer_id.clone(), o))
                .collect(),
            declined: state.declined.into_iter().collect(),
            expired: state.expired.into_iter().collect(),
            won: state.won,
            offered: state.offered.into_iter().collect(),
            trace: state.trace,
        }
    }

    pub fn record(&mut self, entry: TraceEntry) {
        let trace = Arc::make_mut(&mut self.trace);
        if trace.len() == TRACE_CAP {
            trace.pop_front();
        }
        trace.push_back(Arc::new(entry));
    }

    /// The decisions, oldest first.
    pub fn trace(&self) -> Vec<TraceEntry> {
        self.trace.iter().map(|e| TraceEntry::clone(e)).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// Expired, closed, or never sent to this rider.
    NotAvailable,
    /// This rider already won with this offer: answer `assigned` again.
    AlreadyWon,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::MerchantId;

    fn offer(id: &str) -> Offer {
        let m = MerchantId::parse("m_1").unwrap();
        Offer {
            offer_id: OfferId::parse(id).unwrap(),
            order_id: OrderId::parse("o_1").unwrap(),
            pickup: Pickup {
                lat: 0.0,
                lon: 0.0,
                merchant_id: m,
                name: "x".into(),
            },
            dropoff: GeoPoint::new(0.0, 0.01).unwrap(),
            ready_at_ms: None,
            expires_at_ms: 10,
            distance_m: 5.0,
            orders: vec![],
        }
    }

    fn r(s: &str) -> RiderId {
        RiderId::parse(s).unwrap()
    }

    #[test]
    fn first_claim_wins_and_closes_the_rest() {
        let mut b = OfferBook::default();
        b.add(offer("f_a"), r("r_a"), 0);
        b.add(offer("f_b"), r("r_b"), 0);
        let others = b.claim(&OfferId::parse("f_b").unwrap(), &r("r_b")).unwrap();
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].rider_id, r("r_a"));
        assert_eq!(
            b.claim(&OfferId::parse("f_a").unwrap(), &r("r_a")),
            Err(ClaimError::NotAvailable)
        );
        assert_eq!(
            b.claim(&OfferId::parse("f_b").unwrap(), &r("r_b")),
            Err(ClaimError::AlreadyWon)
        );
    }

    #[test]
    fn claim_of_someone_elses_offer_is_refused() {
        let mut b = OfferBook::default();
        b.add(offer("f_a"), r("r_a"), 0);
        assert_eq!(
            b.claim(&OfferId::parse("f_a").unwrap(), &r("r_b")),
            Err(ClaimError::NotAvailable)
        );
        assert_eq!(b.open_count(), 1);
    }

    #[test]
    fn decliners_stay_excluded_expired_are_forgiven() {
        let mut b = OfferBook::default();
        b.add(offer("f_a"), r("r_a"), 0);
        b.add(offer("f_b"), r("r_b"), 0);
        b.close(&OfferId::parse("f_a").unwrap(), OfferCloseReason::Declined);
        b.close(&OfferId::parse("f_b").unwrap(), OfferCloseReason::Expired);
        assert!(b.excluded().contains(&r("r_a")));
        assert!(b.excluded().contains(&r("r_b")));
        b.add(offer("f_c"), r("r_c"), 0);
        let why: Vec<(RiderId, String)> = b
            .skipped()
            .into_iter()
            .map(|s| (s.rider_id, s.reason))
            .collect();
        assert_eq!(
            why,
            vec![
                (r("r_a"), "declined".to_string()),
                (r("r_b"), "offer_expired".to_string()),
                (r("r_c"), "offer_open".to_string()),
            ]
        );
        assert!(b.forgive_expired());
        assert!(b.excluded().contains(&r("r_a")));
        assert!(!b.excluded().contains(&r("r_b")));
    }

    #[test]
    fn trace_is_capped() {
        let mut b = OfferBook::default();
        for i in 0..(TRACE_CAP + 5) {
            b.record(TraceEntry {
                at_ms: i as u64,
                radius_m: 1.0,
                event: "search".into(),
                candidates: vec![],
                skipped: vec![],
            });
        }
        assert_eq!(b.trace().len(), TRACE_CAP);
        assert_eq!(b.trace()[0].at_ms, 5);
    }
}
