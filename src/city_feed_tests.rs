//! The city feed's bookkeeping: which entries feed the hub (each order with its previous
//! status), which zones are followed, and where each zone's cursor stands.

use super::*;
use crate::elsewhere::tests::order;
use dispatch_actors::domain::order::OrderStatus;
use dispatch_actors::domain::GeoPoint;
use dispatch_actors::events::Event;

/// Zones in increasing order (the feed lists them sorted), about 11 km apart.
fn zone(i: usize) -> ZoneId {
    let zoning = dispatch_actors::domain::Zoning::new(7).unwrap();
    let mut zones: Vec<ZoneId> = (0..3)
        .map(|k| zoning.zone_of(GeoPoint::new(31.0 + 0.1 * k as f64, 121.47).unwrap()))
        .collect();
    zones.sort();
    zones[i]
}

/// An entry as the order script writes it, of a new order.
fn written(id: &str, writer: &str, o: Arc<Order>) -> ZoneEntry {
    changed(id, writer, o, None)
}

/// An entry as the order script writes it, of an order that was `previous` before.
fn changed(id: &str, writer: &str, o: Arc<Order>, previous: Option<OrderStatus>) -> ZoneEntry {
    let data = serde_json::to_string(&Event::OrderChanged {
        order: o,
        previous_status: previous,
    })
    .unwrap();
    ZoneEntry {
        id: id.into(),
        kind: "order_changed".into(),
        data,
        writer: Some(writer.into()),
    }
}

#[test]
fn an_order_another_node_wrote_is_read_back_whole() {
    let o = order("o_1", 4, OrderStatus::Accepted);
    assert_eq!(
        read_entry(&written("1-0", "node-a", o.clone()), "node-b"),
        fed(&o, None)
    );
    // One written without a writer (before entries named theirs) feeds too.
    let mut e = written("1-0", "node-a", o.clone());
    e.writer = None;
    assert_eq!(read_entry(&e, "node-b"), fed(&o, None));
}

fn fed(o: &Arc<Order>, previous: Option<OrderStatus>) -> Read {
    Read::Fed(Heard {
        order: o.clone(),
        previous,
    })
}

#[test]
fn the_status_before_the_write_comes_with_the_order() {
    let o = order("o_1", 3, OrderStatus::Accepted);
    let e = changed("1-0", "node-a", o.clone(), Some(OrderStatus::Paid));
    assert_eq!(read_entry(&e, "node-b"), fed(&o, Some(OrderStatus::Paid)));
    // A change that kept the status (ready, a new rider) says so.
    let e = changed("1-0", "node-a", o.clone(), Some(OrderStatus::Accepted));
    assert_eq!(
        read_entry(&e, "node-b"),
        fed(&o, Some(OrderStatus::Accepted))
    );
    // Written without the field at all: a new order, as with null.
    let mut e = written("1-0", "node-a", o.clone());
    let mut data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
    data.as_object_mut().unwrap().remove("previous_status");
    e.data = data.to_string();
    assert_eq!(read_entry(&e, "node-b"), fed(&o, None));
}

#[test]
fn a_previous_status_this_node_cannot_read_makes_the_entry_unreadable() {
    let o = order("o_1", 3, OrderStatus::Accepted);
    for previous in [serde_json::json!("teleported"), serde_json::json!(7)] {
        let mut e = written("1-0", "node-a", o.clone());
        let mut data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
        data["previous_status"] = previous.clone();
        e.data = data.to_string();
        assert_eq!(read_entry(&e, "node-b"), Read::Bad, "{previous}");
    }
}

#[test]
fn this_nodes_own_entries_and_unreadable_ones_are_not_fed() {
    let o = order("o_1", 1, OrderStatus::PendingPayment);
    assert_eq!(
        read_entry(&written("1-0", "node-b", o.clone()), "node-b"),
        Read::Own
    );
    let mut other_kind = written("1-0", "node-a", o.clone());
    other_kind.kind = "rider_changed".into();
    assert_eq!(read_entry(&other_kind, "node-b"), Read::Bad);
    for data in [
        "",
        "not json",
        "{\"type\":\"order_changed\"}",
        "{\"order\":{}}",
    ] {
        let mut bad = written("1-0", "node-a", o.clone());
        bad.data = data.into();
        assert_eq!(read_entry(&bad, "node-b"), Read::Bad, "{data:?}");
    }
}

