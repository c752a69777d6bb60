//! The store's one connection type: a plain Redis (one URL, a `ConnectionManager`, as
//! always) or a Redis Cluster (comma-separated seed URLs, the cluster client's slot
//! routing, MOVED/ASK and reconnects). Everything in store/redis/ speaks through it,
//! so the writer, reads, the pinger and the snapshot reader are the same code for both.
//!
//! A cluster refuses a pipeline whose commands hash to different slots (redis-rs routes a
//! pipeline by its first keyed command and fails on a second slot: cluster_async/
//! routing.rs, `route_for_pipeline`). The writer's group commit mixes every kind of
//! record, so on a cluster a pipeline is split here: one sub-pipeline per slot (commands
//! of one slot keep their order, so a later write of a key still lands last), commands
//! that name no single slot (`PING`, `SCRIPT LOAD`, multi-key `MGET`/`DEL`) each on their
//! own, routed by the client (to every master, or split by slot), all sent at once over
//! the client's one multiplexed connection per master; the answers are put back in the
//! pipeline's order, so every caller still gets exactly its own replies. If one part
//! fails the whole pipeline fails (and the writer retries or keeps all of it) although
//! other parts may have landed: every store write is safe to repeat (order writes skip
//! what this writer already stored; SET/HSET/SADD are idempotent), except that an
//! engine event outside an order write may then appear twice in the event stream.

use super::cluster_client::ClusterHandle;
use super::config::RedisConfig;
use futures_util::future::{join_all, BoxFuture};
use futures_util::FutureExt;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo, Slot};
use redis::{Arg, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::collections::HashMap;
use std::time::Duration;

/// Does `url` name a Redis Cluster? A comma does: the seeds are comma-separated, and a
/// single seed is written with a trailing comma (`redis://10.0.0.1:7001,`).
pub(super) fn is_cluster_url(url: &str) -> bool {
    url.contains(',')
}

/// The seed URLs of `url`: one for a plain Redis, one or more for a cluster.
pub(super) fn seeds(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A plain Redis or a Redis Cluster, behind one `ConnectionLike`. Cheap to clone (both
/// share their connections). Public so other users of the store's connection (zone
/// leases) can name it; only the store opens one.
#[derive(Clone)]
pub enum StoreConn {
    Single(ConnectionManager),
    Cluster(ClusterHandle),
}

impl StoreConn {
    /// Opens without waiting for Redis (it may be down at start): both reconnect by
    /// themselves. Neither retries a failed command more than once: the writer does, with
    /// its own backoff. Must be called inside a tokio runtime.
    pub(super) fn open(cfg: &RedisConfig) -> RedisResult<StoreConn> {
        if is_cluster_url(&cfg.url) {
            let client = ClusterClientBuilder::new(seeds(&cfg.url))
                .retries(1)
                .min_retry_wait(20)
                .max_retry_wait(200)
                .build()?;
            let ccfg = ClusterConfig::new()
                .set_connection_timeout(Duration::from_millis(500))
                .set_response_timeout(cfg.op_timeout);
            return Ok(StoreConn::Cluster(ClusterHandle::open(
                client,
                ccfg,
                cfg.stall_after,
            )));
        }
        let client = redis::Client::open(cfg.url.as_str())?;
        let mcfg = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(cfg.op_timeout));
        Ok(StoreConn::Single(ConnectionManager::new_lazy_with_config(
            client, mcfg,
        )?))
    }

    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, StoreConn::Cluster(_))
    }

    /// Runs `cmd` on the master at `host:port` (cluster), or on the one server.
    pub(super) async fn on_master(
        &mut self,
        master: &(String, u16),
        cmd: &Cmd,
    ) -> RedisResult<Value> {
        match self {
            StoreConn::Single(c) => cmd.query_async(c).await,
            StoreConn::Cluster(h) => {
                let to = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: master.0.clone(),
                    port: master.1,
                });
                let cmd = cmd.clone();
                h.run(|mut c| async move { c.route_command(cmd, to).await })
                    .await
            }
        }
    }

    /// Does every master answer (the health pinger)?
    pub(super) async fn ping(&mut self) -> RedisResult<()> {
        match self {
            StoreConn::Single(c) => redis::cmd("PING").query_async(c).await,
            StoreConn::Cluster(h) => h.run(|c| async move { ping_masters(c).await }).await,
        }
    }

    /// The masters' addresses (cluster); one placeholder for a plain Redis.
    pub(super) async fn masters(&mut self) -> RedisResult<Vec<(String, u16)>> {
        match self {
            StoreConn::Single(_) => Ok(vec![(String::new(), 0)]),
            StoreConn::Cluster(h) => h.run(|c| async move { masters(c).await }).await,
        }
    }
}

