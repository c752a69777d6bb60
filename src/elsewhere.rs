//! The live orders of other nodes, as this node's sockets show them (docs/cluster.md,
//! "The whole city on every socket"): the latest copy of each, read from the zones'
//! event streams by the city feed. Bounded: a final order leaves at once (snapshots list
//! live orders only), and over the cap the order that changed least recently goes first
//! (an order whose node stopped writing it without ending it).
//!
//! Every copy is judged new or stale here, and only a new one is told to sockets: a write
//! read twice (from a record and from the stream) notifies once. Orders that ended lately
//! are remembered with their final version for that, since they are no longer held.

use dispatch_actors::domain::order::Order;
use dispatch_actors::domain::OrderId;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// How many orders of other nodes one node keeps for its sockets' snapshots. A city has
/// far fewer live orders at once; the cap only bounds what a fault could leave behind.
pub const ELSEWHERE_CAP: usize = 200_000;

/// How many ended orders are remembered (with their final version) so that a final write
/// read again is known as stale. A write is read twice within one take-up of a zone, far
/// fewer orders end meanwhile.
pub const ENDED_CAP: usize = 10_000;

/// What a copy of an order read from a stream did to the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Newer than what was held (or new): dashboards are to hear of it.
    Changed,
    /// The order turned final: it left the map; dashboards are to hear of it.
    Ended,
    /// Not newer than the copy held or the final one seen (read twice: the zone's live
    /// orders, then its stream).
    Stale,
}

pub struct OrdersElsewhere {
    cap: usize,
    /// Each order with the tick it last changed at.
    orders: HashMap<OrderId, (Arc<Order>, u64)>,
    /// Orders by the tick they last changed at, oldest first (who goes over the cap).
    by_change: BTreeMap<u64, OrderId>,
    tick: u64,
    /// Orders that ended lately, with their final version, oldest first in `ended_order`.
    ended: HashMap<OrderId, u64>,
    ended_order: VecDeque<OrderId>,
    ended_cap: usize,
}

impl Default for OrdersElsewhere {
    fn default() -> Self {
        OrdersElsewhere::new(ELSEWHERE_CAP)
    }
}

impl OrdersElsewhere {
    pub fn new(cap: usize) -> OrdersElsewhere {
        OrdersElsewhere::with_caps(cap, ENDED_CAP)
    }

    pub fn with_caps(cap: usize, ended_cap: usize) -> OrdersElsewhere {
        OrdersElsewhere {
            cap: cap.max(1),
            orders: HashMap::new(),
            by_change: BTreeMap::new(),
            tick: 0,
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            ended_cap: ended_cap.max(1),
        }
    }

    /// Takes the copy of an order another node wrote, unless an equal or newer one is
    /// held, or the order ended at an equal or newer version. Versions only grow (the
    /// order script refuses a write from an older base), so the version alone tells which
    /// copy is newer; an equal version is the same write seen twice.
    pub fn put(&mut self, order: Arc<Order>) -> Put {
        let seen = self
            .orders
            .get(&order.order_id)
            .map(|(held, _)| held.version)
            .or_else(|| self.ended.get(&order.order_id).copied());
        if seen.is_some_and(|v| v >= order.version) {
            return Put::Stale;
        }
        self.forget(&order.order_id);
        if order.status.is_final() {
            self.remember_ended(&order);
            return Put::Ended;
        }
        self.tick += 1;
        self.by_change.insert(self.tick, order.order_id.clone());
        self.orders
            .insert(order.order_id.clone(), (order, self.tick));
        while self.orders.len() > self.cap {
            let Some((_, id)) = self.by_change.pop_first() else {
                break;
            };
            self.orders.remove(&id);
        }
        Put::Changed
    }

    fn remember_ended(&mut self, order: &Order) {
        let id = order.order_id.clone();
        if self.ended.insert(id.clone(), order.version).is_none() {
            self.ended_order.push_back(id);
        }
        while self.ended.len() > self.ended_cap {
            let Some(oldest) = self.ended_order.pop_front() else {
                break;
            };
            self.ended.remove(&oldest);
        }
    }

    /// The order is this node's now (its zone moved here): its actor tells the hub.
    pub fn forget(&mut self, id: &OrderId) {
        if let Some((_, tick)) = self.orders.remove(id) {
            self.by_change.remove(&tick);
        }
    }

    pub fn contains(&self, id: &OrderId) -> bool {
        self.orders.contains_key(id)
    }

