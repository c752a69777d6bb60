//! A REST request body: the first byte picks the route, the rest is the body. Each body is
//! read as the route reads it (`extract::parse_json`, an empty body reads as `{}`) and then
//! turned into domain values the way the handler and the engine do (ids, names, prices,
//! the order's lines priced against a menu).
//!
//! Every string a client may put in an order (payment reference, reasons, merchant and item
//! names) then goes out in the merchant and tracking sockets' frames (`ws::frames`).
//!
//! Checked: every refusal is a client error (400, 404, 409), never a 5xx; everything
//! accepted holds what the domain types promise (ids parse back to themselves, names
//! trimmed and 1–200 characters, prices in range, points in range, an order's total is
//! the exact sum of its lines); every frame is JSON of its type carrying the order exactly.

#![no_main]

use actix_web::ResponseError;
use dispatch_actors::actors::engine::{checked_name, checked_price};
use dispatch_actors::domain::merchant::{Item, Merchant, MerchantState};
use dispatch_actors::domain::order::{
    Actor, NewOrder as DomainOrder, Order, OrderCommand, OrderLine,
};
use dispatch_actors::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId, RiderId};
use dispatch_actors::EngineError;
use dispatchd::errors::ApiError;
use dispatchd::extract::parse_json;
use dispatchd::routes::{customers, escalations, merchants, orders, riders};
use dispatchd::ws::frames::{encode, MerchantFrame, TrackFrame};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

/// A refusal must be the client's fault.
fn client_error(e: &ApiError) {
    let status = e.status_code().as_u16();
    // 409: an item the menu has but cannot sell now.
    assert!(matches!(status, 400 | 404 | 409), "{status} for {e:?}");
}

fn body<T: DeserializeOwned>(raw: &[u8]) -> Option<T> {
    parse_json::<T>(raw).map_err(|e| client_error(&e)).ok()
}

/// The name as stored, if it may be one.
fn name(n: String) -> Option<String> {
    match checked_name(n) {
        Ok(n) => {
            assert_eq!(n, n.trim());
            assert!(!n.is_empty() && n.chars().count() <= 200);
            Some(n)
        }
        Err(e) => {
            client_error(&ApiError::from(e));
            None
        }
    }
}

fn price(p: i64) {
    match checked_price(p) {
        Ok(()) => assert!((0..=100_000_000).contains(&p)),
        Err(e) => client_error(&ApiError::from(e)),
    }
}

fn point(p: &GeoPoint) {
    assert!(p.lat().is_finite() && (-90.0..=90.0).contains(&p.lat()));
    assert!(p.lon().is_finite() && (-180.0..=180.0).contains(&p.lon()));
}

/// The menu an order is priced against: one item at the top price, one unavailable.
fn menu(merchant_id: MerchantId) -> MerchantState {
    let mut m = MerchantState::new(Merchant {
        merchant_id: merchant_id.clone(),
        name: "Noodle Bar".into(),
        location: GeoPoint::new(31.23, 121.47).unwrap(),
        open: true,
        prep_time_s: 600,
    });
    for (id, available) in [("i_a", true), ("i_b", false)] {
        m.items.push(Item {
            item_id: ItemId::parse(id).unwrap(),
            merchant_id: merchant_id.clone(),
            name: id.into(),
            price_cents: 100_000_000,
            available,
        });
    }
    m
}

const NOW_MS: u64 = 1_700_000_000_000;

/// An order of `merchant` (named `name`) with one line of `item`.
fn sample_order(name: &str, item: &str) -> Order {
    let mid = MerchantId::parse("m_1").unwrap();
    let mut state = menu(mid.clone());
    state.merchant.name = name.to_string();
    Order::new(
        DomainOrder {
            order_id: OrderId::parse("o_fuzz").unwrap(),
            customer_id: CustomerId::parse("c_fuzz").unwrap(),
            merchant_id: mid,
            items: vec![OrderLine {
                item_id: ItemId::parse("i_a").unwrap(),
                name: item.to_string(),
                qty: 1,
                price_cents: 1250,
            }],
            pickup: state.pickup(),
            dropoff: GeoPoint::new(31.24, 121.48).unwrap(),
        },
        NOW_MS,
    )
}

fn paid(mut o: Order) -> Order {
    o.apply(
        OrderCommand::Pay {
            payment_ref: "pay_1".into(),
        },
        NOW_MS,
    )
    .unwrap();
    o
}

/// The frames the merchant and the tracking page get about `order`: each is JSON of its
/// type and carries the order exactly as it serializes.
fn frames(order: &Order) {
    // Read back through text on both sides: serde_json's float parsing is best-effort
    // (no `float_roundtrip`), the same on both.
    let want: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(order).unwrap()).unwrap();
    let check = |text: String, ty: &str| {
        let v: serde_json::Value = serde_json::from_str(&text).expect("a frame is JSON");
        assert_eq!(v["type"], ty);
        assert_eq!(v["order"], want);
    };
    check(encode(&MerchantFrame::NewOrder { order }), "new_order");
    check(
        encode(&MerchantFrame::OrderUpdated { order }),
        "order_updated",
    );
    check(encode(&TrackFrame::Snapshot { order }), "snapshot");
    let reason = order.reason.as_deref().unwrap_or_default();
    let text = encode(&MerchantFrame::Reminder {
        order_id: &order.order_id,
        message: reason,
    });
    let v: serde_json::Value = serde_json::from_str(&text).expect("a frame is JSON");
    assert_eq!(v["message"], reason);
}