/// The cluster's masters that are up, from `CLUSTER NODES` (asked of any node).
async fn masters(mut c: ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut c)
        .await?;
    Ok(parse_masters(&nodes, false))
}

/// PINGs every master, each by its address, and fails if any does not answer. Not the
/// client's own `PING` to all masters: that one skips a master it has no connection to, so
/// a master away would go unnoticed and its slots' writes fail one by one instead of the
/// store turning unwritable.
async fn ping_masters(mut c: ClusterConnection) -> RedisResult<()> {
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut c)
        .await?;
    let pings = parse_masters(&nodes, true).into_iter().map(|(host, port)| {
        let mut c = c.clone();
        async move {
            let to = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
            c.route_command(redis::cmd("PING"), to).await
        }
    });
    for r in join_all(pings).await {
        r?;
    }
    Ok(())
}

/// `<id> <ip:port@cport[,hostname]> <flags> …` per line: the masters, with those flagged
/// as failing only if `failing`.
fn parse_masters(nodes: &str, failing: bool) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let _id = f.next()?;
            let addr = f.next()?;
            let flags = f.next()?;
            let flags: Vec<&str> = flags.split(',').collect();
            if !flags.contains(&"master")
                || (!failing && flags.iter().any(|f| f.starts_with("fail")))
            {
                return None;
            }
            let hostport = addr.split(['@', ',']).next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        })
        .collect()
}

/// Where one command of a pipeline goes on a cluster.
#[derive(PartialEq, Eq, Hash)]
enum Dest {
    /// With the other commands of this slot, in one sub-pipeline.
    Slot(Slot),
    /// On its own, routed by the client.
    Alone,
}

/// The key a command is routed by, for the commands the store pipelines; `None` for those
/// that name no single key.
fn dest(cmd: &Cmd) -> Dest {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|a| match a {
            Arg::Simple(b) => Some(b),
            _ => None,
        })
        .collect();
    let Some(name) = args.first() else {
        return Dest::Alone;
    };
    let name = name.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"EVAL" | b"EVALSHA" | b"EVAL_RO" | b"EVALSHA_RO" => {
            let keys: usize = std::str::from_utf8(args.get(2).copied().unwrap_or(b"0"))
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if keys == 0 {
                None
            } else {
                args.get(3)
            }
        }
        // Several keys (the client splits them by slot), or none at all.
        b"MGET" | b"MSET" | b"DEL" | b"UNLINK" | b"EXISTS" | b"TOUCH" | b"PING" | b"SCRIPT"
        | b"SCAN" | b"CLUSTER" | b"INFO" | b"FLUSHDB" | b"FLUSHALL" | b"DBSIZE" | b"ECHO" => None,
        _ => args.get(1),
    };
    key.map_or(Dest::Alone, |k| Dest::Slot(Slot::for_key(k)))
}

/// One part of a split pipeline on its way: the positions of its commands in the pipeline,
/// and their answers.
type PartSend = BoxFuture<'static, (Vec<usize>, RedisResult<Vec<Value>>)>;

fn is_script_load(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter();
    matches!(
        (args.next(), args.next()),
        (Some(Arg::Simple(a)), Some(Arg::Simple(b)))
            if a.eq_ignore_ascii_case(b"SCRIPT") && b.eq_ignore_ascii_case(b"LOAD")
    )
}

