//! The hub's part in the whole city on every socket: orders of other nodes reach
//! dashboards, merchant apps and tracking pages exactly as this node's own do, each write
//! once.

use super::*;
use crate::elsewhere::tests::order;

fn dashboard(hub: &Hub) -> TextOutbox {
    let o = TextOutbox::new(16);
    hub.add_dashboard(o.clone());
    o
}

/// The frames a dashboard got from one tick.
fn tick(hub: &Hub, o: &TextOutbox) -> Vec<serde_json::Value> {
    hub.flush_dashboards();
    o.drain()
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect()
}

fn statuses(frame: &serde_json::Value) -> Vec<(String, String)> {
    frame["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["order_id"].as_str().unwrap().to_string(),
                o["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_order_elsewhere_reaches_dashboards_in_the_frame_a_local_one_gets() {
    let (local, remote) = (Hub::new(), Hub::new());
    let (a, b) = (dashboard(&local), dashboard(&remote));
    let o = order("o_1", 2, OrderStatus::Paid);
    local.route(Event::OrderChanged {
        order: o.clone(),
        previous_status: Some(OrderStatus::PendingPayment),
    });
    remote.order_elsewhere(o, Some(OrderStatus::PendingPayment));
    let (a, b) = (tick(&local, &a), tick(&remote, &b));
    assert_eq!(a, b);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["type"], "updates");
    assert_eq!(statuses(&b[0]), [("o_1".to_string(), "paid".to_string())]);
}

#[test]
fn a_stale_copy_is_not_sent_and_a_final_one_is_sent_and_forgotten() {
    let hub = Hub::new();
    let d = dashboard(&hub);
    hub.order_elsewhere(order("o_1", 3, OrderStatus::Accepted), None);
    assert_eq!(tick(&hub, &d).len(), 1);
    hub.order_elsewhere(order("o_1", 2, OrderStatus::Paid), None);
    assert!(tick(&hub, &d).is_empty(), "an older copy went out");
    assert_eq!(hub.sizes().orders_elsewhere, 1);
    assert_eq!(hub.orders_elsewhere()[0].status, OrderStatus::Accepted);

    hub.order_elsewhere(order("o_1", 4, OrderStatus::Cancelled), None);
    let frames = tick(&hub, &d);
    assert_eq!(
        statuses(&frames[0]),
        [("o_1".to_string(), "cancelled".to_string())]
    );
    assert_eq!(hub.sizes().orders_elsewhere, 0);
    assert!(hub.orders_elsewhere().is_empty());
}

#[test]
fn an_order_whose_actor_is_here_now_is_no_longer_elsewhere() {
    let hub = Hub::new();
    hub.order_elsewhere(order("o_1", 3, OrderStatus::Accepted), None);
    hub.order_elsewhere(order("o_2", 1, OrderStatus::Paid), None);
    // The zone of o_1 moved to this node; its rebuilt actor writes it.
    hub.route(Event::OrderChanged {
        order: order("o_1", 4, OrderStatus::Accepted),
        previous_status: Some(OrderStatus::Accepted),
    });
    let left: Vec<_> = hub
        .orders_elsewhere()
        .iter()
        .map(|o| o.order_id.to_string())
        .collect();
    assert_eq!(left, ["o_2"]);
}

// ---- merchant apps and tracking pages ----

/// A merchant app of `m_test` (the merchant of every test order), a tracking page and a
/// status-only one of `o_1`.
struct Sockets {
    merchant: TextOutbox,
    track: TextOutbox,
    status: TextOutbox,
}

fn sockets(hub: &Hub) -> Sockets {
    let s = Sockets {
        merchant: TextOutbox::new(16),
        track: TextOutbox::new(16),
        status: TextOutbox::new(16),
    };
    hub.add_merchant(MerchantId::parse("m_test").unwrap(), s.merchant.clone());
    let o_1 = OrderId::parse("o_1").unwrap();
    hub.add_tracker(o_1.clone(), s.track.clone());
    hub.add_status_tracker(o_1, s.status.clone());
    s
}

/// Each socket's frames since the last call, as (type, status of the order).
fn heard(s: &Sockets) -> [Vec<(String, String)>; 3] {
    let read = |o: &TextOutbox| {
        o.drain()
            .iter()
            .map(|f| {
                let v: serde_json::Value = serde_json::from_str(f).unwrap();
                let status = v["order"]["status"].as_str().or(v["status"].as_str());
                (
                    v["type"].as_str().unwrap().to_string(),
                    status.unwrap().to_string(),
                )
            })
            .collect()
    };
    [read(&s.merchant), read(&s.track), read(&s.status)]
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// An order's life, each write with the status before it.
fn life() -> Vec<(Arc<Order>, Option<OrderStatus>)> {
    use OrderStatus::*;
    vec![
        (order("o_1", 1, PendingPayment), None),
        (order("o_1", 2, Paid), Some(PendingPayment)),
        (order("o_1", 3, Accepted), Some(Paid)),
        // `ready`: a change that keeps the status.
        (order("o_1", 4, Accepted), Some(Accepted)),
        (order("o_1", 5, Assigned), Some(Accepted)),
        (order("o_1", 6, PickedUp), Some(Assigned)),
        (order("o_1", 7, Delivered), Some(PickedUp)),
    ]
}

#[test]
fn merchant_apps_and_tracking_pages_hear_an_order_elsewhere_as_a_local_one() {
    let (local, remote) = (Hub::new(), Hub::new());
    let (on_local, on_remote) = (sockets(&local), sockets(&remote));
    for (o, previous) in life() {
        local.route(Event::OrderChanged {
            order: o.clone(),
            previous_status: previous,
        });
        remote.order_elsewhere(o, previous);
    }
    let got = heard(&on_remote);
    assert_eq!(heard(&on_local), got);
    assert_eq!(
        got[0],
        pairs(&[
            ("new_order", "paid"),
            ("order_updated", "accepted"),
            ("order_updated", "accepted"),
            ("order_updated", "assigned"),
            ("order_updated", "picked_up"),
            ("order_updated", "delivered"),
        ])
    );
    let statuses = pairs(&[
        ("status", "paid"),
        ("status", "accepted"),
        ("status", "assigned"),
        ("status", "picked_up"),
        ("status", "delivered"),
    ]);
    assert_eq!(got[1], statuses);
    assert_eq!(got[2], statuses);
}

#[test]
fn a_write_read_twice_is_told_once() {
    let hub = Hub::new();
    let s = sockets(&hub);
    for (o, previous) in life() {
        // The stream read again, or the record read before the stream: no second notice.
        hub.order_elsewhere(o.clone(), previous);
        hub.order_elsewhere(o.clone(), previous);
        hub.order_elsewhere(o, None);
    }
    let [merchant, track, status] = heard(&s);
    assert_eq!(merchant.len(), 6);
    assert_eq!(track.len(), 5);
    assert_eq!(status.len(), 5);
    // An older write read late tells nothing either.
    hub.order_elsewhere(
        order("o_1", 3, OrderStatus::Accepted),
        Some(OrderStatus::Paid),
    );
    assert_eq!(heard(&s), [vec![], vec![], vec![]]);
}

#[test]
fn an_order_read_from_its_record_reaches_dashboards_only() {
    let hub = Hub::new();
    let (s, d) = (sockets(&hub), dashboard(&hub));
    // Taken up paid: the merchant app is not told of a new order it may have had.
    hub.order_elsewhere(order("o_1", 2, OrderStatus::Paid), None);
    assert_eq!(heard(&s), [vec![], vec![], vec![]]);
    assert_eq!(
        statuses(&tick(&hub, &d)[0]),
        [("o_1".to_string(), "paid".to_string())]
    );
    // Its next change is told as it is.
    hub.order_elsewhere(
        order("o_1", 3, OrderStatus::Accepted),
        Some(OrderStatus::Paid),
    );
    assert_eq!(
        heard(&s),
        [
            pairs(&[("order_updated", "accepted")]),
            pairs(&[("status", "accepted")]),
            pairs(&[("status", "accepted")]),
        ]
    );
}

/// Riders of other nodes: the views their nodes send reach dashboards in the `updates`
/// frame a local rider's change makes, and are kept for snapshots until a local copy or
/// their node's leaving takes them out.
mod riders_elsewhere {
    use super::*;
    use crate::riders_elsewhere::tests::rider;
    use dispatch_actors::domain::rider::RiderStatus;

    fn node(s: &str) -> Arc<str> {
        s.into()
    }

    #[test]
    fn a_rider_elsewhere_reaches_dashboards_in_the_frame_a_local_one_gets() {
        let (local, remote) = (Hub::new(), Hub::new());
        let (a, b) = (dashboard(&local), dashboard(&remote));
        let r = rider("r_1", RiderStatus::Idle);
        local.route(Event::RiderChanged { rider: r.clone() });
        remote.rider_elsewhere(r.clone(), node("a"));
        let (a, b) = (tick(&local, &a), tick(&remote, &b));
        assert_eq!(a, b);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0]["type"], "updates");
        assert_eq!(b[0]["riders"][0]["rider_id"], "r_1");
        assert_eq!(b[0]["riders"][0]["status"], "idle");
        assert_eq!(remote.riders_elsewhere(), vec![r]);
        assert_eq!(remote.sizes().riders_elsewhere, 1);
    }

    #[test]
    fn the_latest_view_is_kept_and_a_local_copy_wins() {
        let hub = Hub::new();
        let d = dashboard(&hub);
        hub.rider_elsewhere(rider("r_1", RiderStatus::Idle), node("a"));
        hub.rider_elsewhere(rider("r_1", RiderStatus::Busy), node("a"));
        let frames = tick(&hub, &d);
        assert_eq!(frames[0]["riders"].as_array().unwrap().len(), 1);
        assert_eq!(frames[0]["riders"][0]["status"], "busy");
        assert_eq!(hub.riders_elsewhere()[0].status, RiderStatus::Busy);
        // The rider's actor came here: its own changes are the ones to show.
        hub.route(Event::RiderChanged {
            rider: rider("r_1", RiderStatus::Offline),
        });
        assert!(hub.riders_elsewhere().is_empty());
    }

    #[test]
    fn a_node_that_leaves_takes_its_riders_out_of_snapshots() {
        let hub = Hub::new();
        hub.rider_elsewhere(rider("r_1", RiderStatus::Idle), node("a"));
        hub.rider_elsewhere(rider("r_2", RiderStatus::Idle), node("b"));
        hub.node_left("a");
        let left: Vec<_> = hub.riders_elsewhere();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].rider_id.as_str(), "r_2");
        assert_eq!(hub.sizes().riders_elsewhere, 1);
    }
}

