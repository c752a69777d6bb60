//! What is announced is stored first; what is finished leaves memory; what was announced
//! once stays announced once across a restart; the state answers before ownership.

use crate::support::*;
use dispatch_actors::domain::escalation::Escalation as Esc;
use dispatch_actors::domain::merchant::Item;
use dispatch_actors::domain::rider::RiderView;
use dispatch_actors::domain::EscalationId;
use dispatch_actors::store::{OrderRecord, Snapshot, Store, StoreError, StoredResponse};
use std::sync::Arc;
use tokio::sync::broadcast::Receiver;
use tokio::sync::watch;

/// The memory store behind a gate: while it is closed, order writes wait (a slow or
/// distant store), so a test can see what goes out before a change is stored.
struct GateStore {
    inner: MemoryStore,
    open: watch::Sender<bool>,
}

impl GateStore {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: MemoryStore::new(),
            open: watch::channel(true).0,
        })
    }

    fn set_open(&self, open: bool) {
        self.open.send_replace(open);
    }
}

#[async_trait::async_trait]
impl Store for GateStore {
    async fn save_order_record(&self, rec: &OrderRecord) -> Result<(), StoreError> {
        let mut gate = self.open.subscribe();
        while !*gate.borrow_and_update() {
            gate.changed().await.expect("gate kept");
        }
        self.inner.save_order_record(rec).await
    }
    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
        self.inner.load_order(id).await
    }
    async fn load_order_record(&self, id: &OrderId) -> Result<Option<OrderRecord>, StoreError> {
        self.inner.load_order_record(id).await
    }
    async fn save_rider(&self, rider: &RiderView) -> Result<(), StoreError> {
        self.inner.save_rider(rider).await
    }
    async fn save_merchant(&self, m: &Merchant, items: &[Item]) -> Result<(), StoreError> {
        self.inner.save_merchant(m, items).await
    }
    async fn save_escalation(&self, e: &Esc) -> Result<(), StoreError> {
        self.inner.save_escalation(e).await
    }
    async fn load_escalation(&self, id: &EscalationId) -> Result<Option<Esc>, StoreError> {
        self.inner.load_escalation(id).await
    }
    async fn put_idempotent(
        &self,
        key: &str,
        resp: StoredResponse,
        ttl: Duration,
    ) -> Result<StoredResponse, StoreError> {
        self.inner.put_idempotent(key, resp, ttl).await
    }
    async fn get_idempotent(&self, key: &str) -> Result<Option<StoredResponse>, StoreError> {
        self.inner.get_idempotent(key).await
    }
    async fn healthy(&self) -> bool {
        true
    }
    async fn save_device(
        &self,
        device: &dispatch_actors::domain::DeviceId,
        rider: &RiderId,
    ) -> Result<(), StoreError> {
        self.inner.save_device(device, rider).await
    }
    async fn delete_device(
        &self,
        device: &dispatch_actors::domain::DeviceId,
    ) -> Result<(), StoreError> {
        self.inner.delete_device(device).await
    }
}

fn drain(events: &mut Receiver<Event>) -> Vec<Event> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

fn became(events: &[Event], status: OrderStatus) -> bool {
    events
        .iter()
        .any(|e| matches!(e, Event::OrderChanged { order, .. } if order.status == status))
}

fn arrivals(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::RiderArriving { .. }))
        .count()
}

#[actix_rt::test]
async fn a_change_is_announced_only_once_it_is_stored() {
    let gate = GateStore::new();
    let engine = start_on(cfg(), gate.clone());
    let mut events = engine.subscribe();
    let mut rider = TestRider::online_at(&engine, "R", north(300.0)).await;
    let o = paid_order(&engine).await;
    drain(&mut events);

    gate.set_open(false);
    let (e, id) = (engine.clone(), o.order_id.clone());
    let accept = actix_rt::spawn(async move { e.accept_order(&id, Some(0)).await });
    settle().await;
    assert!(
        !became(&drain(&mut events), OrderStatus::Accepted),
        "the merchant, tracking and dashboard sockets hear nothing before the store has it"
    );
    assert!(
        offers(&rider.take()).is_empty(),
        "no offer before it is stored"
    );

    gate.set_open(true);
    settle().await;
    let accepted = accept.await.unwrap().unwrap();
    assert_eq!(accepted.status, OrderStatus::Accepted);
    settle().await;
    assert!(became(&drain(&mut events), OrderStatus::Accepted));
    assert_eq!(
        offers(&rider.take()).len(),
        1,
        "the offer, stored, reaches the rider"
    );
}

