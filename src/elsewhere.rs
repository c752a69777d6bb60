//! The live orders of other nodes, as this node's dashboards show them (docs/cluster.md,
//! "The whole city on every dashboard"): the latest copy of each, read from the zones'
//! event streams by the city feed. Bounded: a final order leaves at once (the dashboard's
//! snapshot lists live orders only), and over the cap the order that changed least
//! recently goes first (an order whose node stopped writing it without ending it).

use dispatch_actors::domain::order::Order;
use dispatch_actors::domain::OrderId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// How many orders of other nodes one node keeps for its dashboards' snapshots. A city
/// has far fewer live orders at once; the cap only bounds what a fault could leave behind.
pub const ELSEWHERE_CAP: usize = 200_000;

/// What a copy of an order read from a stream did to the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// Newer than what was held (or new): dashboards are to hear of it.
    Changed,
    /// The order turned final: it left the map; dashboards are to hear of it.
    Ended,
    /// Older than the copy held (read twice: the zone's live orders, then its stream).
    Stale,
}

pub struct OrdersElsewhere {
    cap: usize,
    /// Each order with the tick it last changed at.
    orders: HashMap<OrderId, (Arc<Order>, u64)>,
    /// Orders by the tick they last changed at, oldest first (who goes over the cap).
    by_change: BTreeMap<u64, OrderId>,
    tick: u64,
}

impl Default for OrdersElsewhere {
    fn default() -> Self {
        OrdersElsewhere::new(ELSEWHERE_CAP)
    }
}

impl OrdersElsewhere {
    pub fn new(cap: usize) -> OrdersElsewhere {
        OrdersElsewhere {
            cap: cap.max(1),
            orders: HashMap::new(),
            by_change: BTreeMap::new(),
            tick: 0,
        }
    }

    /// Takes the copy of an order another node wrote, unless an equal or newer one is
    /// held. Versions only grow (the order script refuses a write from an older base), so
    /// the version alone tells which copy is newer; an equal version is the same write
    /// seen twice.
    pub fn put(&mut self, order: Arc<Order>) -> Put {
        if let Some((held, _)) = self.orders.get(&order.order_id) {
            if held.version >= order.version {
                return Put::Stale;
            }
        }
        self.forget(&order.order_id);
        if order.status.is_final() {
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
