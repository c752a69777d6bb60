//! A real `dispatchd` in a namespace, seen from the host: it answers at the namespace's
//! address; paused (SIGSTOP) it answers nothing until SIGCONT; cut off it is unreachable
//! until healed; killed, its address refuses connections.

use crate::bed::{Node, TestNet};
use std::time::{Duration, Instant};

/// What a request gets from the node.
#[derive(Debug, PartialEq)]
enum Outcome {
    Ok,
    /// No answer within the client's timeout (paused, or cut off).
    TimedOut,
    /// Refused or unreachable before the timeout.
    Failed,
}

/// A client that gives up after `timeout` and keeps no connection between requests, so
/// each request says what happens now (a pooled connection would outlive a partition).
fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn healthz(node: &Node) -> Outcome {
    match client(Duration::from_millis(1500))
        .get(node.url("/healthz"))
        .send()
        .await
    {
        Ok(r) if r.status() == reqwest::StatusCode::OK => Outcome::Ok,
        Ok(r) => panic!("healthz answered {}", r.status()),
        Err(e) if e.is_timeout() => Outcome::TimedOut,
        Err(_) => Outcome::Failed,
    }
}

/// Polls until `/healthz` answers 200 again.
async fn wait_healthy(node: &Node, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while healthz(node).await != Outcome::Ok {
        assert!(Instant::now() < deadline, "healthz never answered {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_node_in_a_namespace_is_reached_paused_cut_off_and_killed() {
    let Some(net) = TestNet::for_test("node_in_namespace", 1) else {
        return;
    };
    let mut node = Node::in_netns(&net, 0, &[]);
    assert!(
        node.base.starts_with(&format!("http://{}:", net.ns_ip(0))),
        "the node listens on its namespace's address: {}",
        node.base
    );
    wait_healthy(&node, "after the start").await;

    node.pause();
    assert_eq!(
        healthz(&node).await,
        Outcome::TimedOut,
        "a paused node answered"
    );
    node.resume();
    wait_healthy(&node, "after SIGCONT").await;

    net.partition(0);
    assert_ne!(healthz(&node).await, Outcome::Ok, "a cut-off node answered");
    net.heal(0);
    wait_healthy(&node, "after the partition healed").await;

    node.kill9();
    assert_eq!(
        healthz(&node).await,
        Outcome::Failed,
        "a killed node answered"
    );
}