#[actix_rt::test]
async fn rider_arriving_goes_out_once_also_across_a_restart() {
    let store = Arc::new(MemoryStore::new());
    let engine = start_on(cfg(), store.clone());
    let mut events = engine.subscribe();
    let mut rider = TestRider::online_at(&engine, "R", north(700.0)).await;
    let id = accepted_order(&engine).await.order_id;
    settle().await;
    rider.accept_next().await;
    // 700 m from the shop at 5 m/s is 140 s; 300 m, then 250 m, are under two minutes.
    for m in [300.0, 250.0] {
        advance(10.0).await;
        rider.move_to(north(m));
        settle().await;
    }
    assert_eq!(arrivals(&drain(&mut events)), 1, "once per order");
    let rec = store.load_order_record(&id).await.unwrap().unwrap();
    assert!(rec.arriving_sent, "remembered in the store");

    // A second engine rebuilt from what the first stored (a restart).
    let again = Engine::start(cfg(), store.clone(), Clock::starting_at(engine.now_ms()));
    let mut events = again.subscribe();
    let snap = Snapshot {
        orders: vec![OrderRecord {
            base_version: rec.order.version,
            ..rec
        }],
        riders: vec![rider.view().await],
        ..Snapshot::default()
    };
    let n = again.recover(snap).await;
    assert_eq!((n.orders, n.riders), (1, 1));
    settle().await;
    advance(1.0).await;
    let fix = fix_at(north(200.0), again.now_ms() + 10_000);
    again
        .rider_command(&rider.id, RiderCommand::Location(fix))
        .unwrap();
    settle().await;
    let seen = drain(&mut events);
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::RiderMovedForOrder { .. })),
        "the restarted engine follows the rider: {seen:?}"
    );
    assert_eq!(arrivals(&seen), 0, "not announced a second time");
}

#[actix_rt::test]
async fn a_report_on_a_final_order_the_rider_held_answers_its_state_first() {
    let engine = start(cfg());
    let mut rider = TestRider::online_at(&engine, "R", north(300.0)).await;
    let id = accepted_order(&engine).await.order_id;
    settle().await;
    rider.accept_next().await;
    let mut other = TestRider::online_at(&engine, "Other", north(600.0)).await;
    for cmd in [
        RiderCommand::PickedUp {
            order_id: id.clone(),
        },
        RiderCommand::Delivered {
            order_id: id.clone(),
        },
    ] {
        rider.cmd(cmd);
        settle().await;
    }
    assert_eq!(order(&engine, &id).await.status, OrderStatus::Delivered);
    rider.take();

    let late = |id: &OrderId| {
        [
            RiderCommand::PickedUp {
                order_id: id.clone(),
            },
            RiderCommand::Delivered {
                order_id: id.clone(),
            },
            RiderCommand::Release {
                order_id: id.clone(),
            },
        ]
    };
    for cmd in late(&id) {
        rider.cmd(cmd);
        settle().await;
    }
    assert_eq!(errors(&rider.take()), vec!["invalid_transition"; 3]);
    other.take();
    other.cmd(RiderCommand::Delivered {
        order_id: id.clone(),
    });
    settle().await;
    assert_eq!(errors(&other.take()), vec!["forbidden"], "never held it");

    // Once the order's actor has stopped, the stored order answers the same.
    advance(6.0).await;
    rider.cmd(RiderCommand::PickedUp {
        order_id: id.clone(),
    });
    settle().await;
    assert_eq!(errors(&rider.take()), vec!["invalid_transition"]);

    // Failed by the dispatcher while the rider carried it.
    let id2 = accepted_order(&engine).await.order_id;
    settle().await;
    rider.accept_next().await;
    rider.cmd(RiderCommand::PickedUp {
        order_id: id2.clone(),
    });
    settle().await;
    let failed = engine
        .order_command(
            &id2,
            OrderCommand::Fail {
                by: dispatch_actors::domain::order::Actor::Dispatcher,
                reason: "bike crash".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(failed.status, OrderStatus::Failed);
    settle().await;
    rider.take();
    rider.cmd(RiderCommand::Delivered { order_id: id2 });
    settle().await;
    assert_eq!(errors(&rider.take()), vec!["invalid_transition"]);
}

#[actix_rt::test]
async fn a_resolved_escalation_leaves_memory_after_retention_an_open_one_stays() {
    let mut c = cfg();
    c.timers.merchant_accept_s = 10.0;
    c.timers.dispatch_remind_s = 10.0;
    c.retention.final_s = 100.0;
    let engine = start(c);
    let o = paid_order(&engine).await;
    advance(11.0).await;
    engine.accept_order(&o.order_id, Some(0)).await.unwrap();
    settle().await;
    let late = the_escalation(&engine, EscalationKind::MerchantUnresponsive).await;
    assert!(!late.is_open(), "the accept resolved it");

    // No rider anywhere: no_rider opens and stays open, rising each period.
    advance(170.0).await;
    assert!(
        escalations_of(&engine, EscalationKind::MerchantUnresponsive)
            .await
            .is_empty(),
        "resolved more than retention ago: gone from memory"
    );
    let open = the_escalation(&engine, EscalationKind::NoRider).await;
    assert!(open.is_open() && open.level > 1, "{open:?}");
}
