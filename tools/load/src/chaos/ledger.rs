//! What the engine told its clients, as the chaos run's clients heard it: the last
//! acknowledged status and version of every order (a 2xx answer, an `assigned` or
//! `order_updated` frame), and who picked each order up. The audit holds the store
//! against it; a second rider told it picked up an order another rider picked up is a
//! violation on the wire, whatever the store says.

use std::collections::HashMap;

/// Statuses in the order a legal life can pass them (docs/protocol.md, "Order state
/// machine").
pub const STATUSES: [&str; 8] = [
    "pending_payment",
    "paid",
    "accepted",
    "assigned",
    "picked_up",
    "delivered",
    "cancelled",
    "failed",
];

pub fn is_final(status: &str) -> bool {
    matches!(status, "delivered" | "cancelled" | "failed")
}

/// Whether an order acknowledged in `from` may legally be found in `to` later.
pub fn reachable(from: &str, to: &str) -> bool {
    if from == to {
        return true;
    }
    match from {
        "pending_payment" => STATUSES.contains(&to),
        "paid" => to != "pending_payment",
        // `assigned` goes back to `accepted` on release, rider lost or unassign.
        "accepted" | "assigned" => !matches!(to, "pending_payment" | "paid"),
        "picked_up" => matches!(to, "delivered" | "failed"),
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Acked {
    pub status: String,
    pub version: u64,
}

#[derive(Default)]
pub struct Ledger {
    pub orders: HashMap<String, Acked>,
    picked_up_by: HashMap<String, String>,
    /// Orders two riders were each told they picked up.
    pub double_pickups: Vec<String>,
    /// Acknowledgements that went backwards (an older version after a newer one): not a
    /// fault (frames of two sockets race), counted for the report.
    pub stale_acks: u64,
}

impl Ledger {
    /// Records an acknowledged state of an order; a newer version replaces an older one.
    pub fn ack(&mut self, order_id: &str, status: &str, version: u64) {
        match self.orders.get_mut(order_id) {
            Some(a) if a.version > version => self.stale_acks += 1,
            Some(a) => {
                a.status = status.to_string();
                a.version = version;
            }
            None => {
                self.orders.insert(
                    order_id.to_string(),
                    Acked {
                        status: status.to_string(),
                        version,
                    },
                );
            }
        }
    }

    /// A rider was told it picked the order up.
    pub fn picked_up(&mut self, order_id: &str, rider_id: &str, version: u64) {
        self.ack(order_id, "picked_up", version);
        match self.picked_up_by.get(order_id) {
            Some(r) if r != rider_id => self.double_pickups.push(order_id.to_string()),
            Some(_) => {}
            None => {
                self.picked_up_by
                    .insert(order_id.to_string(), rider_id.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine_moves_only_forward_but_for_a_hand_back() {
        assert!(reachable("pending_payment", "delivered"));
        assert!(reachable("assigned", "accepted"));
        assert!(reachable("accepted", "cancelled"));
        assert!(!reachable("picked_up", "assigned"));
        assert!(!reachable("paid", "pending_payment"));
        assert!(!reachable("delivered", "cancelled"));
        assert!(reachable("failed", "failed"));
    }

    #[test]
    fn a_newer_version_wins_an_older_one_is_counted_not_applied() {
        let mut l = Ledger::default();
        l.ack("o1", "paid", 2);
        l.ack("o1", "assigned", 4);
        l.ack("o1", "accepted", 3);
        assert_eq!(l.orders["o1"].status, "assigned");
        assert_eq!(l.stale_acks, 1);
    }

    #[test]
    fn two_riders_told_they_picked_up_one_order_is_a_violation() {
        let mut l = Ledger::default();
        l.picked_up("o1", "r1", 5);
        l.picked_up("o1", "r1", 5);
        assert!(l.double_pickups.is_empty(), "a repeat to one rider is fine");
        l.picked_up("o1", "r2", 6);
        assert_eq!(l.double_pickups, vec!["o1".to_string()]);
    }
}
