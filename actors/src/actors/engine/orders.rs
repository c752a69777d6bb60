//! Orders through the engine: creation (idempotent by id), state-machine commands,
//! dispatcher assignment, and reads that fall back to the store once an order's actor
//! has stopped.

use super::{ask_all, not_found, Engine};
use crate::actors::merchant::QuoteOrder;
use crate::actors::order::OrderActor;
use crate::actors::remote::wire::{Answer, OrderMsg};
use crate::actors::remote::OrderRef;
use crate::domain::merchant::MAX_PREP_TIME_S;
use crate::domain::offers::TraceEntry;
use crate::domain::order::{NewOrder, Order, OrderCommand};
use crate::domain::{CustomerId, GeoPoint, ItemId, MerchantId, OrderId, RiderId};
use crate::error::EngineError;
use crate::events::Event;
use crate::protocol::GetOrder;
use crate::store::{OrderRecord, StoreError};
use actix::prelude::*;
use std::sync::Arc;

impl Engine {
    // ---- orders ----

    pub async fn create_order(
        &self,
        customer_id: CustomerId,
        merchant_id: &MerchantId,
        items: Vec<(ItemId, u32)>,
        dropoff: GeoPoint,
    ) -> Result<Order, EngineError> {
        self.create_order_as(
            OrderId::generate(),
            customer_id,
            merchant_id,
            items,
            dropoff,
        )
        .await
    }

