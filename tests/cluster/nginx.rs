//! ops/nginx/dispatchd.conf: nginx accepts it, and, run in front of two real nodes, it
//! passes REST and a WebSocket upgrade through, spreads requests over both, and keeps
//! serving through the survivor when one node is killed.

use crate::bed::{has_program, nginx_check, skip, Nginx, Node, TestNet, DISPATCHER};
use crate::support::{Api, WsClient};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("ops/nginx/dispatchd.conf")
}

/// Whether nginx is here; if not, the test skips loudly (or fails where required).
fn nginx_here(test: &str) -> bool {
    let here = has_program("nginx", "-v");
    if !here {
        skip(test, "nginx is not installed");
    }
    here
}

/// The example with its listener moved to 127.0.0.1:`port` (port 80 may be taken, or
/// privileged, and nginx -t binds it). Fails if the example has no `listen 80;`.
fn on_port(example: &str, port: u16) -> String {
    assert!(
        example.contains("    listen 80;\n"),
        "no `listen 80;` in the example"
    );
    example.replacen(
        "    listen 80;\n",
        &format!("    listen 127.0.0.1:{port};\n"),
        1,
    )
}

/// The example with its upstream servers replaced by `nodes` (same parameters). Fails if
/// the example no longer has the shape this rewrite expects, so the test keeps running the
/// file operators copy.
fn with_nodes(example: &str, nodes: &[&str]) -> String {
    let mut out = Vec::new();
    let mut replaced = false;
    for line in example.lines() {
        let trimmed = line.trim_start();
        let Some(rest) = trimmed.strip_prefix("server 10.0.0.") else {
            out.push(line.to_string());
            continue;
        };
        if !replaced {
            // `server <addr> <params>;`: keep the params, one line per test node.
            let params = rest.split_once(' ').map(|(_, p)| p).unwrap_or(";");
            for n in nodes {
                out.push(format!("    server {n} {params}"));
            }
            replaced = true;
        }
    }
    assert!(replaced, "no `server 10.0.0.…` lines in the example");
    out.join("\n") + "\n"
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_nginx_example_passes_nginx_t() {
    if !nginx_here("nginx_example_syntax") {
        return;
    }
    let example = std::fs::read_to_string(example()).unwrap();
    let out = nginx_check(&on_port(&example, free_port()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nginx -t: {stderr}");
    assert!(stderr.contains("test is successful"), "{stderr}");
}

/// How many riders a node holds (each node has a memory store of its own).
async fn riders_on(node: &Node) -> usize {
    Api::new(&node.base, DISPATCHER)
        .get("/riders", Some(DISPATCHER))
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .len()
}

async fn dashboard_snapshot(base: &str) {
    let url = format!(
        "{}/ws/dispatch?token={DISPATCHER}",
        base.replacen("http", "ws", 1)
    );
    let mut ws = WsClient::connect(&url)
        .await
        .unwrap_or_else(|status| panic!("the upgrade through nginx answered {status}"));
    ws.recv_type("snapshot", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_spreads_rest_and_sockets_over_nodes_and_fails_over() {
    if !nginx_here("nginx_in_front_of_nodes") {
        return;
    }
    let localhost = Ipv4Addr::LOCALHOST;
    let mut a = Node::on_host(localhost, &[]);
    let b = Node::on_host(localhost, &[]);
    let port = free_port();
    let example = std::fs::read_to_string(example()).unwrap();
    let addrs = [
        a.base.trim_start_matches("http://"),
        b.base.trim_start_matches("http://"),
    ];
    let live = on_port(&with_nodes(&example, &addrs), port);
    let _nginx = Nginx::start(&live, port);
    let front = format!("http://127.0.0.1:{port}");
    let api = Api::new(&front, DISPATCHER);

    // REST through nginx, spread over both nodes (least_conn: idle nodes take turns).
    for _ in 0..6 {
        api.create_rider().await;
    }
    let (on_a, on_b) = (riders_on(&a).await, riders_on(&b).await);
    assert_eq!(on_a + on_b, 6);
    assert!(on_a > 0 && on_b > 0, "all on one node: {on_a} and {on_b}");
    // A WebSocket upgrade through nginx: the dashboard's first frame arrives.
    dashboard_snapshot(&front).await;

    // One node killed: every request still succeeds, through the other.
    a.kill9();
    for _ in 0..10 {
        api.get("/healthz", None).await.expect(200);
    }
    for _ in 0..4 {
        api.create_rider().await;
    }
    assert_eq!(riders_on(&b).await, on_b + 4);
    dashboard_snapshot(&front).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_leaves_out_a_node_cut_off_from_the_network() {
    if !nginx_here("nginx_partitioned_node") {
        return;
    }
    let Some(net) = TestNet::for_test("nginx_partitioned_node", 2) else {
        return;
    };
    let nodes = [Node::in_netns(&net, 0, &[]), Node::in_netns(&net, 1, &[])];
    let port = free_port();
    let example = std::fs::read_to_string(example()).unwrap();
    let addrs: Vec<&str> = nodes
        .iter()
        .map(|n| n.base.trim_start_matches("http://"))
        .collect();
    let _nginx = Nginx::start(&on_port(&with_nodes(&example, &addrs), port), port);
    let api = Api::new(&format!("http://127.0.0.1:{port}"), DISPATCHER);
    api.get("/healthz", None).await.expect(200);

    // Node 0 cut off: a request sent to it times out (proxy_connect_timeout on a new
    // connection, proxy_read_timeout on a kept-alive one) and is retried on node 1; after
    // max_fails of those nginx leaves node 0 out for fail_timeout, so only the first
    // requests pay the wait.
    net.partition(0);
    let mut slow = 0;
    for _ in 0..8 {
        let started = Instant::now();
        api.get("/riders", Some(DISPATCHER)).await.expect(200);
        if started.elapsed() > Duration::from_millis(1500) {
            slow += 1;
        }
    }
    assert!(
        slow <= 2,
        "{slow} of 8 requests waited for the cut-off node"
    );
}
