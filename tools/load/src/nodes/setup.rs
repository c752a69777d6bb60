//! What a `nodes` run creates over REST before it starts, each thing on some node (any
//! node must do): merchants at fixed spots of the city (the same spots in every run, so
//! runs with different node counts see the same zones), customers and riders.

use crate::city::movement::CityBox;
use crate::city::rest::{self, call, Merchant};
use crate::city::Shared;
use futures_util::StreamExt;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use reqwest::{Client, Method};
use serde_json::json;

/// `n` merchants with one item each, at spots drawn from `seed`, merchant `i` created on
/// node `i mod N`.
pub async fn merchants(
    shared: &Shared,
    http: &Client,
    urls: &[String],
    dispatcher: &str,
    n: usize,
    city: &CityBox,
    seed: u64,
) -> Vec<Merchant> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let spots: Vec<(f64, f64)> = (0..n).map(|_| city.random_point(&mut rng)).collect();
    let made: Vec<(usize, Merchant)> = futures_util::stream::iter(spots.into_iter().enumerate())
        .map(|(i, at)| async move {
            let url = &urls[i % urls.len()];
            let (lat, lon) = city.to_latlon(at.0, at.1);
            let m = call(
                shared,
                http,
                Method::POST,
                format!("{url}/api/v1/merchants"),
                dispatcher,
                json!({"name": format!("nodes kitchen {i}"), "location": {"lat": lat, "lon": lon},
                       "prep_time_s": 120}),
                "POST /merchants",
            )
            .await?;
            let id = m["merchant_id"].as_str()?.to_string();
            let token = m["token"].as_str()?.to_string();
            let item = call(
                shared,
                http,
                Method::POST,
                format!("{url}/api/v1/merchants/{id}/items"),
                &token,
                json!({"name": "noodles", "price_cents": 1800}),
                "POST /merchants/{id}/items",
            )
            .await?;
            let item_id = item["item_id"].as_str()?.to_string();
            Some((
                i,
                Merchant {
                    id,
                    token,
                    item_id,
                    at,
                },
            ))
        })
        .buffer_unordered(8)
        .filter_map(|m| async move { m })
        .collect()
        .await;
    // Back in spot order: merchant i is at spot i in every run.
    let mut made = made;
    made.sort_by_key(|(i, _)| *i);
    made.into_iter().map(|(_, m)| m).collect()
}

/// Splits `n` as evenly as possible over `parts` (the first ones get the remainder).
pub fn share(n: usize, parts: usize, i: usize) -> usize {
    n / parts + usize::from(i < n % parts)
}

/// `n` riders, spread over the nodes; their tokens.
pub async fn riders(
    shared: &Shared,
    http: &Client,
    urls: &[String],
    dispatcher: &str,
    n: usize,
) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    for (i, url) in urls.iter().enumerate() {
        let k = share(n, urls.len(), i);
        tokens.extend(rest::create_riders(shared, http, url, dispatcher, k).await);
    }
    tokens
}

/// `n` customers, signed up on the nodes in turn; their tokens.
pub async fn customers(shared: &Shared, http: &Client, urls: &[String], n: usize) -> Vec<String> {
    let mut tokens = Vec::with_capacity(n);
    for (i, url) in urls.iter().enumerate() {
        let k = share(n, urls.len(), i);
        tokens.extend(rest::create_customers(shared, http, url, k).await);
    }
    tokens
}

#[cfg(test)]
mod tests {
    use super::share;

    #[test]
    fn shares_add_up() {
        assert_eq!(
            (0..3).map(|i| share(10, 3, i)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        assert_eq!((0..1).map(|i| share(7, 1, i)).sum::<usize>(), 7);
        assert_eq!((0..4).map(|i| share(2, 4, i)).sum::<usize>(), 2);
    }
}