    /// Creates an order under a caller-chosen id (derived from an idempotency key), or
    /// returns that customer's order if it already exists: a retry whose first response was
    /// lost (crash, store outage) finds the order it created instead of making another.
    pub async fn create_order_as(
        &self,
        order_id: OrderId,
        customer_id: CustomerId,
        merchant_id: &MerchantId,
        items: Vec<(ItemId, u32)>,
        dropoff: GeoPoint,
    ) -> Result<Order, EngineError> {
        match self.order(&order_id).await {
            Ok(existing) if existing.customer_id == customer_id => return Ok(existing),
            Ok(_) => {
                return Err(EngineError::InvalidInput(
                    "that order id belongs to another customer".into(),
                ))
            }
            Err(EngineError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        if let Some(made_there) = self
            .create_elsewhere(&order_id, &customer_id, merchant_id, &items, dropoff)
            .await?
        {
            return Ok(made_there);
        }
        self.writable()?;
        let (lines, pickup, _prep) = self
            .merchant_addr(merchant_id)?
            .send(QuoteOrder(items))
            .await??;
        let order = Order::new(
            NewOrder {
                order_id,
                customer_id,
                merchant_id: merchant_id.clone(),
                items: lines,
                pickup,
                dropoff,
            },
            self.now_ms(),
        );
        let created = Event::OrderChanged {
            order: Arc::new(order.clone()),
            previous_status: None,
        };
        self.shared
            .store
            .save_order_with_events(
                &OrderRecord {
                    zone: self.order_zone(&order),
                    ..OrderRecord::bare(order.clone())
                },
                std::slice::from_ref(&created),
            )
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?;
        let addr = OrderActor::new(order.clone(), self.shared.clone()).start();
        self.shared
            .dir
            .orders
            .write()
            .insert(order.order_id.clone(), addr);
        metrics::counter!(crate::metric_names::ORDERS_TOTAL, "status" => "pending_payment")
            .increment(1);
        self.shared.bus.publish(created);
        Ok(order)
    }

    /// The live order, or its final record from the store.
    pub async fn order(&self, id: &OrderId) -> Result<Order, EngineError> {
        if let Ok(Some(Answer::Order { result: Ok(o) })) = self.ask_live(id, OrderMsg::Get).await {
            return Ok(o);
        }
        self.stored(id, self.shared.store.load_order(id)).await
    }

    /// A finished order (or one whose actor stopped meanwhile) answers from `stored`, its
    /// record in the store.
    async fn stored<T>(
        &self,
        id: &OrderId,
        stored: impl std::future::Future<Output = Result<Option<T>, StoreError>>,
    ) -> Result<T, EngineError> {
        stored
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
            .ok_or_else(|| not_found("order", id))
    }

    /// Asks the live order, here or on its node (None: it is not live anywhere). A node
    /// that does not answer, or no longer has the order (its zone moved), is forgotten
    /// for it, and the order is looked up again, once.
    async fn ask_live(&self, id: &OrderId, msg: OrderMsg) -> Result<Option<Answer>, EngineError> {
        let mut tried_again = false;
        loop {
            let Some(order) = self.locate_order(id).await? else {
                return Ok(None);
            };
            let remote = matches!(order, OrderRef::Remote { .. });
            let answer = order.ask(msg.clone()).await;
            let lost = matches!(answer, Answer::NotHere | Answer::Failed { .. });
            if remote && lost && !tried_again {
                self.place_order(id, None);
                tried_again = true;
                continue;
            }
            return Ok(Some(answer));
        }
    }

    /// A command on an order that is not live anywhere: known but finished, so every
    /// command is an illegal transition.
    async fn finished(&self, id: &OrderId) -> EngineError {
        match self.order(id).await {
            Ok(o) => EngineError::InvalidTransition(format!(
                "order {id} is {} and cannot change",
                o.status
            )),
            Err(e) => e,
        }
    }

    /// Runs a state-machine command on an order.
    pub async fn order_command(
        &self,
        id: &OrderId,
        cmd: OrderCommand,
    ) -> Result<Order, EngineError> {
        if let OrderCommand::Accept { prep_time_s } = &cmd {
            if *prep_time_s > MAX_PREP_TIME_S {
                return Err(EngineError::InvalidInput(format!(
                    "prep_time_s must be 0..{MAX_PREP_TIME_S}"
                )));
            }
        }
        match self.ask_live(id, OrderMsg::Command { cmd }).await? {
            Some(answer) => answer.into_order(),
            None => Err(self.finished(id).await),
        }
    }

    /// The merchant accepts; prep time defaults to the merchant's.
    pub async fn accept_order(
        &self,
        id: &OrderId,
        prep_time_s: Option<u64>,
    ) -> Result<Order, EngineError> {
        let order = self.order(id).await?;
        let prep = match prep_time_s {
            Some(p) => p,
            None => {
                self.merchant(&order.merchant_id)
                    .await?
                    .merchant
                    .prep_time_s
            }
        };
        self.order_command(id, OrderCommand::Accept { prep_time_s: prep })
            .await
    }

    /// Manual assignment by the dispatcher: the rider must be connected, online, not stale.
    pub async fn assign(&self, id: &OrderId, rider_id: &RiderId) -> Result<Order, EngineError> {
        if self.locate_order(id).await?.is_none() {
            return Err(self.finished(id).await);
        }
        let rider = self
            .shared
            .rider_ref(rider_id)
            .ok_or_else(|| EngineError::RiderUnavailable(format!("no rider {rider_id}")))?;
        let fix = rider.check_assignable().await?;
        let assign = OrderMsg::AssignByDispatcher {
            rider_id: rider_id.clone(),
            fix,
        };
        match self.ask_live(id, assign).await? {
            Some(answer) => answer.into_order(),
            None => Err(self.finished(id).await),
        }
    }

    pub async fn trace(&self, id: &OrderId) -> Result<Vec<TraceEntry>, EngineError> {
        // A finished order's trace was stored with it.
        let stored = async {
            let record = self.shared.store.load_order_record(id).await?;
            Ok::<_, StoreError>(record.map(|r| {
                r.offers
                    .trace
                    .iter()
                    .map(|e| TraceEntry::clone(e))
                    .collect()
            }))
        };
        if let Ok(Some(Answer::Trace { entries })) = self.ask_live(id, OrderMsg::Trace).await {
            return Ok(entries);
        }
        self.stored(id, stored).await
    }

    /// Was this order ever offered to `rider` (now or before)?
    pub async fn was_offered(&self, id: &OrderId, rider: &RiderId) -> Result<bool, EngineError> {
        let asked = OrderMsg::WasOffered {
            rider_id: rider.clone(),
        };
        if let Ok(Some(Answer::Bool { value })) = self.ask_live(id, asked).await {
            return Ok(value);
        }
        Ok(self
            .shared
            .store
            .load_order_record(id)
            .await
            .map_err(|e| EngineError::Unavailable(e.to_string()))?
            .is_some_and(|r| r.offers.offered.contains(rider)))
    }

    /// Every order whose actor is alive (not final, or final moments ago).
    pub async fn live_orders(&self) -> Vec<Order> {
        ask_all(&self.shared.dir.orders, || GetOrder).await
    }
}
