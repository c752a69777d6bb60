//! Riders: creation, the fleet list, and the dispatcher's nearest-riders query.

use crate::auth::Principal;
use crate::errors::ApiError;
use crate::extract::{Dispatcher, Json};
use crate::state::AppState;
use actix_web::{web, HttpResponse};
use dispatch_actors::domain::GeoPoint;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

#[derive(Deserialize)]
pub struct NewRider {
    pub name: String,
}

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
    Ok(HttpResponse::Created().json(json!({"rider_id": rider.rider_id, "token": token})))
}

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
        .map(|(n, view)| {
            json!({"rider_id": n.rider_id, "location": n.location, "distance_m": n.distance_m.round(),
                "status": view.status, "last_seen_ms": view.last_seen_ms})
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
