//! Benchmark (not a test) of what the store's Redis Cluster connection handle
//! (store/redis/cluster_client.rs: stall detection, renewal) adds to a request: the same
//! `SET`s, one at a time and 64 at once, through redis-rs's cluster connection as it is
//! and through the store's handle, on one local three-master cluster in the same run.
//!
//! `cargo bench -p dispatch-actors --bench cluster_handle` (starts the cluster with
//! tools/redis-cluster.sh on ports 17101-17103; BENCH_SECS the seconds per run, default 5).

use dispatch_actors::store::redis::{RedisConfig, RedisStore};
use redis::aio::ConnectionLike;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const PORTS: &str = "17101 17102 17103";

fn secs() -> u64 {
    std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/redis-cluster.sh")
}

fn cluster(cmd: &str) -> String {
    let out = Command::new("bash")
        .arg(script())
        .arg(cmd)
        .env("PORTS", PORTS)
        .output()
        .expect("tools/redis-cluster.sh runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// SETs per second from `clients` tasks each sending one at a time on `conn`.
async fn rate<C: ConnectionLike + Clone + Send + Sync + 'static>(conn: C, clients: usize) -> f64 {
    let until = Instant::now() + Duration::from_secs(secs());
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let mut c = conn.clone();
            tokio::spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    let _: () = redis::cmd("SET")
                        .arg(format!("bench:handle:{i}:{}", n % 100))
                        .arg(n)
                        .query_async(&mut c)
                        .await
                        .expect("SET");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    total as f64 / secs() as f64
}

fn main() {
    let url = cluster("start");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let seeds: Vec<&str> = url.split(',').collect();
        let raw = redis::cluster::ClusterClient::new(seeds)
            .unwrap()
            .get_async_connection()
            .await
            .unwrap();
        let store = RedisStore::open(RedisConfig {
            url: url.clone(),
            prefix: "bench:".into(),
            ..Default::default()
        })
        .unwrap();
        let handle = store.conn();
        println!(
            "Cluster connection handle against {url} ({} s per run)",
            secs()
        );
        println!("| clients | redis-rs connection SET/s | store handle SET/s | handle / raw |");
        println!("|---|---|---|---|");
        for clients in [1usize, 64] {
            // Each twice, alternating, so neither side runs only on a warm cluster.
            let mut raw_rate = 0.0;
            let mut handle_rate = 0.0;
            for _ in 0..2 {
                raw_rate += rate(raw.clone(), clients).await / 2.0;
                handle_rate += rate(handle.clone(), clients).await / 2.0;
            }
            println!(
                "| {clients} | {raw_rate:.0} | {handle_rate:.0} | {:.3} |",
                handle_rate / raw_rate
            );
        }
    });
    cluster("stop");
}
