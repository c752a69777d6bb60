//! A merchant app and a tracking page on any node (docs/cluster.md, "The whole city on
//! every socket"): connected to a node that does not hold the order's zone, they get the
//! welcome, snapshot and frames they would get on the order's own node.

use crate::city_pair::CityPair;
use crate::harness::*;
use crate::support::*;
use crate::whole_city::on_board;
use serde_json::Value;

const MERCHANT_FRAMES: [&str; 2] = ["new_order", "order_updated"];
const TRACK_FRAMES: [&str; 1] = ["status"];

/// The status a merchant or tracking frame tells.
fn status_of(v: &Value) -> &str {
    v["order"]["status"]
        .as_str()
        .or(v["status"].as_str())
        .unwrap_or_default()
}

/// Reads `ws` until a frame of one of `types` tells `status`; returns the frames of those
/// types read on the way, that one last (other frames, such as rider positions, are
/// skipped).
async fn heard_until(ws: &mut WsClient, types: &[&str], status: &str) -> Vec<Value> {
    let mut heard = Vec::new();
    loop {
        let v = ws
            .recv_until(&format!("{types:?} up to {status}"), WAIT, |v| {
                types.contains(&v["type"].as_str().unwrap_or_default())
            })
            .await;
        let done = status_of(&v) == status;
        heard.push(v);
        if done {
            return heard;
        }
    }
}

/// The order's copy in a merchant's welcome, if listed.
fn in_welcome<'a>(welcome: &'a Value, order: &str) -> Option<&'a Value> {
    welcome["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["order_id"] == order)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_app_and_a_tracking_page_on_another_node_follow_the_order() {
    sockets_on_b_follow_an_order_of_a(MAIN_REDIS).await;
}

/// The same on a Redis Cluster of three masters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_app_and_a_tracking_page_on_another_node_follow_the_order_on_a_redis_cluster() {
    let cluster = crate::test_cluster::TestCluster::start();
    sockets_on_b_follow_an_order_of_a(&cluster.url).await;
}

async fn sockets_on_b_follow_an_order_of_a(url: &str) {
    let (prefix, _cleanup) = fresh_keys();
    let nodes = CityPair::start(url, &prefix, &[], &[]).await;
    let (on_a, on_b) = (nodes.a.api(), nodes.b.api());

    // The shop's zone is A's (rendezvous hashing gives it node-a of the two).
    let m = nodes.merchant_on_a().await;
    let c = on_a.customer().await;
    let order = on_a.placed_order(&c, &m).await;
    // B follows the zone once its dashboard shows the order (from then on, B hears each
    // change as it is written, not only the zone's state).
    let (mut dash_b, _) = on_b.dashboard().await;
    on_board(&mut dash_b, &order, "pending_payment").await;

    // The same merchant and customer on both nodes; B's welcome and snapshot list the
    // order as A's do.
    let (mut shop_a, welcome_a) = on_a.merchant_app(&m).await;
    let (mut shop_b, welcome_b) = on_b.merchant_app(&m).await;
    let listed_b = in_welcome(&welcome_b, &order).unwrap_or_else(|| panic!("{welcome_b}"));
    assert_eq!(Some(listed_b), in_welcome(&welcome_a, &order));
    let (mut track_a, snap_a) = on_a.track(&order, &c.token).await;
    let (mut track_b, snap_b) = on_b.track(&order, &c.token).await;
    assert_eq!(snap_b["order"]["order_id"], order.as_str());
    assert_eq!(snap_b["order"]["status"], "pending_payment");
    assert_eq!(snap_a["order"]["version"], snap_b["order"]["version"]);

    // Paid on A: a new order for the merchant app on B, a status for the page on B.
    on_a.pay(&c, &order).await;
    let shop_heard = heard_until(&mut shop_b, &MERCHANT_FRAMES, "paid").await;
    assert_eq!(shop_heard.len(), 1, "{shop_heard:#?}");
    assert_eq!(shop_heard[0]["type"], "new_order");
    let mut shop_b_all = shop_heard;
    let mut track_b_all = heard_until(&mut track_b, &TRACK_FRAMES, "paid").await;

    // Accepted on A: an update; a merchant app opening on B now lists it accepted.
    on_a.accept(&m, &order).await;
    shop_b_all.extend(heard_until(&mut shop_b, &MERCHANT_FRAMES, "accepted").await);
    track_b_all.extend(heard_until(&mut track_b, &TRACK_FRAMES, "accepted").await);
    let (_late, welcome) = on_b.merchant_app(&m).await;
    let listed = in_welcome(&welcome, &order).unwrap_or_else(|| panic!("{welcome}"));
    assert_eq!(listed["status"], "accepted");

    // A rider on A takes it to the door; B's sockets follow to the end.
    let mut r = new_rider_online(&on_a, offset(SHOP, 100.0, 0.0)).await;
    r.take_order(&order).await;
    r.report("picked_up", &order).await;
    r.report("delivered", &order).await;
    shop_b_all.extend(heard_until(&mut shop_b, &MERCHANT_FRAMES, "delivered").await);
    track_b_all.extend(heard_until(&mut track_b, &TRACK_FRAMES, "delivered").await);

    // Exactly the frames A's own sockets got, each once.
    let shop_a_all = heard_until(&mut shop_a, &MERCHANT_FRAMES, "delivered").await;
    let track_a_all = heard_until(&mut track_a, &TRACK_FRAMES, "delivered").await;
    assert_eq!(shop_b_all, shop_a_all);
    assert_eq!(track_b_all, track_a_all);
    let statuses: Vec<_> = track_b_all.iter().map(status_of).collect();
    assert_eq!(
        statuses,
        ["paid", "accepted", "assigned", "picked_up", "delivered"]
    );

    // Ended, it is in no welcome on B.
    let (_, welcome) = on_b.merchant_app(&m).await;
    assert!(in_welcome(&welcome, &order).is_none(), "{welcome}");
    drop(nodes);
}

