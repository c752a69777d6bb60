//! The engine's error type. The server maps it to HTTP status codes in exactly one place.

use thiserror::Error;

#[derive(Debug, Clone, Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EngineError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    InvalidTransition(String),
    #[error("merchant is closed")]
    MerchantClosed,
    #[error("{0}")]
    ItemUnavailable(String),
    #[error("{0}")]
    RiderUnavailable(String),
    #[error("offer is not available")]
    OfferNotAvailable,
    #[error("{0}")]
    Unavailable(String),
}

impl EngineError {
    /// The protocol's snake_case error code.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::InvalidInput(_) => "invalid_input",
            EngineError::NotFound(_) => "not_found",
            EngineError::Forbidden(_) => "forbidden",
            EngineError::InvalidTransition(_) => "invalid_transition",
            EngineError::MerchantClosed => "merchant_closed",
            EngineError::ItemUnavailable(_) => "item_unavailable",
            EngineError::RiderUnavailable(_) => "rider_unavailable",
            EngineError::OfferNotAvailable => "offer_not_available",
            EngineError::Unavailable(_) => "unavailable",
        }
    }
}

impl From<actix::MailboxError> for EngineError {
    fn from(e: actix::MailboxError) -> Self {
        EngineError::Unavailable(format!("engine actor unavailable: {e}"))
    }
}
