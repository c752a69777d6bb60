//! The mesh against a real Redis at 127.0.0.1:6379 (a key prefix of its own per test).

use super::*;
use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;

async fn conn() -> MultiplexedConnection {
    redis::Client::open("redis://127.0.0.1:6379/0")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("these tests need Redis on 127.0.0.1:6379")
}

/// Answers `<node>:<from>:<body>`, after `delay`; keeps every note and call body in the
/// order it was handed over.
struct Echo {
    node: &'static str,
    delay: Duration,
    seen: Arc<Mutex<Vec<String>>>,
}

impl CallHandler for Echo {
    fn handle(&self, from: &str, body: String) -> BoxFuture<'static, String> {
        self.seen.lock().push(body.clone());
        let (delay, answer) = (self.delay, format!("{}:{from}:{body}", self.node));
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            answer
        })
    }

    fn note(&self, _from: &str, body: String) {
        self.seen.lock().push(body);
    }
}

fn cfg(prefix: &str, node: &str) -> MeshConfig {
    let mut c = MeshConfig::new(prefix, node);
    c.call_timeout = Duration::from_millis(1500);
    c
}

async fn node(cfg: MeshConfig, delay: Duration) -> Arc<Mesh<MultiplexedConnection>> {
    node_seeing(cfg, delay).await.0
}

async fn node_seeing(
    cfg: MeshConfig,
    delay: Duration,
) -> (Arc<Mesh<MultiplexedConnection>>, Arc<Mutex<Vec<String>>>) {
    let name: &'static str = Box::leak(cfg.node.clone().into_boxed_str());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(Echo {
        node: name,
        delay,
        seen: seen.clone(),
    });
    let mesh = Mesh::start(cfg, conn().await, conn().await, handler)
        .await
        .unwrap();
    (mesh, seen)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_and_calls_arrive_in_the_order_they_were_sent() {
    let p = prefix("order");
    let a = node(cfg(&p, "a"), Duration::ZERO).await;
    let (_b, seen) = node_seeing(cfg(&p, "b"), Duration::ZERO).await;
    let mut expected = Vec::new();
    let mut calls = Vec::new();
    for i in 0..300 {
        let body = i.to_string();
        expected.push(body.clone());
        if i % 10 == 9 {
            // A call made after notes is handed over after them.
            calls.push(tokio::spawn(a.call("b", body)));
        } else {
            assert!(a.note("b", body));
        }
    }
    for c in calls {
        c.await.unwrap().unwrap();
    }
    wait(|| seen.lock().len() == 300).await;
    assert_eq!(*seen.lock(), expected);
}

async fn wait(mut done: impl FnMut() -> bool) {
    for _ in 0..200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 2 s");
}