// ---- escalations of other nodes ----

fn escalation(level: u32, resolved_ms: Option<u64>) -> Arc<Escalation> {
    Arc::new(Escalation {
        escalation_id: EscalationId::parse("e_1").unwrap(),
        kind: dispatch_actors::domain::escalation::EscalationKind::MerchantUnresponsive,
        level,
        order_id: Some(OrderId::parse("o_1").unwrap()),
        rider_id: None,
        opened_ms: 1,
        resolved_ms,
        resolved_by: None,
        message: "the merchant has not accepted".into(),
        note: None,
    })
}

#[test]
fn an_escalation_elsewhere_reaches_dashboards_in_the_frame_a_local_one_gets() {
    let (local, remote) = (Hub::new(), Hub::new());
    let (a, b) = (dashboard(&local), dashboard(&remote));
    local.route(Event::EscalationChanged {
        escalation: escalation(1, None),
    });
    remote.escalation_elsewhere(escalation(1, None));
    let (a, b) = (tick(&local, &a), tick(&remote, &b));
    assert_eq!(a, b);
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["type"], "updates");
    assert_eq!(b[0]["escalations"][0]["escalation_id"], "e_1");

    // Changes coalesce per escalation: the latest goes out, once.
    let d = dashboard(&remote);
    remote.escalation_elsewhere(escalation(2, None));
    remote.escalation_elsewhere(escalation(2, Some(9)));
    let frames = tick(&remote, &d);
    let list = frames[0]["escalations"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["resolved_ms"], 9);
    assert!(tick(&remote, &d).is_empty());
}

