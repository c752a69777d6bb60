//! One test per rule: a small feasible solution passes, and one change to it (to the
//! solution, or to the instance under it) breaks exactly that rule.

use super::*;
use crate::mdrp::instance::{Params, Restaurant};
use crate::mdrp::solution::{Assignment, Move};

/// Two restaurants 1 km apart, four orders, two couriers; 100 m per minute, 4 + 4 minutes
/// of service.
fn instance() -> Instance {
    let order = |id: &str, x: f64, y: f64, placement, restaurant: &str, ready| InstanceOrder {
        id: id.into(),
        x,
        y,
        placement,
        restaurant: restaurant.into(),
        ready,
    };
    let courier = |id: &str, x: f64, y: f64, on, off| Courier {
        id: id.into(),
        x,
        y,
        on,
        off,
    };
    let restaurant = |id: &str, x: f64| Restaurant {
        id: id.into(),
        x,
        y: 0.0,
    };
    Instance {
        name: "hand-made".into(),
        params: Params {
            meters_per_minute: 100.0,
            pickup_service_min: 4,
            dropoff_service_min: 4,
            target_ctd_min: 40.0,
            max_ctd_min: 90.0,
            pay_per_order: 10.0,
            guaranteed_pay_per_hour: 15.0,
        },
        restaurants: vec![restaurant("r1", 0.0), restaurant("r2", 1000.0)],
        orders: vec![
            order("o1", 0.0, 500.0, 10, "r1", 20),
            order("o2", 300.0, 400.0, 12, "r1", 22),
            order("o3", 1000.0, 600.0, 15, "r2", 30),
            order("o4", 1000.0, -400.0, 20, "r2", 35),
        ],
        couriers: vec![
            courier("c1", 0.0, 300.0, 0, 120),
            courier("c2", 1000.0, 300.0, 0, 60),
        ],
    }
}

/// c1 carries the bundle o1, o2 from r1, then waits at r1 and goes to r2 (no pickup);
/// c2 carries o3, then o4, from r2. Every time is the earliest the rules allow.
fn feasible() -> Solution {
    let words = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let num = |s: &String| s.parse::<u64>().unwrap();
    let assignment = |l: &str| {
        let w = words(l);
        Assignment {
            assignment_time: num(&w[0]),
            pickup_time: num(&w[1]),
            courier: w[2].clone(),
            orders: w[3..].to_vec(),
        }
    };
    let order = |l: &str| {
        let w = words(l);
        DeliveredOrder {
            order: w[0].clone(),
            placement: num(&w[1]),
            ready: num(&w[2]),
            pickup: num(&w[3]),
            dropoff: num(&w[4]),
            courier: w[5].clone(),
        }
    };
    let mv = |l: &str| {
        let w = words(l);
        Move {
            courier: w[0].clone(),
            departure: num(&w[1]),
            origin: w[2].clone(),
            destination: w[3].clone(),
        }
    };
    Solution {
        assignments: ["15 22 c1 o1 o2", "18 30 c2 o3", "36 50 c2 o4"]
            .map(assignment)
            .to_vec(),
        orders: [
            "o1 10 20 22 31 c1",
            "o2 12 22 22 39 c1",
            "o3 15 30 30 40 c2",
            "o4 20 35 50 58 c2",
        ]
        .map(order)
        .to_vec(),
        // c1: 3 min to r1, 5 to o1, 4 to o2, 5 back to r1, 10 to r2.
        // c2: 3 min to r2, 6 to o3, 6 back to r2, 4 to o4.
        moves: [
            "c1 5 0 r1",
            "c1 24 r1 o1",
            "c1 33 o1 o2",
            "c1 41 o2 r1",
            "c1 50 r1 r2",
            "c2 20 0 r2",
            "c2 32 r2 o3",
            "c2 42 o3 r2",
            "c2 52 r2 o4",
        ]
        .map(mv)
        .to_vec(),
    }
}

/// Applies `change` to the feasible case and returns the rules the check then finds.
fn broken(change: impl FnOnce(&mut Instance, &mut Solution)) -> Vec<Rule> {
    let (mut inst, mut sol) = (instance(), feasible());
    change(&mut inst, &mut sol);
    let rep = check(&inst, &sol);
    for v in rep.violations.iter().chain(&rep.warnings) {
        println!("{v}");
    }
    rep.rules().into_iter().collect()
}