fn new_order(n: orders::NewOrder) {
    point(&n.dropoff);
    let (mid, lines) = match n.parsed() {
        Ok(p) => p,
        Err(e) => return client_error(&e),
    };
    assert_eq!(MerchantId::parse(mid.as_str()).as_ref(), Ok(&mid));
    assert!(lines.len() <= 100);
    for (id, _) in &lines {
        assert_eq!(ItemId::parse(id.as_str()).as_ref(), Ok(id));
    }
    let state = menu(mid.clone());
    let priced = match state.quote(&lines) {
        Ok(p) => p,
        Err(e) => {
            assert!(matches!(
                e,
                EngineError::InvalidInput(_) | EngineError::ItemUnavailable(_)
            ));
            return client_error(&ApiError::from(e));
        }
    };
    let want: i64 = priced
        .iter()
        .map(|l| {
            assert!((1..=100).contains(&l.qty));
            l.price_cents.checked_mul(i64::from(l.qty)).unwrap()
        })
        .try_fold(0i64, |a, b| a.checked_add(b))
        .unwrap();
    let order = Order::new(
        DomainOrder {
            order_id: OrderId::parse("o_fuzz").unwrap(),
            customer_id: CustomerId::parse("c_fuzz").unwrap(),
            merchant_id: mid,
            items: priced,
            pickup: state.pickup(),
            dropoff: n.dropoff,
        },
        NOW_MS,
    );
    assert_eq!(order.total_cents, want);
    frames(&order);
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, raw)) = data.split_first() else {
        return;
    };
    match route % 13 {
        0 => {
            if let Some(c) = body::<customers::Credentials>(raw) {
                match c.checked() {
                    Ok(c) => {
                        assert!((1..=128).contains(&c.username.chars().count()));
                        assert!(!c.username.trim().is_empty());
                        assert!((1..=256).contains(&c.password.chars().count()));
                    }
                    Err(e) => client_error(&e),
                }
            }
        }
        1 => {
            if let Some(n) = body::<orders::NewOrder>(raw) {
                new_order(n);
            }
        }
        2 => {
            if let Some(p) = body::<orders::PayBody>(raw) {
                match p.payment_ref() {
                    Ok(r) => {
                        assert!((1..=200).contains(&r.len()));
                        let mut o = sample_order("Noodle Bar", "Noodles");
                        let cmd = OrderCommand::Pay {
                            payment_ref: r.clone(),
                        };
                        o.apply(cmd, NOW_MS).unwrap();
                        assert_eq!(o.payment_ref.as_deref(), Some(r.as_str()));
                        frames(&o);
                    }
                    Err(e) => client_error(&e),
                }
            }
        }
        3 => {
            let _ = body::<orders::AcceptBody>(raw);
        }
        4 => {
            if let Some(b) = body::<orders::ReasonBody>(raw) {
                // The merchant rejects a paid order with this reason.
                let mut o = paid(sample_order("Noodle Bar", "Noodles"));
                let cmd = OrderCommand::Reject {
                    reason: b.reason.clone(),
                };
                o.apply(cmd, NOW_MS).unwrap();
                assert_eq!(o.reason.as_deref(), Some(b.reason.as_str()));
                frames(&o);
            }
        }
        5 => {
            if let Some(b) = body::<orders::OptionalReason>(raw) {
                // The customer cancels with this reason.
                let mut o = sample_order("Noodle Bar", "Noodles");
                let cmd = OrderCommand::Cancel {
                    by: Actor::Customer,
                    reason: b.reason.clone(),
                };
                o.apply(cmd, NOW_MS).unwrap();
                assert_eq!(o.reason, b.reason);
                frames(&o);
            }
        }
        6 => {
            if let Some(a) = body::<orders::AssignBody>(raw) {
                match a.rider() {
                    Ok(r) => assert_eq!(RiderId::parse(r.as_str()).as_ref(), Ok(&r)),
                    Err(e) => client_error(&e),
                }
            }
        }
        7 => {
            if let Some(m) = body::<merchants::NewMerchant>(raw) {
                point(&m.location);
                if let Some(n) = name(m.name) {
                    frames(&sample_order(&n, "Noodles"));
                }
            }
        }
        8 => {
            let _ = body::<merchants::OpenBody>(raw);
        }
        9 => {
            if let Some(i) = body::<merchants::NewItem>(raw) {
                if let Some(n) = name(i.name) {
                    frames(&sample_order("Noodle Bar", &n));
                }
                price(i.price_cents);
            }
        }
        10 => {
            if let Some(p) = body::<merchants::ItemPatch>(raw) {
                if let Some(c) = p.price_cents {
                    price(c);
                }
            }
        }
        11 => {
            if let Some(r) = body::<riders::NewRider>(raw) {
                let _ = name(r.name);
            }
        }
        _ => {
            let _ = body::<escalations::ResolveBody>(raw);
        }
    }
});