#[test]
fn an_orders_notices_heard_from_its_node_yield_the_frames_its_events_do() {
    use dispatch_actors::actors::remote::wire::OrderNotice;
    use dispatch_actors::domain::{CustomerId, GeoPoint};
    let (o_1, m) = (
        OrderId::parse("o_1").unwrap(),
        MerchantId::parse("m_test").unwrap(),
    );
    let events = [
        Event::RiderMovedForOrder {
            order_id: o_1.clone(),
            customer_id: CustomerId::parse("c_1").unwrap(),
            merchant_id: m.clone(),
            rider_id: RiderId::parse("r_1").unwrap(),
            location: GeoPoint::new(52.5, 13.4).unwrap(),
            ts_ms: 7,
            eta_s: 90,
        },
        Event::RiderArriving {
            order_id: o_1.clone(),
            merchant_id: m.clone(),
            eta_s: 40,
        },
        Event::MerchantReminded {
            merchant_id: m,
            order_id: o_1,
            message: "order o_1 is waiting to be accepted".into(),
        },
    ];
    let (local, remote) = (Hub::new(), Hub::new());
    let (here, there) = (sockets(&local), sockets(&remote));
    for e in events {
        let notice = OrderNotice::from_event(&e).unwrap();
        local.route(e);
        remote.order_notice(&notice);
    }
    let frames = |s: &Sockets| [s.merchant.drain(), s.track.drain(), s.status.drain()];
    let (want, got) = (frames(&here), frames(&there));
    assert_eq!(want[0].len(), 2, "arriving and the reminder: {want:?}");
    assert_eq!(want[1].len(), 1, "the rider's location: {want:?}");
    assert!(want[1][0].contains("\"rider_location\""));
    assert!(
        want[2].is_empty(),
        "a status-only page never sees the rider"
    );
    assert_eq!(got, want);
}

