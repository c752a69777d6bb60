//! Feasibility of a solution: the rules of the mdrplib README ("Solution format and
//! rules"), as the independent checker beside the data (`tools/mdrp_check.py`) enforces
//! them, and with its reading wherever the README is ambiguous. Metrics are elsewhere
//! ([`super::metrics`]).
//!
//! A courier's moves become stops (place, arrival, departure): the on-location from
//! `on_time`, then one per move, arriving `departure + ceil(metres / meters_per_minute)`
//! and leaving at the next move's departure (never, after the last). Each assignment's
//! pickup must fall inside a stop at its restaurant with `s_p/2` to spare on both sides;
//! each drop-off, in the listed order, inside a later stop at the diner with `s_d/2`
//! after arrival and before departure. A drop-off recorded later than `arrival + s_d/2`
//! is only a warning, as in mdrp_check.py. Half service times are compared doubled, so odd
//! service times stay exact.

mod report;

pub use report::{Report, Rule, Violation};

use super::instance::{travel_min, Courier, Instance, InstanceOrder};
use super::solution::{DeliveredOrder, Solution};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A courier's stay somewhere: from `arr` until `dep` (`None`: for good).
struct Stop<'a> {
    place: &'a str,
    arr: u64,
    dep: Option<u64>,
    line: usize,
}

impl Stop<'_> {
    fn holds(&self, t: u64) -> bool {
        self.arr <= t && self.dep.is_none_or(|d| t <= d)
    }

    /// `arr + half <= t <= dep - half` for a service of `service` minutes, doubled.
    fn serves(&self, t: u64, service: u64) -> bool {
        2 * t >= 2 * self.arr + service && self.dep.is_none_or(|d| 2 * t + service <= 2 * d)
    }

    fn dep_text(&self) -> String {
        self.dep.map_or("never".into(), |d| d.to_string())
    }
}

/// A move with known ids; `origin` is the courier's id for its on-location (`0`).
struct Leg<'a> {
    line: usize,
    departure: u64,
    origin: &'a str,
    destination: &'a str,
}

/// Lines are file lines: the header is line 1, so element `i` is line `i + 2`.
const FIRST_LINE: usize = 2;

