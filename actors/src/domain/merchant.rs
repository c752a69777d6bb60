//! Merchants and their menus; pricing an order against the menu.

use super::ids::{ItemId, MerchantId};
use super::order::{OrderLine, Pickup};
use super::GeoPoint;
use crate::error::EngineError;
use serde::{Deserialize, Serialize};

pub const MAX_PREP_TIME_S: u64 = 7200;
pub const DEFAULT_PREP_TIME_S: u64 = 600;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Merchant {
    pub merchant_id: MerchantId,
    pub name: String,
    pub location: GeoPoint,
    pub open: bool,
    pub prep_time_s: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Item {
    pub item_id: ItemId,
    pub merchant_id: MerchantId,
    pub name: String,
    pub price_cents: i64,
    pub available: bool,
}

/// A merchant with its menu: the state a MerchantActor owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MerchantState {
    pub merchant: Merchant,
    pub items: Vec<Item>,
}

impl MerchantState {
    pub fn new(merchant: Merchant) -> Self {
        Self {
            merchant,
            items: Vec::new(),
        }
    }

    pub fn pickup(&self) -> Pickup {
        Pickup {
            lat: self.merchant.location.lat(),
            lon: self.merchant.location.lon(),
            merchant_id: self.merchant.merchant_id.clone(),
            name: self.merchant.name.clone(),
        }
    }

    /// Prices requested items against the menu. Refuses a closed merchant, an unknown or
    /// unavailable item, and quantities outside 1–100.
    pub fn quote(&self, wanted: &[(ItemId, u32)]) -> Result<Vec<OrderLine>, EngineError> {
        if !self.merchant.open {
            return Err(EngineError::MerchantClosed);
        }
        if wanted.is_empty() {
            return Err(EngineError::InvalidInput(
                "an order needs at least one item".into(),
            ));
        }
        wanted
            .iter()
            .map(|(id, qty)| {
                if !(1..=100).contains(qty) {
                    return Err(EngineError::InvalidInput(format!(
                        "qty of {id} must be 1..100"
                    )));
                }
                let item = self
                    .items
                    .iter()
                    .find(|i| &i.item_id == id)
                    .ok_or_else(|| {
                        EngineError::InvalidInput(format!("{id} is not on this menu"))
                    })?;
                if !item.available {
                    return Err(EngineError::ItemUnavailable(format!(
                        "{} is not available",
                        item.name
                    )));
                }
                Ok(OrderLine {
                    item_id: item.item_id.clone(),
                    name: item.name.clone(),
                    qty: *qty,
                    price_cents: item.price_cents,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> MerchantState {
        let mid = MerchantId::parse("m_1").unwrap();
        let mut s = MerchantState::new(Merchant {
            merchant_id: mid.clone(),
            name: "Dumplings".into(),
            location: GeoPoint::new(31.0, 121.0).unwrap(),
            open: true,
            prep_time_s: 600,
        });
        s.items.push(Item {
            item_id: ItemId::parse("i_1").unwrap(),
            merchant_id: mid.clone(),
            name: "Pork".into(),
            price_cents: 800,
            available: true,
        });
        s.items.push(Item {
            item_id: ItemId::parse("i_2").unwrap(),
            merchant_id: mid,
            name: "Crab".into(),
            price_cents: 1800,
            available: false,
        });
        s
    }

    #[test]
    fn quotes_available_items() {
        let lines = state()
            .quote(&[(ItemId::parse("i_1").unwrap(), 3)])
            .unwrap();
        assert_eq!(lines[0].price_cents, 800);
        assert_eq!(lines[0].qty, 3);
    }

    #[test]
    fn refuses_closed_unavailable_unknown_and_bad_qty() {
        let mut s = state();
        assert_eq!(
            s.quote(&[(ItemId::parse("i_2").unwrap(), 1)])
                .unwrap_err()
                .code(),
            "item_unavailable"
        );
        assert_eq!(
            s.quote(&[(ItemId::parse("i_9").unwrap(), 1)])
                .unwrap_err()
                .code(),
            "invalid_input"
        );
        assert_eq!(
            s.quote(&[(ItemId::parse("i_1").unwrap(), 0)])
                .unwrap_err()
                .code(),
            "invalid_input"
        );
        assert_eq!(s.quote(&[]).unwrap_err().code(), "invalid_input");
        s.merchant.open = false;
        assert_eq!(
            s.quote(&[(ItemId::parse("i_1").unwrap(), 1)]).unwrap_err(),
            EngineError::MerchantClosed
        );
    }
}
