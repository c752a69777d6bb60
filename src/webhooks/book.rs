//! The webhook book: subscriptions, each with its queue of deliveries, and the dead
//! letters. Plain data; the worker (`worker.rs`) owns the timers and the HTTP calls and
//! asks the book what is due and tells it how each attempt ended.
//!
//! A subscription's deliveries go out one at a time, oldest first: the next one waits
//! until the one before it was delivered or became a dead letter, so a receiver sees one
//! order's status changes in the order they happened. A failing receiver holds up only
//! its own queue.

use super::retry::RetryPolicy;
use dispatch_actors::domain::{DeliveryId, WebhookEventId, WebhookId};
use dispatch_actors::store::{DeliveryRecord, WebhookRecord, WebhookSnapshot};
use std::collections::{HashMap, VecDeque};

/// One attempt to make now.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub delivery: DeliveryRecord,
    pub url: String,
    pub secret: String,
}

/// How an attempt ended, as the book recorded it.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    Delivered(DeliveryRecord),
    /// Failed; tried again at `next_attempt_ms`.
    Retry(DeliveryRecord),
    /// Failed for the last time: now a dead letter; `evicted` is the oldest dead letter
    /// pushed out by the cap, if any.
    Dead {
        dead: DeliveryRecord,
        evicted: Option<DeliveryRecord>,
    },
    /// The subscription was deleted meanwhile: nothing to record.
    Gone,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    NotFound,
    /// The subscription's queue is full.
    QueueFull,
}

struct Endpoint {
    hook: WebhookRecord,
    queue: VecDeque<DeliveryRecord>,
    /// The head of the queue is being sent.
    in_flight: bool,
}

pub struct Book {
    endpoints: HashMap<WebhookId, Endpoint>,
    /// Oldest first.
    dead: VecDeque<DeliveryRecord>,
    queue_max: usize,
    dead_max: usize,
    next_seq: u64,
}

impl Book {
    pub fn new(queue_max: usize, dead_max: usize) -> Book {
        Book {
            endpoints: HashMap::new(),
            dead: VecDeque::new(),
            queue_max: queue_max.max(1),
            dead_max: dead_max.max(1),
            next_seq: 1,
        }
    }

    /// Takes back what the store kept. Returns the ids of deliveries to forget: those of
    /// subscriptions that are gone, and dead letters beyond the cap.
    pub fn restore(&mut self, snap: WebhookSnapshot) -> Vec<DeliveryId> {
        let mut forget = Vec::new();
        for hook in snap.webhooks {
            self.add(hook);
        }
        let mut pending = snap.pending;
        pending.sort_by_key(|d| d.seq);
        let mut dead = snap.dead;
        dead.sort_by_key(|d| (d.dead_ms, d.seq));
        self.next_seq = pending
            .iter()
            .chain(&dead)
            .map(|d| d.seq + 1)
            .max()
            .unwrap_or(1)
            .max(self.next_seq);
        for d in pending {
            match self.endpoints.get_mut(&d.webhook_id) {
                Some(e) => e.queue.push_back(d),
                None => forget.push(d.id),
            }
        }
        for d in dead {
            if self.endpoints.contains_key(&d.webhook_id) {
                forget.extend(self.push_dead(d).map(|e| e.id));
            } else {
                forget.push(d.id);
            }
        }
        forget
    }

    pub fn count(&self) -> usize {
        self.endpoints.len()
    }

    pub fn add(&mut self, hook: WebhookRecord) {
        self.endpoints.insert(
            hook.id.clone(),
            Endpoint {
                hook,
                queue: VecDeque::new(),
                in_flight: false,
            },
        );
    }

    /// Deletes a subscription with its pending deliveries and dead letters; returns it
    /// and the ids of those deliveries.
    pub fn remove(&mut self, id: &WebhookId) -> Option<(WebhookRecord, Vec<DeliveryId>)> {
        let e = self.endpoints.remove(id)?;
        let mut ids: Vec<DeliveryId> = e.queue.into_iter().map(|d| d.id).collect();
        let (theirs, others): (Vec<_>, Vec<_>) =
            self.dead.drain(..).partition(|d| &d.webhook_id == id);
        self.dead = others.into();
        ids.extend(theirs.into_iter().map(|d| d.id));
        Some((e.hook, ids))
    }

    /// The deliveries (pending and dead) of a subscription, None if there is no such
    /// subscription.
    pub fn deliveries_of(&self, id: &WebhookId) -> Option<Vec<DeliveryId>> {
        let e = self.endpoints.get(id)?;
        let dead = self.dead.iter().filter(|d| &d.webhook_id == id);
        Some(e.queue.iter().chain(dead).map(|d| d.id.clone()).collect())
    }

    /// Subscriptions, oldest first, each with its pending deliveries.
    pub fn list(&self) -> Vec<(WebhookRecord, usize)> {
        let mut v: Vec<_> = self
            .endpoints
            .values()
            .map(|e| (e.hook.clone(), e.queue.len()))
            .collect();
        v.sort_by(|a, b| (a.0.created_ms, &a.0.id).cmp(&(b.0.created_ms, &b.0.id)));
        v
    }

    /// Dead letters, newest first.
    pub fn dead_letters(&self) -> Vec<DeliveryRecord> {
        self.dead.iter().rev().cloned().collect()
    }