/// Every rule of the README over `solution`, as mdrp_check.py applies them.
pub fn check(instance: &Instance, solution: &Solution) -> Report {
    let mut rep = Report::default();
    let p = &instance.params;
    let (sp, sd) = (p.pickup_service_min, p.dropoff_service_min);
    let orders: HashMap<&str, &InstanceOrder> =
        instance.orders.iter().map(|o| (o.id.as_str(), o)).collect();
    let couriers: HashMap<&str, &Courier> = instance
        .couriers
        .iter()
        .map(|c| (c.id.as_str(), c))
        .collect();
    let restaurants: HashMap<&str, (f64, f64)> = instance
        .restaurants
        .iter()
        .map(|r| (r.id.as_str(), (r.x, r.y)))
        .collect();

    // Assignments: ids, uniqueness, one restaurant, times against the instance.
    let mut assign_of: HashMap<&str, usize> = HashMap::new();
    let mut known_assignments = Vec::new();
    for (i, a) in solution.assignments.iter().enumerate() {
        let line = i + FIRST_LINE;
        let (cid, pt, at) = (a.courier.as_str(), a.pickup_time, a.assignment_time);
        let Some(c) = couriers.get(cid) else {
            let msg = format!("assignments line {line}: unknown courier");
            rep.add(Rule::UnknownId, Some(cid), None, msg);
            continue;
        };
        if let Some(o) = a.orders.iter().find(|o| !orders.contains_key(o.as_str())) {
            let msg = format!("assignments line {line}: unknown order");
            rep.add(Rule::UnknownId, Some(cid), Some(o), msg);
            continue;
        }
        if a.orders.is_empty() {
            let msg = format!("assignments line {line}: no orders");
            rep.add(Rule::Format, Some(cid), None, msg);
            continue;
        }
        let rests: BTreeSet<&str> = a
            .orders
            .iter()
            .map(|o| orders[o.as_str()].restaurant.as_str())
            .collect();
        if rests.len() > 1 {
            let msg = format!(
                "assignments line {line}: bundle {:?} mixes restaurants {rests:?}",
                a.orders
            );
            rep.add(Rule::MixedRestaurantBundle, Some(cid), None, msg);
        }
        known_assignments.push(i);
        for o in &a.orders {
            let od = orders[o.as_str()];
            if let Some(&j) = assign_of.get(o.as_str()) {
                let msg = format!(
                    "assignments line {line}: already assigned on line {}",
                    j + FIRST_LINE
                );
                rep.add(Rule::DuplicateOrder, Some(cid), Some(o), msg);
                continue;
            }
            assign_of.insert(o, i);
            if at < od.placement {
                let msg = format!(
                    "assignments line {line}: assigned at {at}, placed at {}",
                    od.placement
                );
                rep.add(Rule::AssignedBeforePlacement, Some(cid), Some(o), msg);
            }
            if pt < od.ready {
                let msg = format!(
                    "assignments line {line}: picked up at {pt}, ready at {}",
                    od.ready
                );
                rep.add(Rule::PickupBeforeReady, Some(cid), Some(o), msg);
            }
            if pt < od.placement {
                let msg = format!(
                    "assignments line {line}: picked up at {pt}, placed at {}",
                    od.placement
                );
                rep.add(Rule::PickupBeforeReady, Some(cid), Some(o), msg);
            }
        }
        if pt < at {
            let msg = format!("assignments line {line}: pickup {pt} before assignment time {at}");
            rep.add(Rule::PickupBeforeAssignment, Some(cid), None, msg);
        }
        if pt > c.off {
            let msg = format!(
                "assignments line {line}: pickup {pt} after off_time {}",
                c.off
            );
            rep.add(Rule::PickupAfterOffTime, Some(cid), None, msg);
        }
        if pt < c.on {
            let msg = format!(
                "assignments line {line}: pickup {pt} before on_time {}",
                c.on
            );
            rep.add(Rule::BeforeOnTime, Some(cid), None, msg);
        }
        if at < c.on {
            let msg = format!(
                "assignments line {line}: assigned at {at}, before on_time {}",
                c.on
            );
            rep.add(Rule::AssignedBeforeOnTime, Some(cid), None, msg);
        }
    }

    // The orders file against the instance and the assignments.
    let mut listed: HashSet<&str> = HashSet::new();
    let mut delivered: HashMap<&str, &DeliveredOrder> = HashMap::new();
    for (i, r) in solution.orders.iter().enumerate() {
        let line = i + FIRST_LINE;
        let (oid, cid) = (r.order.as_str(), r.courier.as_str());
        let Some(od) = orders.get(oid) else {
            let msg = format!("orders line {line}: unknown order");
            rep.add(Rule::UnknownId, Some(cid), Some(oid), msg);
            continue;
        };
        if !listed.insert(oid) {
            let msg = format!("orders line {line}: listed more than once");
            rep.add(Rule::DuplicateOrder, Some(cid), Some(oid), msg);
            continue;
        }
        if r.placement != od.placement {
            let msg = format!(
                "orders line {line}: placement_time {} != instance {}",
                r.placement, od.placement
            );
            rep.add(Rule::OrderFileMismatch, Some(cid), Some(oid), msg);
        }
        if r.ready != od.ready {
            let msg = format!(
                "orders line {line}: ready_time {} != instance {}",
                r.ready, od.ready
            );
            rep.add(Rule::OrderFileMismatch, Some(cid), Some(oid), msg);
        }
        if !couriers.contains_key(cid) {
            let msg = format!("orders line {line}: unknown courier");
            rep.add(Rule::UnknownId, Some(cid), Some(oid), msg);
            continue;
        }
        let Some(&ai) = assign_of.get(oid) else {
            let msg = format!("orders line {line}: delivered but in no assignment");
            rep.add(Rule::DeliveredNotAssigned, Some(cid), Some(oid), msg);
            continue;
        };
        let a = &solution.assignments[ai];
        let aline = ai + FIRST_LINE;
        if a.courier != r.courier {
            let msg = format!(
                "orders line {line}: courier {cid} != {} on assignments line {aline}",
                a.courier
            );
            rep.add(Rule::OrderFileMismatch, Some(cid), Some(oid), msg);
        }
        if a.pickup_time != r.pickup {
            let msg = format!(
                "orders line {line}: pickup_time {} != {} on assignments line {aline}",
                r.pickup, a.pickup_time
            );
            rep.add(Rule::OrderFileMismatch, Some(cid), Some(oid), msg);
        }
        if r.dropoff < r.pickup {
            let msg = format!(
                "orders line {line}: dropoff {} before pickup {}",
                r.dropoff, r.pickup
            );
            rep.add(Rule::DropoffSequence, Some(cid), Some(oid), msg);
        }
        delivered.insert(oid, r);
    }
    for &i in &known_assignments {
        let a = &solution.assignments[i];
        for o in &a.orders {
            if assign_of.get(o.as_str()) == Some(&i) && !listed.contains(o.as_str()) {
                let msg = format!(
                    "assignments line {}: assigned but not in the orders file",
                    i + FIRST_LINE
                );
                rep.add(Rule::AssignedNotDelivered, Some(&a.courier), Some(o), msg);
            }
        }
    }

    // Moves: known ids, one contiguous block per courier.
    let mut legs: HashMap<&str, Vec<Leg>> = HashMap::new();
    let mut closed: HashSet<&str> = HashSet::new();
    let mut prev: Option<&str> = None;
    for (i, m) in solution.moves.iter().enumerate() {
        let line = i + FIRST_LINE;
        let cid = m.courier.as_str();
        if !couriers.contains_key(cid) {
            let msg = format!("moves line {line}: unknown courier");
            rep.add(Rule::UnknownId, Some(cid), None, msg);
            continue;
        }
        let origin = if m.origin == "0" {
            cid
        } else {
            m.origin.as_str()
        };
        let known = |id: &str| restaurants.contains_key(id) || orders.contains_key(id);
        let bad = if !known(origin) && origin != cid {
            Some(("origin", &m.origin))
        } else if !known(&m.destination) {
            Some(("destination", &m.destination))
        } else {
            None
        };
        if let Some((role, id)) = bad {
            let msg = format!("moves line {line}: {role} {id:?} is not a restaurant or order id");
            rep.add(Rule::UnknownId, Some(cid), None, msg);
            continue;
        }
        if prev != Some(cid) && closed.contains(cid) {
            let msg =
                format!("moves line {line}: this courier's moves are not one contiguous block");
            rep.add(Rule::NonContiguousMoves, Some(cid), None, msg);
        }
        if let Some(pc) = prev.filter(|&pc| pc != cid) {
            closed.insert(pc);
        }
        prev = Some(cid);
        legs.entry(cid).or_default().push(Leg {
            line,
            departure: m.departure,
            origin,
            destination: &m.destination,
        });
    }

    // Routes: each assignment's pickup and drop-offs against the courier's stops.
    let mut by_courier: HashMap<&str, Vec<usize>> = HashMap::new();
    for &i in &known_assignments {
        by_courier
            .entry(solution.assignments[i].courier.as_str())
            .or_default()
            .push(i);
    }
    let place = |id: &str, c: &Courier| -> (f64, f64) {
        if id == c.id {
            (c.x, c.y)
        } else if let Some(&xy) = restaurants.get(id) {
            xy
        } else {
            let o = orders[id];
            (o.x, o.y)
        }
    };
    for c in &instance.couriers {
        let cid = Some(c.id.as_str());
        let mut stops = vec![Stop {
            place: &c.id,
            arr: c.on,
            dep: None,
            line: 0,
        }];
        for (k, m) in legs
            .get(c.id.as_str())
            .map_or(&[][..], Vec::as_slice)
            .iter()
            .enumerate()
        {
            let last = stops.last_mut().expect("the on-location");
            let (line, dep) = (m.line, m.departure);
            if m.origin != last.place {
                let shown = |p: &str| {
                    if p == c.id {
                        "0".to_string()
                    } else {
                        p.to_string()
                    }
                };
                let msg = format!(
                    "moves line {line}: departs from {} but is at {}",
                    shown(m.origin),
                    shown(last.place)
                );
                rep.add(Rule::RouteDiscontinuity, cid, None, msg);
            }
            if k == 0 && dep < c.on {
                let msg = format!(
                    "moves line {line}: first departure {dep} before on_time {}",
                    c.on
                );
                rep.add(Rule::BeforeOnTime, cid, None, msg);
            } else if dep < last.arr {
                let msg = format!(
                    "moves line {line}: departs {} at {dep} before arriving there at {}",
                    last.place, last.arr
                );
                rep.add(Rule::RouteTiming, cid, None, msg);
            }
            if dep > c.off && restaurants.contains_key(m.destination) {
                let msg = format!(
                    "moves line {line}: heads to restaurant {} at {dep}, after off_time {}",
                    m.destination, c.off
                );
                rep.add(Rule::MoveAfterOffTime, cid, None, msg);
            }
            last.dep = Some(dep);
            let travel = travel_min(
                place(m.origin, c),
                place(m.destination, c),
                p.meters_per_minute,
            );
            stops.push(Stop {
                place: m.destination,
                arr: dep + travel,
                dep: None,
                line,
            });
        }

        let mut mine = by_courier.remove(c.id.as_str()).unwrap_or_default();
        mine.sort_by_key(|&i| (solution.assignments[i].pickup_time, i));
        let mut used = HashSet::new();
        // The stop where the previous bundle's last drop-off happened.
        let mut last_done = 0;
        for i in mine {
            let a = &solution.assignments[i];
            let line = i + FIRST_LINE;
            let rest = orders[a.orders[0].as_str()].restaurant.as_str();
            let pt = a.pickup_time;
            let cands: Vec<usize> = (0..stops.len())
                .filter(|&j| stops[j].place == rest && stops[j].holds(pt))
                .collect();
            let Some(&first) = cands.first() else {
                let at = stops
                    .iter()
                    .find(|s| s.holds(pt))
                    .map_or("in transit", |s| s.place);
                let msg =
                    format!("assignments line {line}: not at {rest} at pickup {pt} (at {at})");
                rep.add(Rule::NotAtRestaurant, cid, None, msg);
                continue;
            };
            let si = cands.iter().copied().find(|&j| stops[j].serves(pt, sp));
            if si.is_none() {
                let s = &stops[first];
                let msg = format!(
                    "assignments line {line}: pickup {pt} at {rest} needs arrival + {sp}/2 \
                     <= pickup <= departure - {sp}/2; arrives {}, leaves {}",
                    s.arr,
                    s.dep_text()
                );
                rep.add(Rule::PickupService, cid, None, msg);
            }
            let si = si.unwrap_or(first);
            if si < last_done {
                let msg = format!(
                    "assignments line {line}: picks up at {rest} at {pt} before the drop-offs \
                     of its previous bundle"
                );
                rep.add(Rule::OverlappingAssignments, cid, None, msg);
            }
            let mut prev = si;
            for o in &a.orders {
                let Some(d) = delivered.get(o.as_str()) else {
                    continue;
                };
                let dt = d.dropoff;
                let visits: Vec<usize> = (prev + 1..stops.len())
                    .filter(|&j| stops[j].place == o.as_str())
                    .collect();
                let Some(&next_visit) = visits.first() else {
                    let before = stops[..=prev].iter().any(|s| s.place == o.as_str());
                    let (rule, msg) = if before {
                        (
                            Rule::DropoffSequence,
                            "only before its pickup or the bundle's previous drop-off",
                        )
                    } else {
                        (Rule::NotAtDiner, "never")
                    };
                    let msg =
                        format!("assignments line {line}: visits the drop-off location {msg}");
                    rep.add(rule, cid, Some(o), msg);
                    continue;
                };
                let inside = visits.iter().copied().find(|&j| stops[j].holds(dt));
                let j = inside.unwrap_or(next_visit);
                let s = &stops[j];
                let (arr, leaves) = (s.arr, s.dep_text());
                if inside.is_none() {
                    let msg = format!("dropoff {dt} but at the diner only from {arr} to {leaves}");
                    rep.add(Rule::NotAtDiner, cid, Some(o), msg);
                } else if !s.serves(dt, sd) {
                    let msg = format!(
                        "dropoff {dt} needs arrival + {sd}/2 <= dropoff <= departure - {sd}/2; \
                         arrives {arr}, leaves {leaves}"
                    );
                    rep.add(Rule::DropoffService, cid, Some(o), msg);
                } else if 2 * dt > 2 * arr + sd {
                    let msg = format!("dropoff {dt} later than arrival {arr} + {sd}/2");
                    rep.add(Rule::LateDropoffRecord, cid, Some(o), msg);
                }
                used.insert(j);
                prev = j;
            }
            last_done = last_done.max(prev);
        }
        for (j, s) in stops.iter().enumerate().skip(1) {
            if orders.contains_key(s.place) && !used.contains(&j) {
                let msg = format!("moves line {}: no drop-off at this visit", s.line);
                rep.add(Rule::DinerVisitWithoutDropoff, cid, Some(s.place), msg);
            }
        }
    }
    rep
}

#[cfg(test)]
mod tests;
