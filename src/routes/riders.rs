//! Riders: creation, the fleet list, and the dispatcher's nearest-riders query.

use crate::auth::Principal;
use crate::errors::{ApiError, ErrorBody};
use crate::extract::{Dispatcher, Json};
use crate::state::AppState;
use actix_web::{get, post, web, HttpResponse};
use dispatch_actors::domain::rider::{RiderStatus, RiderView};
use dispatch_actors::domain::{GeoPoint, RiderId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct NewRider {
    pub name: String,
}

/// A new rider and the token its app connects with.
#[derive(Serialize, ToSchema)]
pub struct RiderCreated {
    pub rider_id: RiderId,
    pub token: String,
}

#[utoipa::path(
    operation_id = "create_rider",
    tag = "riders",
    request_body = NewRider,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created, `offline`", body = RiderCreated),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
    )
)]
#[post("/riders")]
pub async fn create(
    _: Dispatcher,
    Json { value: r, .. }: Json<NewRider>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let rider = state.engine.create_rider(r.name).await?;
    let token = state
        .auth
        .issue_durable(Principal::Rider(rider.rider_id.clone()))
        .await?;
    Ok(HttpResponse::Created().json(RiderCreated {
        rider_id: rider.rider_id,
        token,
    }))
}

#[utoipa::path(
    operation_id = "list_riders",
    tag = "riders",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every rider", body = Vec<RiderView>),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
    )
)]
#[get("/riders")]
pub async fn list(_: Dispatcher, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.engine.riders().await))
}

/// Parsed `riders/nearby` query: lat/lon required; radius 1–50000 m; limit 1–100.
#[derive(Debug, PartialEq)]
pub struct NearbyQuery {
    pub at: GeoPoint,
    pub radius_m: f64,
    pub limit: usize,
}

pub fn parse_nearby(q: &HashMap<String, String>) -> Result<NearbyQuery, ApiError> {
    let num = |k: &str| -> Result<Option<f64>, ApiError> {
        match q.get(k) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| ApiError::invalid(format!("{k} must be a number"))),
        }
    };
    let lat = num("lat")?.ok_or_else(|| ApiError::invalid("lat is required"))?;
    let lon = num("lon")?.ok_or_else(|| ApiError::invalid("lon is required"))?;
    let at = GeoPoint::new(lat, lon).map_err(ApiError::invalid)?;
    let radius_m = num("radius_m")?.unwrap_or(5000.0);
    if !(1.0..=50_000.0).contains(&radius_m) {
        return Err(ApiError::invalid("radius_m must be 1..50000"));
    }
    let limit = num("limit")?.unwrap_or(10.0);
    if !(1.0..=100.0).contains(&limit) || limit.fract() != 0.0 {
        return Err(ApiError::invalid("limit must be an integer 1..100"));
    }
    Ok(NearbyQuery {
        at,
        radius_m,
        limit: limit as usize,
    })
}

/// One answer of `riders/nearby`.
#[derive(Serialize, ToSchema)]
pub struct NearbyRider {
    pub rider_id: RiderId,
    pub location: GeoPoint,
    /// Rounded to whole metres.
    pub distance_m: f64,
    pub status: RiderStatus,
    pub last_seen_ms: Option<u64>,
}

#[utoipa::path(
    operation_id = "riders_nearby",
    tag = "riders",
    params(
        ("lat" = f64, Query, description = "Required, -90..90"),
        ("lon" = f64, Query, description = "Required, -180..180"),
        ("radius_m" = Option<f64>, Query, description = "Default 5000, 1..50000"),
        ("limit" = Option<u32>, Query, description = "Default 10, 1..100"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Riders with a known position that are not offline or stale, nearest first", body = Vec<NearbyRider>),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`forbidden`: dispatcher only", body = ErrorBody),
    )
)]
#[get("/riders/nearby")]
pub async fn nearby(
    _: Dispatcher,
    query: web::Query<HashMap<String, String>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let q = parse_nearby(&query)?;
    let near = state
        .engine
        .riders_nearby(q.at, q.radius_m, q.limit)
        .await?;
    let out: Vec<_> = near
        .into_iter()
        .map(|(n, view)| NearbyRider {
            rider_id: n.rider_id,
            location: n.location,
            distance_m: n.distance_m.round(),
            status: view.status,
            last_seen_ms: view.last_seen_ms,
        })
        .collect();
    Ok(HttpResponse::Ok().json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_bounds() {
        let n = parse_nearby(&q(&[("lat", "31.2"), ("lon", "121.4")])).unwrap();
        assert_eq!((n.radius_m, n.limit), (5000.0, 10));
        assert!(parse_nearby(&q(&[("lon", "121.4")])).is_err());
        assert!(parse_nearby(&q(&[("lat", "91"), ("lon", "1")])).is_err());
        assert!(parse_nearby(&q(&[("lat", "1"), ("lon", "1"), ("radius_m", "0")])).is_err());
        assert!(parse_nearby(&q(&[("lat", "1"), ("lon", "1"), ("radius_m", "50001")])).is_err());
        assert!(parse_nearby(&q(&[("lat", "1"), ("lon", "1"), ("limit", "101")])).is_err());
        assert!(parse_nearby(&q(&[("lat", "1"), ("lon", "1"), ("limit", "2.5")])).is_err());
        assert!(parse_nearby(&q(&[("lat", "NaN"), ("lon", "1")])).is_err());
    }
}