#[test]
fn the_live_counters_count_other_nodes_orders_and_offers_too() {
    use dispatch_actors::actors::remote::wire::OrderNotice;
    use dispatch_actors::domain::offers::OfferCloseReason;
    use dispatch_actors::domain::order::TimelineEntry;
    use dispatch_actors::domain::OfferId;
    let with_times = |o: Arc<Order>| {
        let mut o = (*o).clone();
        o.timeline = vec![
            TimelineEntry {
                status: OrderStatus::Accepted,
                at_ms: 10_000,
            },
            TimelineEntry {
                status: o.status,
                at_ms: 14_000,
            },
        ];
        Arc::new(o)
    };
    let expired = Event::OfferClosed {
        offer_id: OfferId::generate(),
        order_id: OrderId::parse("o_1").unwrap(),
        rider_id: RiderId::parse("r_1").unwrap(),
        reason: OfferCloseReason::Expired,
    };
    let (local, remote) = (Hub::new(), Hub::new());
    let d = dashboard(&remote);
    for (o, previous) in life() {
        let o = with_times(o);
        local.route(Event::OrderChanged {
            order: o.clone(),
            previous_status: previous,
        });
        // The city feed may read a write twice: counted once.
        remote.order_elsewhere(o.clone(), previous);
        remote.order_elsewhere(o, previous);
    }
    // The mesh may deliver a note twice: counted once.
    let notice = OrderNotice::from_event(&expired).unwrap();
    remote.order_notice(&notice);
    remote.order_notice(&notice);
    remote.order_notice(&OrderNotice::Unknown);
    local.route(expired);
    let want = Stats {
        offers_accepted: 1,
        offers_expired: 1,
        median_assign_s: Some(4.0),
    };
    assert_eq!(local.stats(), want);
    assert_eq!(remote.stats(), want);
    let frames = tick(&remote, &d);
    assert_eq!(frames.last().unwrap()["stats"]["offers_accepted"], 1);
    assert_eq!(frames.last().unwrap()["stats"]["offers_expired"], 1);
}
