//! One actor per merchant: open/closed, the menu, prep time, pricing of new orders.

use super::Shared;
use crate::domain::merchant::{Item, Merchant, MerchantState};
use crate::domain::order::{OrderLine, Pickup};
use crate::domain::ItemId;
use crate::error::EngineError;
use crate::events::Event;
use actix::prelude::*;
use std::sync::Arc;

pub struct MerchantActor {
    state: MerchantState,
    shared: Arc<Shared>,
}

impl MerchantActor {
    pub fn new(state: MerchantState, shared: Arc<Shared>) -> Self {
        Self { state, shared }
    }

    /// Applies one change to the merchant (refused while the store cannot take it), then
    /// commits; the answer carries what the change returned, once it is stored.
    fn change<T: Send + 'static>(
        &mut self,
        apply: impl FnOnce(&mut MerchantState) -> Result<T, EngineError>,
    ) -> ResponseFuture<Result<T, EngineError>> {
        let value = match self.shared.writable().and_then(|()| apply(&mut self.state)) {
            Ok(v) => v,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let done = self.commit();
        Box::pin(async move { done.await.map(|_| value) })
    }

    /// Persists the merchant and announces it; the returned future resolves once stored.
    fn commit(&self) -> impl std::future::Future<Output = Result<(), EngineError>> {
        let m = self.state.merchant.clone();
        self.shared.bus.publish(Event::MerchantChanged {
            merchant: Arc::new(m.clone()),
        });
        let items = self.state.items.clone();
        let store = self.shared.store.clone();
        async move {
            store
                .save_merchant(&m, &items)
                .await
                .map_err(|e| EngineError::Unavailable(e.to_string()))
        }
    }
}

impl Actor for MerchantActor {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "MerchantState")]
pub struct GetMerchant;

#[derive(Message)]
#[rtype(result = "Result<Merchant, EngineError>")]
pub struct SetOpen(pub bool);

#[derive(Message)]
#[rtype(result = "Result<Item, EngineError>")]
pub struct AddItem {
    pub name: String,
    pub price_cents: i64,
}

#[derive(Message)]
#[rtype(result = "Result<Item, EngineError>")]
pub struct UpdateItem {
    pub item_id: ItemId,
    pub available: Option<bool>,
    pub price_cents: Option<i64>,
}

/// Prices an order against the menu: lines, pickup point, prep time.
#[derive(Message)]
#[rtype(result = "Result<(Vec<OrderLine>, Pickup, u64), EngineError>")]
pub struct QuoteOrder(pub Vec<(ItemId, u32)>);

/// Another node changed this merchant: its state as stored there (docs/cluster.md).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReplaceState(pub MerchantState);

impl Handler<ReplaceState> for MerchantActor {
    type Result = ();
    fn handle(&mut self, m: ReplaceState, _: &mut Context<Self>) {
        self.state = m.0;
    }
}

impl Handler<GetMerchant> for MerchantActor {
    type Result = MessageResult<GetMerchant>;
    fn handle(&mut self, _: GetMerchant, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.clone())
    }
}

impl Handler<SetOpen> for MerchantActor {
    type Result = ResponseFuture<Result<Merchant, EngineError>>;
    fn handle(&mut self, m: SetOpen, _: &mut Context<Self>) -> Self::Result {
        self.change(|s| {
            s.merchant.open = m.0;
            Ok(s.merchant.clone())
        })
    }
}

impl Handler<AddItem> for MerchantActor {
    type Result = ResponseFuture<Result<Item, EngineError>>;
    fn handle(&mut self, m: AddItem, _: &mut Context<Self>) -> Self::Result {
        self.change(|s| {
            let item = Item {
                item_id: ItemId::generate(),
                merchant_id: s.merchant.merchant_id.clone(),
                name: m.name,
                price_cents: m.price_cents,
                available: true,
            };
            s.items.push(item.clone());
            Ok(item)
        })
    }
}

impl Handler<UpdateItem> for MerchantActor {
    type Result = ResponseFuture<Result<Item, EngineError>>;
    fn handle(&mut self, m: UpdateItem, _: &mut Context<Self>) -> Self::Result {
        self.change(|s| {
            let Some(item) = s.items.iter_mut().find(|i| i.item_id == m.item_id) else {
                return Err(EngineError::NotFound(format!("item {}", m.item_id)));
            };
            if let Some(a) = m.available {
                item.available = a;
            }
            if let Some(p) = m.price_cents {
                item.price_cents = p;
            }
            Ok(item.clone())
        })
    }
}

impl Handler<QuoteOrder> for MerchantActor {
    type Result = Result<(Vec<OrderLine>, Pickup, u64), EngineError>;
    fn handle(&mut self, m: QuoteOrder, _: &mut Context<Self>) -> Self::Result {
        let lines = self.state.quote(&m.0)?;
        Ok((lines, self.state.pickup(), self.state.merchant.prep_time_s))
    }
}
