//! A bounded outbound queue for one client socket. The engine never waits on a client:
//! pushes return at once. Frames with a coalescing key (locations) replace the pending one
//! with the same key (latest wins); other frames queue up to a cap; a push into a full
//! queue closes the outbox, so the socket behind it is disconnected instead of growing
//! server memory. Every dropped frame is reported to the caller to count.

use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// Replaced a pending frame with the same key (one frame dropped).
    Coalesced,
    /// The queue was full: the outbox is now closed and the frame dropped.
    Overflowed,
    /// The consumer is gone.
    Closed,
}

struct State<T> {
    queue: VecDeque<(Option<u64>, T)>,
    closed: bool,
}

struct Inner<T> {
    state: Mutex<State<T>>,
    notify: Notify,
    cap: usize,
}

pub struct Outbox<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Outbox<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Outbox<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("cap", &self.inner.cap)
            .finish()
    }
}

impl<T> Outbox<T> {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    closed: false,
                }),
                notify: Notify::new(),
                cap: cap.max(1),
            }),
        }
    }

    pub fn push(&self, item: T) -> PushOutcome {
        self.push_inner(None, item, false)
    }

    /// Puts a frame ahead of everything queued: a socket's first frame (snapshot, welcome),
    /// built after the socket was registered for changes, so none falls between the two.
    pub fn push_front(&self, item: T) -> PushOutcome {
        self.push_inner(None, item, true)
    }

    /// Pushes a frame that supersedes any pending frame with the same `key`.
    pub fn push_latest(&self, key: u64, item: T) -> PushOutcome {
        self.push_inner(Some(key), item, false)
    }

    fn push_inner(&self, key: Option<u64>, item: T, front: bool) -> PushOutcome {
        let mut s = self.inner.state.lock();
        if s.closed {
            return PushOutcome::Closed;
        }
        if let Some(k) = key {
            if let Some(slot) = s.queue.iter_mut().find(|(sk, _)| *sk == Some(k)) {
                slot.1 = item;
                return PushOutcome::Coalesced;
            }
        }
        if s.queue.len() >= self.inner.cap {
            s.closed = true;
            s.queue.clear();
            drop(s);
            self.inner.notify.notify_one();
            return PushOutcome::Overflowed;
        }
        if front {
            s.queue.push_front((key, item));
        } else {
            s.queue.push_back((key, item));
        }
        drop(s);
        self.inner.notify.notify_one();
        PushOutcome::Queued
    }

    /// Next frame; `None` once closed (by overflow or by [`Outbox::close`]).
    pub async fn recv(&self) -> Option<T> {
        loop {
            {
                let mut s = self.inner.state.lock();
                if s.closed {
                    return None;
                }
                if let Some((_, item)) = s.queue.pop_front() {
                    return Some(item);
                }
            }
            self.inner.notify.notified().await;
        }
    }

    /// Takes what is queued now without waiting (tests, batching).
    pub fn drain(&self) -> Vec<T> {
        let mut s = self.inner.state.lock();
        s.queue.drain(..).map(|(_, t)| t).collect()
    }

    pub fn close(&self) {
        self.inner.state.lock().closed = true;
        self.inner.notify.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.inner.state.lock().closed
    }

    pub fn len(&self) -> usize {
        self.inner.state.lock().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn same(&self, other: &Outbox<T>) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesces_by_key_and_keeps_order_otherwise() {
        let o = Outbox::new(10);
        assert_eq!(o.push(1), PushOutcome::Queued);
        assert_eq!(o.push_latest(7, 2), PushOutcome::Queued);
        assert_eq!(o.push(3), PushOutcome::Queued);
        assert_eq!(o.push_latest(7, 4), PushOutcome::Coalesced);
        assert_eq!(o.drain(), vec![1, 4, 3]);
    }

    #[test]
    fn push_front_goes_ahead_of_what_is_queued() {
        let o = Outbox::new(10);
        o.push(2);
        o.push_latest(1, 3);
        assert_eq!(o.push_front(1), PushOutcome::Queued);
        assert_eq!(o.drain(), vec![1, 2, 3]);
    }

    #[test]
    fn overflow_closes_and_drops() {
        let o = Outbox::new(2);
        o.push(1);
        o.push(2);
        assert_eq!(o.push(3), PushOutcome::Overflowed);
        assert!(o.is_closed());
        assert_eq!(o.push(4), PushOutcome::Closed);
        assert!(o.is_empty());
    }

    #[tokio::test]
    async fn recv_waits_for_a_push_and_ends_on_close() {
        let o = Outbox::new(4);
        let o2 = o.clone();
        let h = tokio::spawn(async move { o2.recv().await });
        tokio::task::yield_now().await;
        o.push(9);
        assert_eq!(h.await.unwrap(), Some(9));
        o.close();
        assert_eq!(o.recv().await, None);
    }
}