fn order<'a>(sol: &'a mut Solution, id: &str) -> &'a mut DeliveredOrder {
    sol.orders.iter_mut().find(|o| o.order == id).unwrap()
}

#[test]
fn the_feasible_solution_passes_without_warnings() {
    let rep = check(&instance(), &feasible());
    assert_eq!(rep, Report::default(), "{}", rep.details(10));
    assert_eq!(rep.summary(), "feasible (0 warnings)");
}

#[test]
fn assignment_before_placement() {
    let rules = broken(|_, s| s.assignments[0].assignment_time = 11);
    assert_eq!(rules, [Rule::AssignedBeforePlacement]);
}

#[test]
fn pickup_before_ready() {
    // The bundle's pickup, in both files: o2 is ready only at 22.
    let rules = broken(|_, s| {
        s.assignments[0].pickup_time = 21;
        order(s, "o1").pickup = 21;
        order(s, "o2").pickup = 21;
    });
    assert_eq!(rules, [Rule::PickupBeforeReady]);
}

#[test]
fn pickup_before_assignment() {
    let rules = broken(|_, s| s.assignments[0].assignment_time = 23);
    assert_eq!(rules, [Rule::PickupBeforeAssignment]);
}

#[test]
fn pickup_after_off_time() {
    // c2 picks o4 up at 50; delivering after off_time is allowed, picking up is not.
    let rules = broken(|i, _| i.couriers[1].off = 49);
    assert_eq!(rules, [Rule::PickupAfterOffTime]);
}

#[test]
fn first_departure_before_on_time() {
    let rules = broken(|i, _| i.couriers[0].on = 6);
    assert_eq!(rules, [Rule::BeforeOnTime]);
}

#[test]
fn moves_not_contiguous() {
    let rules = broken(|_, s| {
        let m = s.moves.remove(4);
        s.moves.push(m);
    });
    assert_eq!(rules, [Rule::NonContiguousMoves]);
}

#[test]
fn origin_not_the_previous_destination() {
    // o1 and o2 are both 5 minutes from r1: only the origin is wrong.
    let rules = broken(|_, s| s.moves[3].origin = "o1".into());
    assert_eq!(rules, [Rule::RouteDiscontinuity]);
    let rules = broken(|_, s| s.moves[1].origin = "0".into());
    assert!(rules.contains(&Rule::RouteDiscontinuity), "{rules:?}");
}

#[test]
fn departure_before_arrival() {
    // c1 reaches r1 again at 41 + 5 = 46.
    let rules = broken(|_, s| s.moves[4].departure = 45);
    assert_eq!(rules, [Rule::RouteTiming]);
}

#[test]
fn not_at_the_restaurant_at_pickup() {
    // o4 from r1, where c2 never goes.
    let rules = broken(|i, _| i.orders[3].restaurant = "r1".into());
    assert_eq!(rules, [Rule::NotAtRestaurant]);
}

#[test]
fn pickup_less_than_half_service_after_arrival() {
    // c2 reaches r2 at 30 and picks up at 30, not 32.
    let rules = broken(|_, s| s.moves[5].departure = 27);
    assert_eq!(rules, [Rule::PickupService]);
}

#[test]
fn departure_less_than_half_service_after_pickup() {
    // c2 leaves r2 at 51 after picking o4 up at 50 (o4's drop-off at 58 becomes a late
    // record, a warning).
    let rules = broken(|_, s| s.moves[8].departure = 51);
    assert_eq!(rules, [Rule::PickupService]);
}

#[test]
fn pickup_before_finishing_the_previous_bundle() {
    // c2 picks o3 up at 30, waits at r2 for o4 (50), drops o4 and only then o3.
    let rules = broken(|_, s| {
        s.moves.truncate(6);
        s.moves.push(Move {
            courier: "c2".into(),
            departure: 52,
            origin: "r2".into(),
            destination: "o4".into(),
        });
        s.moves.push(Move {
            courier: "c2".into(),
            departure: 60,
            origin: "o4".into(),
            destination: "o3".into(),
        });
        order(s, "o3").dropoff = 72;
    });
    assert_eq!(rules, [Rule::OverlappingAssignments]);
}

#[test]
fn dropoff_while_not_at_the_diner() {
    // c1 is at o1 from 29 to 33.
    let rules = broken(|_, s| order(s, "o1").dropoff = 34);
    assert_eq!(rules, [Rule::NotAtDiner]);
}