    /// Every order held, in no particular order.
    pub fn orders(&self) -> Vec<Arc<Order>> {
        self.orders.values().map(|(o, _)| o.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

/// A snapshot's live orders: `here` (this node's actors) and then those of `elsewhere` not
/// among them (an order whose actor is here now is listed once, from its actor, whose
/// copy is the newest).
pub fn with_elsewhere(
    mut here: Vec<Order>,
    elsewhere: impl IntoIterator<Item = Arc<Order>>,
) -> Vec<Order> {
    let ids: HashSet<OrderId> = here.iter().map(|o| o.order_id.clone()).collect();
    here.extend(
        elsewhere
            .into_iter()
            .filter(|o| !ids.contains(&o.order_id))
            .map(|o| (*o).clone()),
    );
    here
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use dispatch_actors::domain::order::{NewOrder, OrderLine, OrderStatus, Pickup};
    use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId, MerchantId};

    pub(crate) fn order(id: &str, version: u64, status: OrderStatus) -> Arc<Order> {
        let m = MerchantId::parse("m_test").unwrap();
        let mut o = Order::new(
            NewOrder {
                order_id: OrderId::parse(id).unwrap(),
                customer_id: CustomerId::parse("c_test").unwrap(),
                merchant_id: m.clone(),
                items: vec![OrderLine {
                    item_id: ItemId::parse("i_a").unwrap(),
                    name: "Noodles".into(),
                    qty: 1,
                    price_cents: 900,
                }],
                pickup: Pickup {
                    lat: 31.23,
                    lon: 121.47,
                    merchant_id: m,
                    name: "Shop".into(),
                },
                dropoff: GeoPoint::new(31.24, 121.48).unwrap(),
            },
            1_000,
        );
        o.version = version;
        o.status = status;
        Arc::new(o)
    }

    fn id(s: &str) -> OrderId {
        OrderId::parse(s).unwrap()
    }

    #[test]
    fn a_newer_copy_replaces_an_older_one_and_an_older_one_is_ignored() {
        let mut m = OrdersElsewhere::new(10);
        assert_eq!(
            m.put(order("o_1", 1, OrderStatus::PendingPayment)),
            Put::Changed
        );
        assert_eq!(m.put(order("o_1", 3, OrderStatus::Paid)), Put::Changed);
        assert_eq!(
            m.put(order("o_1", 2, OrderStatus::PendingPayment)),
            Put::Stale
        );
        assert_eq!(m.put(order("o_1", 3, OrderStatus::Paid)), Put::Stale);
        assert_eq!(m.len(), 1);
        assert_eq!(m.orders()[0].status, OrderStatus::Paid);
    }

    #[test]
    fn a_final_order_leaves_at_once() {
        let mut m = OrdersElsewhere::new(10);
        m.put(order("o_1", 1, OrderStatus::Paid));
        assert_eq!(m.put(order("o_1", 2, OrderStatus::Delivered)), Put::Ended);
        assert!(m.is_empty());
        // One never seen live ends without ever being held.
        assert_eq!(m.put(order("o_2", 5, OrderStatus::Cancelled)), Put::Ended);
        assert!(m.is_empty());
    }

    #[test]
    fn a_final_copy_read_twice_is_stale_the_second_time() {
        let mut m = OrdersElsewhere::new(10);
        m.put(order("o_1", 1, OrderStatus::Paid));
        assert_eq!(m.put(order("o_1", 2, OrderStatus::Delivered)), Put::Ended);
        assert_eq!(m.put(order("o_1", 2, OrderStatus::Delivered)), Put::Stale);
        // An older live copy read after the end does not bring the order back.
        assert_eq!(m.put(order("o_1", 1, OrderStatus::Paid)), Put::Stale);
        assert!(m.is_empty());
    }

    #[test]
    fn ended_orders_are_remembered_up_to_their_cap() {
        let mut m = OrdersElsewhere::with_caps(10, 2);
        for id in ["o_1", "o_2", "o_3"] {
            assert_eq!(m.put(order(id, 2, OrderStatus::Cancelled)), Put::Ended);
        }
        // o_1 was forgotten first: read again, it counts as new; the others do not.
        assert_eq!(m.put(order("o_3", 2, OrderStatus::Cancelled)), Put::Stale);
        assert_eq!(m.put(order("o_2", 2, OrderStatus::Cancelled)), Put::Stale);
        assert_eq!(m.put(order("o_1", 2, OrderStatus::Cancelled)), Put::Ended);
        assert_eq!(m.ended.len(), 2);
        assert_eq!(m.ended_order.len(), 2);
    }

    #[test]
    fn a_snapshot_lists_an_order_here_and_elsewhere_once_from_here() {
        let here = vec![(*order("o_1", 5, OrderStatus::Accepted)).clone()];
        let elsewhere = [
            order("o_1", 4, OrderStatus::Paid),
            order("o_2", 1, OrderStatus::Paid),
        ];
        let all = with_elsewhere(here, elsewhere);
        let got: Vec<_> = all
            .iter()
            .map(|o| (o.order_id.to_string(), o.version))
            .collect();
        assert_eq!(got, [("o_1".to_string(), 5), ("o_2".to_string(), 1)]);
    }

    #[test]
    fn over_the_cap_the_order_changed_least_recently_goes() {
        let mut m = OrdersElsewhere::new(2);
        m.put(order("o_1", 1, OrderStatus::Paid));
        m.put(order("o_2", 1, OrderStatus::Paid));
        // o_1 changes again: o_2 is now the one changed least recently.
        m.put(order("o_1", 2, OrderStatus::Accepted));
        m.put(order("o_3", 1, OrderStatus::Paid));
        assert_eq!(m.len(), 2);
        assert!(m.contains(&id("o_1")) && m.contains(&id("o_3")));
        assert!(!m.contains(&id("o_2")));
    }

    #[test]
    fn an_order_forgotten_is_gone_from_both_indexes() {
        let mut m = OrdersElsewhere::new(2);
        m.put(order("o_1", 1, OrderStatus::Paid));
        m.forget(&id("o_1"));
        m.forget(&id("o_9"));
        assert!(m.is_empty());
        // Nothing left behind in the change index either: two more fit.
        m.put(order("o_2", 1, OrderStatus::Paid));
        m.put(order("o_3", 1, OrderStatus::Paid));
        assert!(m.contains(&id("o_2")) && m.contains(&id("o_3")));
    }
}
