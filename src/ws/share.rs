//! `GET /ws/share?token=<share token>`: the tracking socket of a share link, for someone
//! without an account. The link is the credential: unknown 404, dead 410, both at the
//! upgrade. Frames are the tracking socket's (`snapshot`, `status`, `rider_location`),
//! but the snapshot carries the order as shared, and with privacy `status` the socket is
//! registered where rider positions never go. It closes (1008) when the link expires, is
//! revoked, or `share.after_final_s` after the order became final.

use super::frames::{encode, ShareFrame};
use super::{check_origin, serve_push_only, Opened};
use crate::errors::{ApiError, ErrorBody};
use crate::routes::share_links::TokenQuery;
use crate::share::{ShareLinks, SharedOrder};
use crate::state::AppState;
use actix_web::{get, web, HttpRequest, HttpResponse};
use dispatch_actors::outbox::Outbox;

#[utoipa::path(
    operation_id = "share_socket",
    tag = "sockets",
    security(("share_token" = [])),
    responses(
        (status = 101, description = "Upgraded. Text frames, one JSON object each, with `type`: server → client `ShareFrame`; client messages are read only as signs of life (`/api/v1/socket-frames.schema.json`). Closes (1008) when the link expires, is revoked, or `share.after_final_s` after the order became final"),
        (status = 400, description = "`invalid_input`: not a WebSocket upgrade, or no `token`", body = ErrorBody),
        (status = 403, description = "`forbidden`: a browser origin not allowed", body = ErrorBody),
        (status = 404, description = "`not_found`: no such share link", body = ErrorBody),
        (status = 410, description = "`gone`: the link expired or was revoked, or its order finished over `share.after_final_s` ago", body = ErrorBody),
        (status = 429, description = "`rate_limited`: over a socket cap, with Retry-After", body = ErrorBody),
        (status = 503, description = "`unavailable`: the store does not answer", body = ErrorBody),
    ),
    extensions(("x-socket-frames" = json!({"schema": "/api/v1/socket-frames.schema.json", "server_to_client": "#/$defs/ShareFrame"}))),
)]
#[get("/ws/share")]
pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    query: web::Query<TokenQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    check_origin(&state, &req)?;
    let shares = state.shares.clone();
    let link = shares.find(&query.token).await?;
    let (order_id, link_id) = (link.order_id.clone(), link.link_id.clone());
    // Watched for a final status before the order is read: none can fall between.
    shares.opened(&order_id, &link_id);
    let forget = {
        let shares = shares.clone();
        let (o, l) = (order_id.clone(), link_id.clone());
        move || shares.closed(&o, &l)
    };
    let admitted = async {
        let order = state.engine.order(&order_id).await?;
        let closes_at_ms = shares.check(&link, &order, crate::auth::now_ms())?;
        let expiry_reason = if closes_at_ms == link.expires_ms {
            "share link expired"
        } else {
            "order finished"
        };
        let ticket = state.sockets.admit_as(
            req.peer_addr().map(|a| a.ip()),
            ShareLinks::socket_key(&link_id),
            true,
            Some(closes_at_ms),
            expiry_reason,
        )?;
        // Counted under the link now, so a revocation from here on ends this socket;
        // one that came just before shows in the stored link.
        let link = shares.find(&query.token).await?;
        shares.check(&link, &order, crate::auth::now_ms())?;
        Ok::<_, ApiError>((link, order, ticket))
    }
    .await;
    let (link, order, ticket) = match admitted {
        Ok(v) => v,
        Err(e) => {
            forget();
            return Err(e);
        }
    };
    let (response, session, stream) = match actix_ws::handle(&req, body) {
        Ok(v) => v,
        Err(e) => {
            forget();
            return Err(ApiError::invalid(e.to_string()));
        }
    };
    shares.served();
    let outbox: Outbox<String> = Outbox::new(state.settings.server.ws_queue_frames);
    let shows_position = link.privacy.shows_position();
    // Registered before the snapshot is read, and the snapshot goes ahead of anything
    // queued meanwhile: no status change falls between the two.
    if shows_position {
        state.hub.add_tracker(order_id.clone(), outbox.clone());
    } else {
        state
            .hub
            .add_status_tracker(order_id.clone(), outbox.clone());
    }
    let order = state.engine.order(&order_id).await.unwrap_or(order);
    outbox.push_front(encode(&ShareFrame::Snapshot {
        order: SharedOrder::of(&order, link.privacy),
        privacy: link.privacy,
        expires_at_ms: link.expires_ms,
    }));
    let hub = state.hub.clone();
    let opened = Opened {
        response,
        session,
        stream,
        outbox,
        ticket,
    };
    Ok(serve_push_only(&state, opened, "track", move |o| {
        if shows_position {
            hub.remove_tracker(&order_id, o);
        } else {
            hub.remove_status_tracker(&order_id, o);
        }
        forget();
    }))
}