#[test]
fn dropoff_less_than_half_service_after_arrival() {
    let rules = broken(|_, s| order(s, "o1").dropoff = 30);
    assert_eq!(rules, [Rule::DropoffService]);
}

#[test]
fn departure_less_than_half_service_after_dropoff() {
    // c1 leaves o2 at 40, one minute after dropping it off; still at r1 by 45.
    let rules = broken(|_, s| s.moves[3].departure = 40);
    assert_eq!(rules, [Rule::DropoffService]);
}

#[test]
fn a_late_dropoff_record_is_only_a_warning() {
    // c2 stays at o4 for good: 60 is a drop-off 2 minutes after arrival + s_d/2.
    let (inst, mut sol) = (instance(), feasible());
    order(&mut sol, "o4").dropoff = 60;
    let rep = check(&inst, &sol);
    assert!(rep.is_feasible(), "{}", rep.details(10));
    assert_eq!(rep.warnings.len(), 1);
    assert_eq!(rep.warnings[0].rule, Rule::LateDropoffRecord);
    assert_eq!(rep.summary(), "feasible (1 warnings)");
}

#[test]
fn an_order_in_two_assignments_or_listed_twice() {
    let rules = broken(|_, s| {
        let o = s.orders[0].clone();
        s.orders.push(o);
    });
    assert_eq!(rules, [Rule::DuplicateOrder]);
    // In two assignments: the second one cannot deliver it as well.
    let rules = broken(|_, s| s.assignments[2].orders.push("o3".into()));
    assert!(rules.contains(&Rule::DuplicateOrder), "{rules:?}");
}

#[test]
fn a_bundle_from_two_restaurants() {
    let rules = broken(|i, _| i.orders[1].restaurant = "r2".into());
    assert_eq!(rules, [Rule::MixedRestaurantBundle]);
}

#[test]
fn a_bundle_with_no_order() {
    let rules = broken(|_, s| s.assignments[1].orders.clear());
    assert!(rules.contains(&Rule::Format), "{rules:?}");
}

#[test]
fn orders_file_disagrees_with_instance_or_assignments() {
    let rules = broken(|_, s| order(s, "o1").placement = 11);
    assert_eq!(rules, [Rule::OrderFileMismatch]);
    let rules = broken(|_, s| order(s, "o3").ready = 29);
    assert_eq!(rules, [Rule::OrderFileMismatch]);
    let rules = broken(|_, s| order(s, "o3").pickup = 31);
    assert_eq!(rules, [Rule::OrderFileMismatch]);
    let rules = broken(|_, s| order(s, "o3").courier = "c1".into());
    assert_eq!(rules, [Rule::OrderFileMismatch]);
}

#[test]
fn delivered_without_an_assignment() {
    let rules = broken(|_, s| s.assignments[0].orders.truncate(1));
    assert_eq!(rules, [Rule::DeliveredNotAssigned]);
}

#[test]
fn assigned_without_a_delivery() {
    let rules = broken(|_, s| drop(s.orders.pop()));
    assert_eq!(rules, [Rule::AssignedNotDelivered]);
}

#[test]
fn bundle_dropped_off_out_of_its_listed_sequence() {
    let rules = broken(|_, s| s.assignments[0].orders.reverse());
    assert_eq!(rules, [Rule::DropoffSequence]);
}

#[test]
fn unknown_ids() {
    let rules = broken(|_, s| s.moves[4].destination = "r9".into());
    assert_eq!(rules, [Rule::UnknownId]);
}

#[test]
fn violations_name_the_rule_courier_order_and_numbers() {
    let (inst, mut sol) = (instance(), feasible());
    order(&mut sol, "o1").dropoff = 30;
    let rep = check(&inst, &sol);
    let v = rep.violations[0].to_string();
    assert!(
        v.starts_with("DROPOFF_SERVICE courier c1 order o1: dropoff 30"),
        "{v}"
    );
    assert!(v.contains("arrives 29, leaves 33"), "{v}");
    assert!(rep
        .summary()
        .starts_with("INFEASIBLE: 1 violations (DROPOFF_SERVICE 1)"));
    assert_eq!(rep.counts().get("DROPOFF_SERVICE"), Some(&1));
}
