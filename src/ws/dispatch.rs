//! `GET /ws/dispatch?token=…`: the dispatcher's dashboard. A snapshot of every rider,
//! live order and open escalation (plus merchants and live counters), then batched
//! `updates` at most once per `dashboard.update_interval_ms`. On a node of several, the
//! live orders of the other nodes are in both too (docs/cluster.md).

use super::frames::{encode, Board, DashboardFrame};
use super::serve_push_only;
use crate::auth::Principal;
use crate::elsewhere::with_elsewhere;
use crate::errors::{ApiError, ErrorBody};
use crate::extract::SocketRequest;
use crate::riders_elsewhere::riders_with_elsewhere;
use crate::state::AppState;
use actix_web::{get, HttpResponse};

#[utoipa::path(
    operation_id = "dashboard_socket",
    tag = "sockets",
    params(("token" = Option<String>, Query, description = "The token, if not in Authorization")),
    security(("bearer" = [])),
    responses(
        (status = 101, description = "Upgraded. Text frames, one JSON object each, with `type`: server → client `DashboardFrame`; client messages are read only as signs of life (`/api/v1/socket-frames.schema.json`)"),
        (status = 400, description = "`invalid_input`: not a WebSocket upgrade", body = ErrorBody),
        (status = 401, description = "`unauthorized`: missing or invalid token", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only, or a browser origin not allowed", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over a socket cap, with Retry-After", body = ErrorBody),
    ),
    extensions(("x-socket-frames" = json!({"schema": "/api/v1/socket-frames.schema.json", "server_to_client": "#/$defs/DashboardFrame"}))),
)]
#[get("/ws/dispatch")]
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
    // This node's riders, and those other nodes run.
    let riders = riders_with_elsewhere(e.riders().await, state.hub.riders_elsewhere());
    let here: Vec<_> = e
        .live_orders()
        .await
        .into_iter()
        .filter(|o| !o.status.is_final())
        .collect();
    // And the orders other nodes own.
    let orders = with_elsewhere(here, state.hub.orders_elsewhere());
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
