//! The mesh against a real Redis at 127.0.0.1:6379 (a key prefix of its own per test).

use super::*;
use redis::aio::MultiplexedConnection;

async fn conn() -> MultiplexedConnection {
    redis::Client::open("redis://127.0.0.1:6379/0")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("these tests need Redis on 127.0.0.1:6379")
}

/// Answers `<node>:<from>:<body>`, after `delay`.
struct Echo {
    node: &'static str,
    delay: Duration,
}

#[async_trait]
impl CallHandler for Echo {
    async fn handle(&self, from: &str, body: String) -> String {
        tokio::time::sleep(self.delay).await;
        format!("{}:{from}:{body}", self.node)
    }
}

fn cfg(prefix: &str, node: &str) -> MeshConfig {
    let mut c = MeshConfig::new(prefix, node);
    c.call_timeout = Duration::from_millis(1500);
    c
}

async fn node(cfg: MeshConfig, delay: Duration) -> Arc<Mesh<MultiplexedConnection>> {
    let name: &'static str = Box::leak(cfg.node.clone().into_boxed_str());
    let handler = Arc::new(Echo { node: name, delay });
    Mesh::start(cfg, conn().await, conn().await, handler)
        .await
        .unwrap()
}

fn prefix(test: &str) -> String {
    format!("test:mesh:{test}:{}:", rand::random::<u64>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_go_both_ways_and_every_entry_is_acknowledged() {
    let p = prefix("both");
    let a = node(cfg(&p, "a"), Duration::ZERO).await;
    let b = node(cfg(&p, "b"), Duration::ZERO).await;
    assert_eq!(a.call("b", "hi".into()).await.unwrap(), "b:a:hi");
    assert_eq!(b.call("a", "yo".into()).await.unwrap(), "a:b:yo");
    // Many at once, each answer matched to its own call.
    let calls = (0..200).map(|i| {
        let a = a.clone();
        async move { (i, a.call("b", i.to_string()).await) }
    });
    for (i, r) in futures_util::future::join_all(calls).await {
        assert_eq!(r.unwrap(), format!("b:a:{i}"));
    }
    assert_eq!(a.in_flight(), 0);
    // Nothing is left pending in either inbox's group.
    let mut c = conn().await;
    for n in ["a", "b"] {
        let inbox = a.cfg.inbox(n);
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg(&inbox)
            .arg("engine")
            .query_async(&mut c)
            .await
            .unwrap();
        let redis::Value::Array(parts) = pending else {
            panic!("XPENDING: {pending:?}")
        };
        assert_eq!(parts[0], redis::Value::Int(0), "{n}'s inbox: {parts:?}");
    }
}

#[tokio::test]
async fn a_call_to_a_node_that_is_not_there_times_out() {
    let p = prefix("absent");
    let mut c = cfg(&p, "a");
    c.call_timeout = Duration::from_millis(200);
    let a = node(c, Duration::ZERO).await;
    assert_eq!(
        a.call("nobody", "hi".into()).await,
        Err(MeshError::Timeout("nobody".into()))
    );
    assert_eq!(a.in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_refuses_rather_than_blocks_its_inbox() {
    let p = prefix("full");
    let a = node(cfg(&p, "a"), Duration::ZERO).await;
    let mut slow = cfg(&p, "b");
    slow.max_handling = 1;
    let b = node(slow, Duration::from_millis(400)).await;
    let (first, second) = tokio::join!(a.call("b", "1".into()), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        a.call("b", "2".into()).await
    });
    assert_eq!(first.unwrap(), "b:a:1");
    assert_eq!(second, Err(MeshError::Busy));
    // b's inbox kept moving while its one slot was taken: it still reads answers.
    assert_eq!(b.call("a", "3".into()).await.unwrap(), "a:b:3");
    // And it takes calls again once the slot is free.
    assert_eq!(a.call("b", "4".into()).await.unwrap(), "b:a:4");
}

#[tokio::test]
async fn too_many_calls_in_flight_are_refused_here() {
    let p = prefix("inflight");
    let mut c = cfg(&p, "a");
    c.max_in_flight = 1;
    c.call_timeout = Duration::from_millis(300);
    let a = node(c, Duration::ZERO).await;
    let (x, y) = tokio::join!(a.call("nobody", "1".into()), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.call("nobody", "2".into()).await
    });
    assert_eq!(x, Err(MeshError::Timeout("nobody".into())));
    assert_eq!(y, Err(MeshError::Busy));
}