    /// Does any subscription want `kind`? (Saves building a body no one gets.)
    pub fn wants(&self, kind: &str) -> bool {
        self.endpoints
            .values()
            .any(|e| e.hook.events.iter().any(|k| k == kind))
    }

    /// Queues an event for every subscription that wants it, due now. Returns the
    /// deliveries queued and how many were dropped because their queue was full.
    pub fn enqueue(
        &mut self,
        kind: &str,
        event_id: &WebhookEventId,
        body: &str,
        now_ms: u64,
    ) -> (Vec<DeliveryRecord>, usize) {
        let mut ids: Vec<WebhookId> = self
            .endpoints
            .values()
            .filter(|e| e.hook.events.iter().any(|k| k == kind))
            .map(|e| e.hook.id.clone())
            .collect();
        ids.sort();
        let (mut queued, mut dropped) = (Vec::new(), 0);
        for id in ids {
            let seq = self.next_seq;
            let Some(e) = self.endpoints.get_mut(&id) else {
                continue;
            };
            if e.queue.len() >= self.queue_max {
                dropped += 1;
                continue;
            }
            self.next_seq += 1;
            let d = DeliveryRecord {
                id: DeliveryId::generate(),
                webhook_id: id,
                event_id: event_id.clone(),
                event_type: kind.to_string(),
                body: body.to_string(),
                seq,
                created_ms: now_ms,
                attempts: 0,
                next_attempt_ms: now_ms,
                last_error: None,
                dead_ms: None,
            };
            e.queue.push_back(d.clone());
            queued.push(d);
        }
        (queued, dropped)
    }

    /// The attempts due at `now_ms`: the head of each queue not already being sent.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<Attempt> {
        let mut due = Vec::new();
        for e in self.endpoints.values_mut() {
            if e.in_flight {
                continue;
            }
            if let Some(d) = e.queue.front().filter(|d| d.next_attempt_ms <= now_ms) {
                e.in_flight = true;
                due.push(Attempt {
                    delivery: d.clone(),
                    url: e.hook.url.clone(),
                    secret: e.hook.secret.clone(),
                });
            }
        }
        due
    }

    /// When the next attempt falls due (of queues not being sent), if any.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.endpoints
            .values()
            .filter(|e| !e.in_flight)
            .filter_map(|e| e.queue.front().map(|d| d.next_attempt_ms))
            .min()
    }

    /// Records how the attempt of `delivery` (of `webhook`) ended. `jitter` in [0, 1).
    pub fn finish(
        &mut self,
        webhook: &WebhookId,
        delivery: &DeliveryId,
        result: Result<(), String>,
        now_ms: u64,
        policy: &RetryPolicy,
        jitter: f64,
    ) -> Finished {
        let Some(e) = self.endpoints.get_mut(webhook) else {
            return Finished::Gone;
        };
        if !e.in_flight || e.queue.front().map(|d| &d.id) != Some(delivery) {
            return Finished::Gone;
        }
        e.in_flight = false;
        let Some(mut d) = e.queue.pop_front() else {
            return Finished::Gone;
        };
        d.attempts += 1;
        let error = match result {
            Ok(()) => return Finished::Delivered(d),
            Err(error) => error,
        };
        d.last_error = Some(error);
        match policy.delay_ms(d.attempts, jitter) {
            Some(wait_ms) => {
                d.next_attempt_ms = now_ms.saturating_add(wait_ms);
                e.queue.push_front(d.clone());
                Finished::Retry(d)
            }
            None => {
                d.dead_ms = Some(now_ms);
                let evicted = self.push_dead(d.clone());
                Finished::Dead { dead: d, evicted }
            }
        }
    }

    /// Adds a dead letter; returns the oldest one if the cap pushed it out.
    fn push_dead(&mut self, d: DeliveryRecord) -> Option<DeliveryRecord> {
        self.dead.push_back(d);
        (self.dead.len() > self.dead_max)
            .then(|| self.dead.pop_front())
            .flatten()
    }

    /// The dead letter `id` as it will be queued again: at the back of its subscription's
    /// queue, due now, its attempts counted afresh. Nothing changes until
    /// [`Book::commit_replay`] (the caller stores it in between).
    pub fn replay_candidate(
        &self,
        id: &DeliveryId,
        now_ms: u64,
    ) -> Result<DeliveryRecord, ReplayError> {
        let d = self
            .dead
            .iter()
            .find(|d| &d.id == id)
            .ok_or(ReplayError::NotFound)?;
        let e = self
            .endpoints
            .get(&d.webhook_id)
            .ok_or(ReplayError::NotFound)?;
        if e.queue.len() >= self.queue_max {
            return Err(ReplayError::QueueFull);
        }
        let mut again = d.clone();
        again.attempts = 0;
        again.next_attempt_ms = now_ms;
        again.dead_ms = None;
        again.seq = self.next_seq;
        Ok(again)
    }

    /// Queues a replay prepared by [`Book::replay_candidate`]; false if its dead letter or
    /// subscription went away meanwhile.
    pub fn commit_replay(&mut self, again: DeliveryRecord) -> bool {
        let Some(at) = self.dead.iter().position(|d| d.id == again.id) else {
            return false;
        };
        let Some(e) = self.endpoints.get_mut(&again.webhook_id) else {
            return false;
        };
        self.dead.remove(at);
        self.next_seq = self.next_seq.max(again.seq + 1);
        e.queue.push_back(again);
        true
    }
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
