//! The escalation ladder: what each supervisor timer does when it fires, as data.
//! remind → reassign → alert the dispatcher → cancel and compensate.

use super::escalation::EscalationKind;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Timer {
    MerchantAccept,
    OfferTtl,
    DispatchRemind,
    PickupLate,
    DeliveryTimeout,
    RiderSilent,
    RiderLost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    RemindMerchant,
    RemindRider,
    /// Open the escalation of this kind, or raise its level.
    Escalate(EscalationKind),
    /// The cause is settled another way: resolve the escalation (system).
    Resolve(EscalationKind),
    ExpireOffer,
    OfferNextCandidate,
    WidenSearch,
    MarkRiderStale,
    ReassignUnpickedOrders,
    CancelAndRefund,
    /// Arm the same timer again for another period.
    RearmTimer,
}

/// Steps for the `nth` expiry (1-based) of `timer`.
pub fn steps(timer: Timer, nth: u32) -> Vec<Step> {
    use Step::*;
    match timer {
        Timer::MerchantAccept if nth <= 1 => vec![
            RemindMerchant,
            Escalate(EscalationKind::MerchantUnresponsive),
            RearmTimer,
        ],
        Timer::MerchantAccept => vec![
            CancelAndRefund,
            Resolve(EscalationKind::MerchantUnresponsive),
        ],
        Timer::OfferTtl => vec![ExpireOffer, OfferNextCandidate],
        Timer::DispatchRemind => vec![Escalate(EscalationKind::NoRider), WidenSearch, RearmTimer],
        Timer::PickupLate => vec![
            RemindRider,
            Escalate(EscalationKind::PickupLate),
            RearmTimer,
        ],
        Timer::DeliveryTimeout => {
            vec![
                RemindRider,
                Escalate(EscalationKind::DeliveryLate),
                RearmTimer,
            ]
        }
        Timer::RiderSilent => vec![MarkRiderStale, Escalate(EscalationKind::RiderSilent)],
        Timer::RiderLost => vec![ReassignUnpickedOrders],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_timeout_reminds_then_cancels() {
        assert!(steps(Timer::MerchantAccept, 1).contains(&Step::RemindMerchant));
        assert!(steps(Timer::MerchantAccept, 1)
            .contains(&Step::Escalate(EscalationKind::MerchantUnresponsive)));
        let second = steps(Timer::MerchantAccept, 2);
        assert!(second.contains(&Step::CancelAndRefund));
        assert!(second.contains(&Step::Resolve(EscalationKind::MerchantUnresponsive)));
        assert!(!second.contains(&Step::RearmTimer));
    }

    #[test]
    fn periodic_timers_rearm_and_escalate_every_period() {
        for (t, k) in [
            (Timer::DispatchRemind, EscalationKind::NoRider),
            (Timer::PickupLate, EscalationKind::PickupLate),
            (Timer::DeliveryTimeout, EscalationKind::DeliveryLate),
        ] {
            for n in 1..4 {
                let s = steps(t, n);
                assert!(s.contains(&Step::Escalate(k)));
                assert!(s.contains(&Step::RearmTimer));
            }
        }
        assert!(steps(Timer::DispatchRemind, 2).contains(&Step::WidenSearch));
    }

    #[test]
    fn rider_timers_mark_stale_then_reassign() {
        assert_eq!(steps(Timer::RiderSilent, 1)[0], Step::MarkRiderStale);
        assert_eq!(
            steps(Timer::RiderLost, 1),
            vec![Step::ReassignUnpickedOrders]
        );
        assert_eq!(
            steps(Timer::OfferTtl, 1),
            vec![Step::ExpireOffer, Step::OfferNextCandidate]
        );
    }
}
