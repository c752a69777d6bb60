//! Whole rounds on hand-made cities.

use super::*;
use crate::domain::{GeoPoint, MerchantId, OrderId, RiderId};
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};

const T: u64 = 1_700_000_000_000;
const MIN: u64 = 60_000;

fn centre() -> GeoPoint {
    GeoPoint::new(31.23, 121.47).unwrap()
}

/// A point `distance_m` from the centre along `bearing_deg`.
fn at(bearing_deg: f64, distance_m: f64) -> GeoPoint {
    centre().destination(bearing_deg, distance_m)
}

fn rid(id: &str) -> RiderId {
    RiderId::parse(id).unwrap()
}

struct OrderSpec {
    id: &'static str,
    merchant: &'static str,
    pickup: GeoPoint,
    dropoff: GeoPoint,
    ready_at_ms: u64,
    due_ms: u64,
}

fn order(spec: OrderSpec, candidates: &[&str]) -> WaitingOrder {
    WaitingOrder {
        order_id: OrderId::parse(spec.id).unwrap(),
        merchant_id: MerchantId::parse(spec.merchant).unwrap(),
        pickup: spec.pickup,
        dropoff: spec.dropoff,
        placed_ms: T - 20 * MIN,
        ready_at_ms: spec.ready_at_ms,
        due_ms: spec.due_ms,
        candidate_riders: candidates.iter().map(|c| rid(c)).collect(),
    }
}

fn idle(id: &str, position: GeoPoint) -> FreeRider {
    FreeRider {
        rider_id: rid(id),
        free_at_ms: T,
        free_at: position,
        shift_end_ms: None,
    }
}

fn plan_at(now_ms: u64, orders: Vec<WaitingOrder>, riders: Vec<FreeRider>) -> Plan {
    let input = PlanInput {
        now_ms,
        orders,
        riders,
    };
    solve(&input, &TravelModel::default(), &PlanConfig::default())
}

fn assigned(plan: &Plan) -> Vec<(String, Vec<String>)> {
    plan.routes
        .iter()
        .map(|r| {
            (
                r.rider_id.to_string(),
                r.orders.iter().map(|o| o.to_string()).collect(),
            )
        })
        .collect()
}

fn waiting_reason(plan: &Plan, order_id: &str) -> Option<WaitReason> {
    plan.waiting
        .iter()
        .find(|w| w.orders.iter().any(|o| o.as_str() == order_id))
        .map(|w| w.reason)
}

/// One order of merchant `m_1` at the centre, its drop-off 2 km east.
fn centre_order(
    id: &'static str,
    ready_at_ms: u64,
    due_ms: u64,
    candidates: &[&str],
) -> WaitingOrder {
    order(
        OrderSpec {
            id,
            merchant: "m_1",
            pickup: centre(),
            dropoff: at(90.0, 2000.0),
            ready_at_ms,
            due_ms,
        },
        candidates,
    )
}

#[test]
fn the_nearest_rider_gets_ready_food() {
    let plan = plan_at(
        T,
        vec![centre_order("o_1", T, T + 10 * MIN, &["r_far", "r_near"])],
        vec![
            idle("r_far", at(0.0, 2500.0)),
            idle("r_near", at(180.0, 500.0)),
        ],
    );
    assert_eq!(assigned(&plan), vec![("r_near".into(), vec!["o_1".into()])]);
    let route = &plan.routes[0];
    assert_eq!(route.trace.candidates.len(), 2);
    assert!(route.pickup_ms >= T);
    assert!(route.dropoff_ms[0] > route.pickup_ms);
    assert_eq!(
        route.cost.click_to_door_ms,
        (route.dropoff_ms[0] - (T - 20 * MIN)) as i64
    );
}

