//! `GET /ws/dispatch?token=…`: the dispatcher's dashboard. A snapshot of every rider,
//! live order and open escalation (plus merchants and live counters), then batched
//! `updates` at most once per `dashboard.update_interval_ms`.

use super::frames::{encode, Board, DashboardFrame};
use super::serve_push_only;
use crate::auth::Principal;
use crate::errors::ApiError;
use crate::extract::SocketRequest;
use crate::state::AppState;
use actix_web::HttpResponse;

pub async fn connect(socket: SocketRequest) -> Result<HttpResponse, ApiError> {
    let state = socket.state.clone();
    if socket.who != Principal::Dispatcher {
        return Err(ApiError::forbidden("dispatcher only"));
    }
    let opened = socket.open(state.settings.dashboard.queue_frames)?;
    let outbox = opened.outbox.clone();
    // Registered first; the snapshot goes ahead of updates queued while it was built.
    state.hub.add_dashboard(outbox.clone());
    let snapshot = match snapshot(&state).await {
        Ok(s) => s,
        Err(e) => {
            // No socket will serve it: the hub must not keep it.
            state.hub.remove_dashboard(&outbox);
            return Err(e);
        }
    };
    outbox.push_front(snapshot);
    let hub = state.hub.clone();
    let response = serve_push_only(&state, opened, "dispatch", move |o| hub.remove_dashboard(o));
    Ok(response)
}

pub async fn snapshot(state: &AppState) -> Result<String, ApiError> {
    let e = &state.engine;
    let riders = e.riders().await;
    let orders: Vec<_> = e
        .live_orders()
        .await
        .into_iter()
        .filter(|o| !o.status.is_final())
        .collect();
    let escalations = e.escalations(true).await?;
    let merchants = e.merchants().await;
    Ok(encode(&DashboardFrame::Snapshot(Board {
        riders: &riders,
        orders: &orders,
        escalations: &escalations,
        merchants: &merchants,
        stats: state.hub.stats(),
    })))
}
