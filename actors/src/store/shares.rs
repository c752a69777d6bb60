//! Share links in process memory (the memory store's part of [`super::Store`]). A link is
//! kept until an hour after it expires, then dropped at the next save: the book stays as
//! large as the links of the last day, not of the process's whole life.

use crate::domain::share::ShareLink;
use crate::domain::OrderId;
use std::collections::HashMap;

/// How long an expired link is still kept (it then answers "expired", not "unknown").
pub const KEEP_AFTER_EXPIRY_MS: u64 = 3_600_000;

#[derive(Default)]
pub struct ShareBook {
    by_token: HashMap<String, ShareLink>,
    /// Tokens per order, in the order the links were made.
    by_order: HashMap<OrderId, Vec<String>>,
}

impl ShareBook {
    pub fn save(&mut self, link: &ShareLink, now_ms: u64) {
        self.prune(now_ms);
        let token = link.token.expose().to_string();
        if self.by_token.insert(token.clone(), link.clone()).is_none() {
            self.by_order
                .entry(link.order_id.clone())
                .or_default()
                .push(token);
        }
    }

    pub fn get(&self, token: &str) -> Option<ShareLink> {
        self.by_token.get(token).cloned()
    }

    pub fn of(&self, order: &OrderId) -> Vec<ShareLink> {
        self.by_order
            .get(order)
            .map(|ts| ts.iter().filter_map(|t| self.get(t)).collect())
            .unwrap_or_default()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_token.len()
    }

    fn prune(&mut self, now_ms: u64) {
        let gone = |l: &ShareLink| l.expires_ms.saturating_add(KEEP_AFTER_EXPIRY_MS) <= now_ms;
        if !self.by_token.values().any(gone) {
            return;
        }
        self.by_token.retain(|_, l| !gone(l));
        let tokens = &self.by_token;
        self.by_order.retain(|_, ts| {
            ts.retain(|t| tokens.contains_key(t));
            !ts.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::share::SharePrivacy;
    use crate::domain::CustomerId;

    #[test]
    fn links_are_found_by_token_and_order_and_leave_an_hour_after_expiry() {
        let mut book = ShareBook::default();
        let (o, c) = (OrderId::generate(), CustomerId::generate());
        let a = ShareLink::new(o.clone(), c.clone(), SharePrivacy::Status, 0, 1_000);
        let b = ShareLink::new(o.clone(), c, SharePrivacy::StatusAndPosition, 0, 10_000_000);
        book.save(&a, 0);
        book.save(&b, 0);
        let mut revoked = a.clone();
        revoked.revoked_ms = Some(500);
        book.save(&revoked, 500);
        assert_eq!(book.get(a.token.expose()), Some(revoked));
        assert_eq!(book.of(&o).len(), 2, "a revocation is not a second link");
        // An hour after `a` expired, the next save drops it.
        let other = ShareLink::new(
            OrderId::generate(),
            CustomerId::generate(),
            SharePrivacy::Status,
            0,
            1,
        );
        book.save(&other, 1_000 + KEEP_AFTER_EXPIRY_MS);
        assert_eq!(book.get(a.token.expose()), None);
        assert_eq!(book.of(&o), vec![b]);
        assert_eq!(book.len(), 2, "`other` goes at the next save, not its own");
    }
}