#[test]
fn a_rider_free_soon_beats_an_idle_far_one_and_the_order_waits_for_it() {
    let travel = TravelModel::default();
    // The busy rider ends its work 3 minutes from the merchant in 5 minutes; the idle one
    // is 12 minutes away. The food is ready in 10 minutes.
    let busy = FreeRider {
        rider_id: rid("r_busy"),
        free_at_ms: T + 5 * MIN,
        free_at: at(270.0, travel.speed_mps * 180.0),
        shift_end_ms: None,
    };
    let far = idle("r_far", at(0.0, travel.speed_mps * 720.0));
    let ready = T + 10 * MIN;
    // Due: the best rider's travel and half the pickup service before the food is ready.
    let due = ready - 3 * MIN - travel.pickup_service_ms / 2;
    let orders = vec![centre_order("o_1", ready, due, &["r_far", "r_busy"])];

    let early = plan_at(T, orders.clone(), vec![far.clone(), busy.clone()]);
    assert!(early.routes.is_empty(), "nothing is committed early");
    assert_eq!(waiting_reason(&early, "o_1"), Some(WaitReason::Deferred));
    let costs: HashMap<String, i64> = early.waiting[0]
        .trace
        .candidates
        .iter()
        .map(|c| (c.rider_id.to_string(), c.cost.total))
        .collect();
    assert!(costs["r_busy"] < costs["r_far"], "{costs:?}");

    let at_due = plan_at(due, orders, vec![far, busy]);
    assert_eq!(
        assigned(&at_due),
        vec![("r_busy".into(), vec!["o_1".into()])]
    );
    assert!(at_due.routes[0].trace.wait.unwrap().forced);
    assert_eq!(
        at_due.routes[0].pickup_ms, ready,
        "arrives as the food is ready"
    );
}

#[test]
fn two_orders_with_close_ready_times_and_nearby_drop_offs_share_one_rider() {
    let o_a = centre_order("o_a", T, T + 5 * MIN, &["r_1"]);
    let mut o_b = centre_order("o_b", T + MIN, T + 5 * MIN, &["r_1"]);
    o_b.dropoff = at(95.0, 2300.0);
    let plan = plan_at(T, vec![o_a, o_b], vec![idle("r_1", at(0.0, 300.0))]);
    assert_eq!(
        assigned(&plan),
        vec![("r_1".into(), vec!["o_a".into(), "o_b".into()])]
    );
    let route = &plan.routes[0];
    assert_eq!(
        route.pickup_ms,
        route.arrive_ms + 2 * MIN,
        "half the pickup service"
    );
    assert!(route.pickup_ms >= T + MIN, "picked up when both are ready");
    assert!(route.dropoff_ms[0] < route.dropoff_ms[1]);
}

#[test]
fn two_orders_with_far_apart_drop_offs_go_separately() {
    let mut o_a = centre_order("o_a", T, T + 5 * MIN, &["r_1"]);
    let mut o_b = centre_order("o_b", T, T + 5 * MIN, &["r_1"]);
    // 12 km out on either side: 24 km between the doors, over an hour for the second.
    o_a.dropoff = at(90.0, 12_000.0);
    o_b.dropoff = at(270.0, 12_000.0);
    let plan = plan_at(T, vec![o_a, o_b], vec![idle("r_1", at(0.0, 300.0))]);
    assert_eq!(plan.routes.len(), 1);
    assert_eq!(plan.routes[0].orders.len(), 1);
    assert_eq!(plan.waiting.len(), 1);
    assert_eq!(plan.waiting[0].reason, WaitReason::RidersTaken);
}

#[test]
fn cheapest_insertion_sequences_the_drop_offs_of_a_bundle() {
    let mut orders = Vec::new();
    for (id, distance_m, ready_at_ms) in [
        ("o_far", 3000.0, T),
        ("o_near", 1000.0, T),
        ("o_mid", 2000.0, T),
    ] {
        let mut o = centre_order(id, ready_at_ms, T + 10 * MIN, &["r_1"]);
        o.dropoff = at(90.0, distance_m);
        orders.push(o);
    }
    let plan = plan_at(T, orders, vec![idle("r_1", centre())]);
    assert_eq!(
        assigned(&plan),
        vec![(
            "r_1".into(),
            vec!["o_near".into(), "o_mid".into(), "o_far".into()]
        )]
    );
    let drops = &plan.routes[0].dropoff_ms;
    assert!(drops.windows(2).all(|w| w[0] < w[1]), "{drops:?}");
}

/// Order `o_due` of merchant m_1 (10 km from the rider), order `o_easy` of merchant m_2
/// (where the rider stands, food ready now). One rider.
fn one_rider_two_orders(due_of_far_order_ms: u64) -> Plan {
    let far_merchant = at(0.0, 10_000.0);
    let o_due = order(
        OrderSpec {
            id: "o_due",
            merchant: "m_1",
            pickup: far_merchant,
            dropoff: far_merchant.destination(90.0, 1500.0),
            ready_at_ms: T + 5 * MIN,
            due_ms: due_of_far_order_ms,
        },
        &["r_1"],
    );
    let o_easy = order(
        OrderSpec {
            id: "o_easy",
            merchant: "m_2",
            pickup: centre(),
            dropoff: at(90.0, 1500.0),
            ready_at_ms: T,
            due_ms: T + 2 * MIN,
        },
        &["r_1"],
    );
    plan_at(T, vec![o_due, o_easy], vec![idle("r_1", centre())])
}

