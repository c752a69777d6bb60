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
        if let Ok(Some(order)) = self.locate_order(id).await {
            if let Answer::Order { result: Ok(o) } = order.ask(OrderMsg::Get).await {
                return Ok(o);
            }
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

    /// The live order's actor, here or on another node.
    async fn live_order(&self, id: &OrderId) -> Result<OrderRef, EngineError> {
        if let Some(o) = self.locate_order(id).await? {
            return Ok(o);
        }
        // Known but finished: every command is an illegal transition.
        let o = self.order(id).await?;
        Err(EngineError::InvalidTransition(format!(
            "order {id} is {} and cannot change",
            o.status
        )))
    }

    /// Runs a state-machine command on an order.
    pub async fn order_command(
        &self,
        id: &OrderId,
        cmd: OrderCommand,
    ) -> Result<Order, EngineError> {
        let order = self.live_order(id).await?;
        if let OrderCommand::Accept { prep_time_s } = &cmd {
            if *prep_time_s > MAX_PREP_TIME_S {
                return Err(EngineError::InvalidInput(format!(
                    "prep_time_s must be 0..{MAX_PREP_TIME_S}"
                )));
            }
        }
        order.ask_order(OrderMsg::Command { cmd }).await
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
        let order = self.live_order(id).await?;
        let rider = self
            .shared
            .rider_ref(rider_id)
            .ok_or_else(|| EngineError::RiderUnavailable(format!("no rider {rider_id}")))?;
        let fix = rider.check_assignable().await?;
        order
            .ask_order(OrderMsg::AssignByDispatcher {
                rider_id: rider_id.clone(),
                fix,
            })
            .await
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
        if let Ok(Some(order)) = self.locate_order(id).await {
            if let Answer::Trace { entries } = order.ask(OrderMsg::Trace).await {
                return Ok(entries);
            }
        }
        self.stored(id, stored).await
    }

    /// Was this order ever offered to `rider` (now or before)?
    pub async fn was_offered(&self, id: &OrderId, rider: &RiderId) -> Result<bool, EngineError> {
        if let Ok(Some(order)) = self.locate_order(id).await {
            let asked = order.ask(OrderMsg::WasOffered {
                rider_id: rider.clone(),
            });
            if let Answer::Bool { value } = asked.await {
                return Ok(value);
            }
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