/// One pipeline on a cluster, split as the module says; answers in the pipeline's order.
async fn cluster_pipeline(
    conn: &ClusterConnection,
    pipeline: &Pipeline,
    offset: usize,
    count: usize,
) -> RedisResult<Vec<Value>> {
    if pipeline.is_transaction() {
        // MULTI/EXEC must stay whole (its keys share one slot anyway).
        return conn
            .clone()
            .req_packed_commands(pipeline, offset, count)
            .await;
    }
    let mut out: Vec<Option<Value>> = vec![None; pipeline.len()];
    // A script loaded in the pipeline is loaded (on every master) before anything else is
    // sent: the commands after it may call it.
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        if is_script_load(cmd) {
            out[i] = Some(conn.clone().req_packed_command(cmd).await?);
        }
    }
    let mut groups: HashMap<Slot, (Pipeline, Vec<usize>)> = HashMap::new();
    let mut sends: Vec<PartSend> = Vec::new();
    for (i, cmd) in pipeline.cmd_iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        match dest(cmd) {
            Dest::Slot(slot) => {
                let (p, idx) = groups
                    .entry(slot)
                    .or_insert_with(|| (redis::pipe(), Vec::new()));
                p.add_command(cmd.clone());
                idx.push(i);
            }
            Dest::Alone => {
                let mut c = conn.clone();
                let cmd = cmd.clone();
                sends.push(
                    async move {
                        let r = c.req_packed_command(&cmd).await.map(|v| vec![v]);
                        (vec![i], r)
                    }
                    .boxed(),
                );
            }
        }
    }
    for (_, (p, idx)) in groups {
        let mut c = conn.clone();
        sends.push(
            async move {
                let n = idx.len();
                let r = c.req_packed_commands(&p, 0, n).await;
                (idx, r)
            }
            .boxed(),
        );
    }
    let mut first_err: Option<RedisError> = None;
    for (idx, r) in join_all(sends).await {
        match r {
            Ok(values) => {
                for (i, v) in idx.into_iter().zip(values) {
                    out[i] = Some(v);
                }
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(out
        .into_iter()
        .skip(offset)
        .take(count)
        .map(|v| v.unwrap_or(Value::Nil))
        .collect())
}

impl ConnectionLike for StoreConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            StoreConn::Single(c) => c.req_packed_command(cmd),
            StoreConn::Cluster(h) => h
                .run(|mut c| async move { c.req_packed_command(cmd).await })
                .boxed(),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            StoreConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            StoreConn::Cluster(h) => h
                .run(|c| async move { cluster_pipeline(&c, pipeline, offset, count).await })
                .boxed(),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            StoreConn::Single(c) => c.get_db(),
            StoreConn::Cluster(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_split_on_commas_and_ignore_blanks() {
        assert_eq!(seeds("redis://a:1"), vec!["redis://a:1"]);
        assert!(!is_cluster_url("redis://a:1"));
        assert!(is_cluster_url("redis://a:1,"), "one seed of a cluster");
        assert_eq!(seeds("redis://a:1,"), vec!["redis://a:1"]);
        assert_eq!(
            seeds(" redis://a:1 , redis://b:2,"),
            vec!["redis://a:1", "redis://b:2"]
        );
    }

    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002,host.example master - 0 0 2 connected 5461-10922
c3 127.0.0.1:7003@17003 master,fail - 0 0 3 connected 10923-16383
d4 127.0.0.1:7004@17004 slave a1 0 0 1 connected";
        assert_eq!(
            parse_masters(nodes, false),
            vec![("127.0.0.1".into(), 7001), ("127.0.0.1".into(), 7002)]
        );
        assert_eq!(parse_masters(nodes, true).len(), 3, "the failing one too");
    }

    #[test]
    fn commands_go_by_the_slot_of_their_key() {
        let mut set = redis::cmd("SET");
        set.arg("p:{z:1}:order:o_1").arg("x");
        let mut eval = redis::cmd("EVALSHA");
        eval.arg("abc")
            .arg(2)
            .arg("p:{z:1}:order:o_2")
            .arg("p:{z:1}:timers");
        assert!(dest(&set) == dest(&eval), "one hash tag, one slot");
        assert!(dest(&set) == Dest::Slot(Slot::for_key("z:1")));
        let mut mget = redis::cmd("MGET");
        mget.arg("a").arg("b");
        assert!(dest(&mget) == Dest::Alone);
        assert!(dest(&redis::cmd("PING")) == Dest::Alone);
    }
}