#[test]
fn an_order_at_its_due_time_gets_the_rider_even_when_costly() {
    let relaxed = one_rider_two_orders(T + 30 * MIN);
    assert_eq!(
        assigned(&relaxed),
        vec![("r_1".into(), vec!["o_easy".into()])]
    );

    let due = one_rider_two_orders(T);
    assert_eq!(assigned(&due), vec![("r_1".into(), vec!["o_due".into()])]);
    assert_eq!(
        waiting_reason(&due, "o_easy"),
        Some(WaitReason::RidersTaken)
    );
    let route = &due.routes[0];
    let easy = &due.waiting[0].trace.candidates[0].cost;
    assert!(
        route.cost.total > easy.total,
        "the due order is the costlier one"
    );
}

/// Three merchants 1 km from the one rider, food ready at the given times, due at the given
/// times.
fn three_merchants(ready_and_due: [(u64, u64); 3]) -> Plan {
    let ids = ["o_a", "o_b", "o_c"];
    let merchants = ["m_a", "m_b", "m_c"];
    let orders = (0..3)
        .map(|k| {
            let pickup = at(120.0 * k as f64, 1000.0);
            order(
                OrderSpec {
                    id: ids[k],
                    merchant: merchants[k],
                    pickup,
                    dropoff: pickup.destination(120.0 * k as f64, 1500.0),
                    ready_at_ms: ready_and_due[k].0,
                    due_ms: ready_and_due[k].1,
                },
                &["r_1"],
            )
        })
        .collect();
    plan_at(T, orders, vec![idle("r_1", centre())])
}

#[test]
fn with_more_orders_than_riders_the_longest_waiting_food_goes_first() {
    let later = T + 30 * MIN;
    let plan = three_merchants([(T - 5 * MIN, later), (T - 10 * MIN, later), (T, later)]);
    assert_eq!(assigned(&plan), vec![("r_1".into(), vec!["o_b".into()])]);
    assert_eq!(plan.waiting.len(), 2);
}

#[test]
fn with_more_orders_than_riders_the_most_overdue_goes_first() {
    let plan = three_merchants([(T, T - 3 * MIN), (T, T - MIN), (T, T - 8 * MIN)]);
    assert_eq!(assigned(&plan), vec![("r_1".into(), vec!["o_c".into()])]);
}

#[test]
fn food_beyond_the_horizon_is_not_planned_and_unknown_riders_are_no_candidates() {
    let plan = plan_at(
        T,
        vec![
            centre_order("o_later", T + 60 * MIN, T + 55 * MIN, &["r_1"]),
            centre_order("o_orphan", T, T, &["r_gone"]),
        ],
        vec![idle("r_1", centre())],
    );
    assert!(plan.routes.is_empty());
    assert_eq!(
        waiting_reason(&plan, "o_later"),
        Some(WaitReason::NotReadySoon)
    );
    assert_eq!(
        waiting_reason(&plan, "o_orphan"),
        Some(WaitReason::NoCandidate)
    );
}

#[test]
fn a_rider_whose_shift_ends_before_the_pickup_is_not_used() {
    let mut tired = idle("r_1", at(0.0, 3000.0));
    tired.shift_end_ms = Some(T + MIN);
    let plan = plan_at(T, vec![centre_order("o_1", T, T, &["r_1"])], vec![tired]);
    assert!(plan.routes.is_empty());
    assert_eq!(waiting_reason(&plan, "o_1"), Some(WaitReason::NoCandidate));
}

