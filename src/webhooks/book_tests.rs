//! The book's rules: one delivery in flight per subscription, in order; retries on the
//! policy's schedule; dead letters, their cap and replay; caps on queues.

use super::*;

const POLICY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    base_ms: 100,
    max_ms: 1000,
};
const ORDER: &str = "order.status_changed";
const OPENED: &str = "escalation.opened";

fn hook(id: &str, events: &[&str]) -> WebhookRecord {
    WebhookRecord {
        id: WebhookId::parse(id).unwrap(),
        url: format!("https://example.com/{id}"),
        events: events.iter().map(|s| s.to_string()).collect(),
        secret: format!("secret-of-{id}"),
        created_ms: 0,
    }
}

fn wh(id: &str) -> WebhookId {
    WebhookId::parse(id).unwrap()
}

fn event(book: &mut Book, kind: &str, body: &str, now: u64) -> Vec<DeliveryRecord> {
    let (queued, dropped) = book.enqueue(kind, &WebhookEventId::generate(), body, now);
    assert_eq!(dropped, 0);
    queued
}

/// Sends what is due and fails or delivers each as `ok` says; returns the bodies sent.
fn round(book: &mut Book, now: u64, ok: bool) -> Vec<(String, Finished)> {
    book.take_due(now)
        .into_iter()
        .map(|a| {
            let result = if ok { Ok(()) } else { Err("HTTP 500".into()) };
            let f = book.finish(
                &a.delivery.webhook_id,
                &a.delivery.id,
                result,
                now,
                &POLICY,
                0.0,
            );
            (a.delivery.body, f)
        })
        .collect()
}

#[test]
fn a_subscription_gets_its_events_one_at_a_time_in_order() {
    let mut b = Book::new(10, 10);
    b.add(hook("wh_a", &[ORDER]));
    for body in ["1", "2", "3"] {
        event(&mut b, ORDER, body, 0);
    }
    let first = b.take_due(0);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].delivery.body, "1");
    assert_eq!(first[0].url, "https://example.com/wh_a");
    assert_eq!(first[0].secret, "secret-of-wh_a");
    assert!(b.take_due(0).is_empty(), "the next waits for the first");
    assert_eq!(b.next_due_ms(), None, "nothing due while the head is out");
    let d = &first[0].delivery;
    let f = b.finish(&d.webhook_id, &d.id, Ok(()), 0, &POLICY, 0.0);
    assert!(matches!(f, Finished::Delivered(ref d) if d.attempts == 1));
    let sent: Vec<_> = (0..2)
        .flat_map(|_| round(&mut b, 0, true))
        .map(|x| x.0)
        .collect();
    assert_eq!(sent, vec!["2", "3"]);
    assert_eq!(b.list()[0].1, 0, "nothing pending");
}

#[test]
fn only_subscribed_events_are_queued_and_each_subscription_has_its_own_queue() {
    let mut b = Book::new(10, 10);
    b.add(hook("wh_a", &[ORDER]));
    b.add(hook("wh_b", &[ORDER, OPENED]));
    assert!(b.wants(OPENED) && !b.wants("escalation.resolved"));
    assert_eq!(event(&mut b, ORDER, "o", 0).len(), 2);
    let opened = event(&mut b, OPENED, "e", 0);
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].webhook_id, wh("wh_b"));
    // wh_a failing does not hold up wh_b.
    let attempts = b.take_due(0);
    assert_eq!(attempts.len(), 2);
    for a in attempts {
        let ok = a.delivery.webhook_id == wh("wh_b");
        let result = if ok { Ok(()) } else { Err("refused".into()) };
        b.finish(
            &a.delivery.webhook_id,
            &a.delivery.id,
            result,
            0,
            &POLICY,
            0.0,
        );
    }
    let next = b.take_due(0);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].delivery.body, "e");
}

#[test]
fn a_failure_is_retried_on_the_schedule_then_becomes_a_dead_letter() {
    let mut b = Book::new(10, 10);
    b.add(hook("wh_a", &[ORDER]));
    event(&mut b, ORDER, "1", 1000);
    event(&mut b, ORDER, "2", 1000);
    let (_, f) = round(&mut b, 1000, false).remove(0);
    let Finished::Retry(d) = f else {
        panic!("{f:?}")
    };
    assert_eq!((d.attempts, d.next_attempt_ms), (1, 1050));
    assert_eq!(d.last_error.as_deref(), Some("HTTP 500"));
    assert!(
        b.take_due(1049).is_empty(),
        "not before its time, nor the next one"
    );
    assert_eq!(b.next_due_ms(), Some(1050));
    let (_, f) = round(&mut b, 1050, false).remove(0);
    assert!(matches!(f, Finished::Retry(ref d) if d.next_attempt_ms == 1150));
    let (body, f) = round(&mut b, 1150, false).remove(0);
    assert_eq!(body, "1");
    let Finished::Dead { dead, evicted } = f else {
        panic!("{f:?}")
    };
    assert_eq!(
        (dead.attempts, dead.dead_ms, evicted),
        (3, Some(1150), None)
    );
    assert_eq!(b.dead_letters(), vec![dead]);
    let (body, _) = round(&mut b, 1150, true).remove(0);
    assert_eq!(body, "2", "the next one goes once the first gave up");
}

#[test]
fn full_queues_drop_new_events_and_count_them() {
    let mut b = Book::new(2, 10);
    b.add(hook("wh_a", &[ORDER]));
    b.add(hook("wh_b", &[ORDER]));
    for _ in 0..2 {
        event(&mut b, ORDER, "x", 0);
    }
    let (queued, dropped) = b.enqueue(ORDER, &WebhookEventId::generate(), "y", 0);
    assert_eq!((queued.len(), dropped), (0, 2));
}