#[test]
fn zones_listed_and_not_held_are_followed_and_taken_up_once() {
    let mut feed = FeedState::new("node-b");
    let listed: BTreeSet<_> = [zone(0), zone(1), zone(2)].into();
    let held: HeldZones = [(zone(1), 7)].into();
    assert_eq!(
        feed.follow(&listed, &held),
        [(zone(0), Start::End), (zone(2), Start::End)]
    );
    feed.take_up(zone(0), "5-0".into());
    // Taken up: not again. Not taken up (Redis did not answer): asked for again.
    assert_eq!(feed.follow(&listed, &held), [(zone(2), Start::End)]);
    assert_eq!(feed.cursors(), [(zone(0), "5-0".to_string())]);

    // This node takes zone 0 and lets zone 1 go: 0 is left to its actors, 1 taken up
    // after this node's own last entry.
    let held: HeldZones = [(zone(0), 3)].into();
    assert_eq!(
        feed.follow(&listed, &held),
        [(zone(1), Start::AfterOwn), (zone(2), Start::End)]
    );
    assert!(feed.cursors().is_empty());
    // Until it is taken up it keeps that start, though this node held it two rounds ago.
    assert_eq!(
        feed.follow(&listed, &held),
        [(zone(1), Start::AfterOwn), (zone(2), Start::End)]
    );
}

#[test]
fn a_zone_listed_after_the_first_listing_is_followed_from_its_start() {
    let mut feed = FeedState::new("node-b");
    let none = HeldZones::new();
    // The first listing: followed from the end, whatever it holds (even nothing).
    assert!(feed.follow(&BTreeSet::new(), &none).is_empty());
    let listed: BTreeSet<_> = [zone(0)].into();
    // A zone new since (a new merchant's): its stream is its whole life.
    assert_eq!(feed.follow(&listed, &none), [(zone(0), Start::Beginning)]);
    feed.take_up(zone(0), "9-0".into());
    let listed: BTreeSet<_> = [zone(0), zone(2)].into();
    assert_eq!(feed.follow(&listed, &none), [(zone(2), Start::Beginning)]);
    feed.take_up(zone(2), "10-0".into());

    // A zone this node let go before its listing showed it: after its own last entry
    // still, once listed.
    let held: HeldZones = [(zone(1), 4)].into();
    assert!(feed.follow(&listed, &held).is_empty());
    let none = HeldZones::new();
    assert!(feed.follow(&listed, &none).is_empty(), "not listed yet");
    let all: BTreeSet<_> = [zone(0), zone(1), zone(2)].into();
    assert_eq!(feed.follow(&all, &none), [(zone(1), Start::AfterOwn)]);
    feed.take_up(zone(1), "12-0".into());
    // Taken up and let go of no more: followed as any other.
    assert!(feed.follow(&all, &none).is_empty());

    // A node whose first listing has zones takes them up from their end.
    let mut feed = FeedState::new("node-c");
    assert_eq!(
        feed.follow(&listed, &none),
        [(zone(0), Start::End), (zone(2), Start::End)]
    );
}

#[test]
fn a_read_moves_the_cursor_past_its_last_entry_and_counts_each_entry() {
    let mut feed = FeedState::new("node-b");
    feed.take_up(zone(0), "0-0".into());
    let (a1, a2) = (
        order("o_1", 1, OrderStatus::PendingPayment),
        order("o_1", 2, OrderStatus::Paid),
    );
    let mut bad = written("3-0", "node-a", a1.clone());
    bad.data = "{}".into();
    let entries = [
        written("1-0", "node-a", a1.clone()),
        written("2-0", "node-b", order("o_2", 1, OrderStatus::Paid)),
        bad,
        changed(
            "4-0",
            "node-a",
            a2.clone(),
            Some(OrderStatus::PendingPayment),
        ),
    ];
    let (heard, tally) = feed.take(zone(0), &entries);
    assert_eq!(
        heard,
        [
            Heard {
                order: a1,
                previous: None
            },
            Heard {
                order: a2,
                previous: Some(OrderStatus::PendingPayment)
            }
        ]
    );
    assert_eq!(
        tally,
        Tally {
            fed: 2,
            own: 1,
            bad: 1
        }
    );
    assert_eq!(feed.cursors(), [(zone(0), "4-0".to_string())]);
    // Nothing new: the cursor stays.
    let (orders, tally) = feed.take(zone(0), &[]);
    assert!(orders.is_empty());
    assert_eq!(tally, Tally::default());
    assert_eq!(feed.cursors(), [(zone(0), "4-0".to_string())]);
}

#[test]
fn a_read_of_a_zone_no_longer_followed_takes_nothing() {
    let mut feed = FeedState::new("node-b");
    let o = order("o_1", 1, OrderStatus::Paid);
    let (orders, _) = feed.take(zone(0), &[written("1-0", "node-a", o)]);
    assert!(orders.is_empty());
    assert!(feed.cursors().is_empty());
}