#[test]
fn random_cities_give_consistent_plans() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let travel = TravelModel::default();
    for case in 0..60 {
        let merchants: Vec<GeoPoint> = (0..rng.gen_range(1..5))
            .map(|_| at(rng.gen_range(0.0..360.0), rng.gen_range(0.0..4000.0)))
            .collect();
        let riders: Vec<FreeRider> = (0..rng.gen_range(0..6))
            .map(|k| FreeRider {
                rider_id: rid(&format!("r_{k}")),
                free_at_ms: T + rng.gen_range(0..10) * MIN,
                free_at: at(rng.gen_range(0.0..360.0), rng.gen_range(0.0..5000.0)),
                shift_end_ms: None,
            })
            .collect();
        let orders: Vec<WaitingOrder> = (0..rng.gen_range(0..10))
            .map(|k| {
                let m = rng.gen_range(0..merchants.len());
                let candidates: Vec<RiderId> = riders
                    .iter()
                    .filter(|_| rng.gen_bool(0.6))
                    .map(|r| r.rider_id.clone())
                    .collect();
                let ready_at_ms = T + rng.gen_range(0..30) * MIN - 10 * MIN;
                WaitingOrder {
                    order_id: OrderId::parse(&format!("o_{k}")).unwrap(),
                    merchant_id: MerchantId::parse(&format!("m_{m}")).unwrap(),
                    pickup: merchants[m],
                    dropoff: merchants[m]
                        .destination(rng.gen_range(0.0..360.0), rng.gen_range(200.0..5000.0)),
                    placed_ms: ready_at_ms - 15 * MIN,
                    ready_at_ms,
                    due_ms: ready_at_ms - rng.gen_range(0..8) * MIN,
                    candidate_riders: candidates,
                }
            })
            .collect();
        let input = PlanInput {
            now_ms: T,
            orders: orders.clone(),
            riders: riders.clone(),
        };
        let plan = solve(&input, &travel, &PlanConfig::default());

        let mut seen = HashSet::new();
        let mut riders_used = HashSet::new();
        for route in &plan.routes {
            assert!(riders_used.insert(route.rider_id.clone()), "case {case}");
            assert_eq!(route.orders.len(), route.dropoff_ms.len());
            assert!(route.arrive_ms >= T);
            for (id, &door_ms) in route.orders.iter().zip(&route.dropoff_ms) {
                let o = orders.iter().find(|o| &o.order_id == id).unwrap();
                assert!(seen.insert(id.clone()), "case {case}: {id} twice");
                assert_eq!(o.merchant_id, route.merchant_id);
                assert!(o.candidate_riders.contains(&route.rider_id));
                assert!(route.pickup_ms >= o.ready_at_ms);
                assert!(door_ms > route.pickup_ms);
            }
            let best = route.trace.candidates.iter().map(|c| c.cost.total).min();
            assert!(best.is_some_and(|b| b <= route.cost.total));
        }
        for w in &plan.waiting {
            for id in &w.orders {
                assert!(seen.insert(id.clone()), "case {case}: {id} twice");
            }
            // A due order waits only when no candidate was free for it.
            let due = w
                .orders
                .iter()
                .any(|id| orders.iter().any(|o| &o.order_id == id && o.due_ms <= T));
            if due {
                assert_ne!(w.reason, WaitReason::Deferred, "case {case}");
            }
        }
        assert_eq!(
            seen.len(),
            orders.len(),
            "case {case}: every order accounted for"
        );
    }
}

/// The round prices a pair now and a round later from one projection; that must equal
/// pricing each from scratch (`route_cost`, and `wait_cost` over every candidate).
#[test]
fn one_projection_prices_now_and_later_as_two_would() {
    let travel = TravelModel::default();
    let config = PlanConfig::default();
    let orders = vec![
        centre_order("o_1", T + 4 * MIN, T + 10 * MIN, &["r_1", "r_2"]),
        centre_order("o_2", T - MIN, T, &["r_1", "r_2"]),
    ];
    let bundles = bundle::build_bundles(&orders, &[0, 1], &travel, &config, 2);
    let mut riders = vec![idle("r_1", at(0.0, 800.0)), idle("r_2", at(200.0, 3000.0))];
    riders[1].free_at_ms = T + 2 * MIN; // busy, free soon
    riders[0].shift_end_ms = Some(T + MIN); // its pickup falls after its shift
    for b in &bundles {
        let mut later_best = None::<i64>;
        for r in &riders {
            let (now, later) = cost::price_now_and_later(b, &orders, r, T, &travel, &config);
            assert_eq!(now, cost::route_cost(b, &orders, r, T, &travel, &config));
            later_best = Some(later_best.map_or(later, |x| x.min(later)));
        }
        assert_eq!(
            cost::wait_cost_from(b, &orders, later_best, T, &config),
            cost::wait_cost(b, &orders, &riders, T, &travel, &config)
        );
    }
    assert!(cost::route_cost(&bundles[0], &orders, &riders[0], T, &travel, &config).is_none());
}
