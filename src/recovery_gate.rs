//! While a restart reads the engine back from the store, the API and the sockets answer
//! 503 `unavailable` with `Retry-After: 1`. Served from a half-built engine, a valid token
//! not read back yet would get 401 (an app would sign its user out) and a stored order 404;
//! "not now" is the truth. Probes, the scrape and the pages are served as always: readyz
//! already says 503 until recovery is done.

use crate::errors::ApiError;
use crate::state::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

/// The middleware (`actix_web::middleware::from_fn(gate)`).
pub async fn gate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        if gated(req.path()) && state.engine.store().recovering() {
            return Err(ApiError::Recovering.into());
        }
    }
    next.call(req).await
}

fn gated(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/ws/")
}

#[cfg(test)]
mod tests {
    use super::gated;

    #[test]
    fn the_api_and_sockets_wait_probes_and_pages_do_not() {
        assert!(gated("/api/v1/orders"));
        assert!(gated("/ws/rider"));
        for p in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/",
            "/static/app.js",
            "/track/o_1",
        ] {
            assert!(!gated(p), "{p}");
        }
    }
}