/// An order placed and paid through `api`: `shop` hears it once, as `new_order`.
async fn paid_is_new_on(api: &Api, c: &Customer, m: &Merchant, shop: &mut WsClient) {
    let order = api.placed_order(c, m).await;
    api.pay(c, &order).await;
    let heard = heard_until(shop, &MERCHANT_FRAMES, "paid").await;
    assert_eq!(heard.len(), 1, "{heard:#?}");
    assert_eq!(heard[0]["type"], "new_order");
    assert_eq!(heard[0]["order"]["order_id"], order.as_str());
}

/// A new merchant's zone reaches another node's feed at its next reading of the zone list
/// (every 10 rounds of the feed; 6 s on B here): an order paid before that is still a new
/// order to the merchant's app on that node, since the feed follows a zone listed after
/// its first listing from the zone's first entry. Without it the app on B would miss
/// `new_order`: the feed would read the order from its record, which tells no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_app_on_another_node_hears_of_an_order_paid_as_its_zone_is_new() {
    let (prefix, _cleanup) = fresh_keys();
    let slow_list = [("DISPATCH_CLUSTER__CITY_FEED_MS", "600")];
    let nodes = CityPair::start(MAIN_REDIS, &prefix, &[], &slow_list).await;
    let (on_a, on_b) = (nodes.a.api(), nodes.b.api());

    // The merchant joins (its zone is listed now, after B's first listing), A takes the
    // zone, the merchant's app opens on B, and an order is placed and paid, all before B
    // reads the list again.
    let m = nodes.merchant_on_a().await;
    let (mut shop_b, _) = on_b.merchant_app(&m).await;
    let c = on_a.customer().await;
    paid_is_new_on(&on_a, &c, &m, &mut shop_b).await;
    drop(nodes);
}

/// A zone this node lets go is followed from this node's own last entry in its stream:
/// what the new holder writes before this node's feed takes the zone up (B reads the zone
/// list every 6 s here) still reaches B's merchant app as it happened. Without it the app
/// on B would miss `new_order`: the feed would start at the stream's end and read the
/// order from its record, which tells no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_app_on_the_node_that_let_the_zone_go_hears_what_the_new_holder_wrote() {
    let (prefix, _cleanup) = fresh_keys();
    let mut env_b = crate::nodes::node_env("node-b");
    env_b.push(("DISPATCH_CLUSTER__CITY_FEED_MS", "600"));
    let b = Server::start_ready(MAIN_REDIS, &prefix, &env_b).await;
    let on_b = b.api();
    let store = open_store(MAIN_REDIS, &prefix);
    let zone = crate::city_pair::shop_zone();

    // B alone holds the shop's zone and writes an order of it; the merchant's app is on B.
    let m = on_b.merchant().await;
    assert_eq!(
        crate::nodes::until_holder(&store, &zone, None).await,
        "node-b"
    );
    let c = on_b.customer().await;
    on_b.placed_order(&c, &m).await;
    let (mut shop_b, _) = on_b.merchant_app(&m).await;

    // A joins and wins the zone (rendezvous hashing): B lets it go. An order is placed
    // and paid through A at once.
    let a = Server::start_ready(MAIN_REDIS, &prefix, &crate::nodes::node_env("node-a")).await;
    let on_a = a.api();
    assert_eq!(
        crate::nodes::until_holder(&store, &zone, Some("node-b")).await,
        "node-a"
    );
    paid_is_new_on(&on_a, &c, &m, &mut shop_b).await;
    drop((a, b));
}