#[test]
fn dead_letters_are_capped_oldest_out() {
    let mut b = Book::new(10, 2);
    b.add(hook("wh_a", &[ORDER]));
    let once = RetryPolicy {
        max_attempts: 1,
        ..POLICY
    };
    let mut evicted = Vec::new();
    for (i, body) in ["1", "2", "3"].into_iter().enumerate() {
        event(&mut b, ORDER, body, 0);
        let a = b.take_due(0).remove(0);
        let f = b.finish(
            &a.delivery.webhook_id,
            &a.delivery.id,
            Err("x".into()),
            i as u64,
            &once,
            0.0,
        );
        let Finished::Dead { evicted: e, .. } = f else {
            panic!("{f:?}")
        };
        evicted.extend(e.map(|d| d.body));
    }
    assert_eq!(evicted, vec!["1"]);
    let left: Vec<_> = b.dead_letters().into_iter().map(|d| d.body).collect();
    assert_eq!(left, vec!["3", "2"], "newest first");
}

#[test]
fn a_replayed_dead_letter_goes_to_the_back_of_its_queue_with_fresh_attempts() {
    let mut b = Book::new(2, 10);
    b.add(hook("wh_a", &[ORDER]));
    event(&mut b, ORDER, "old", 0);
    for now in [0, 50, 150] {
        round(&mut b, now, false);
    }
    let dead = b.dead_letters().remove(0);
    event(&mut b, ORDER, "new", 200);
    let unknown = DeliveryId::parse("whd_nope").unwrap();
    assert_eq!(
        b.replay_candidate(&unknown, 300),
        Err(ReplayError::NotFound)
    );
    let again = b.replay_candidate(&dead.id, 300).unwrap();
    assert_eq!(
        (again.attempts, again.next_attempt_ms, again.dead_ms),
        (0, 300, None)
    );
    assert_eq!(again.event_id, dead.event_id, "receivers can de-duplicate");
    assert!(
        b.dead_letters().len() == 1,
        "nothing changes before the commit"
    );
    assert!(b.commit_replay(again.clone()));
    assert!(b.dead_letters().is_empty());
    assert!(!b.commit_replay(again), "a second commit finds nothing");
    let sent: Vec<_> = (0..2)
        .flat_map(|_| round(&mut b, 300, true))
        .map(|x| x.0)
        .collect();
    assert_eq!(sent, vec!["new", "old"]);
    // A full queue refuses a replay.
    event(&mut b, ORDER, "a", 400);
    for now in [400, 450, 550] {
        round(&mut b, now, false);
    }
    event(&mut b, ORDER, "b", 600);
    event(&mut b, ORDER, "c", 600);
    let dead = b.dead_letters().remove(0);
    assert_eq!(
        b.replay_candidate(&dead.id, 700),
        Err(ReplayError::QueueFull)
    );
}

#[test]
fn deleting_a_subscription_takes_its_deliveries_and_a_late_result_is_ignored() {
    let mut b = Book::new(10, 10);
    b.add(hook("wh_a", &[ORDER]));
    b.add(hook("wh_b", &[ORDER]));
    event(&mut b, ORDER, "1", 0);
    for now in [0, 50, 150] {
        round(&mut b, now, false);
    }
    let queued = event(&mut b, ORDER, "2", 200);
    let out = b.take_due(200);
    let (hook, ids) = b.remove(&wh("wh_a")).unwrap();
    assert_eq!(hook.id, wh("wh_a"));
    assert_eq!(
        ids.len(),
        2,
        "its pending delivery and its dead letter: {ids:?}"
    );
    assert!(ids.contains(
        &queued
            .iter()
            .find(|d| d.webhook_id == wh("wh_a"))
            .unwrap()
            .id
    ));
    assert_eq!(b.dead_letters().len(), 1, "wh_b's dead letter stays");
    for a in out
        .into_iter()
        .filter(|a| a.delivery.webhook_id == wh("wh_a"))
    {
        let f = b.finish(
            &a.delivery.webhook_id,
            &a.delivery.id,
            Ok(()),
            200,
            &POLICY,
            0.0,
        );
        assert_eq!(f, Finished::Gone);
    }
    assert!(b.remove(&wh("wh_a")).is_none());
    assert_eq!(b.count(), 1);
}

#[test]
fn a_restore_keeps_the_order_and_forgets_orphans() {
    let mut before = Book::new(10, 10);
    before.add(hook("wh_a", &[ORDER]));
    let mut pending = Vec::new();
    for body in ["1", "2", "3"] {
        pending.extend(event(&mut before, ORDER, body, 0));
    }
    let mut orphan = pending[0].clone();
    orphan.id = DeliveryId::generate();
    orphan.webhook_id = wh("wh_gone");
    pending.reverse();
    pending.push(orphan.clone());
    let mut b = Book::new(10, 10);
    let forget = b.restore(WebhookSnapshot {
        webhooks: vec![hook("wh_a", &[ORDER])],
        pending,
        dead: Vec::new(),
    });
    assert_eq!(forget, vec![orphan.id]);
    let sent: Vec<_> = (0..3)
        .flat_map(|_| round(&mut b, 0, true))
        .map(|x| x.0)
        .collect();
    assert_eq!(sent, vec!["1", "2", "3"]);
    let later = event(&mut b, ORDER, "4", 0);
    assert!(
        later[0].seq > 3,
        "sequence numbers go on after the restored ones"
    );
}
