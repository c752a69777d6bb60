//! The bed itself: a program in a namespace is the process the test holds, every namespace
//! reaches the Redis Cluster on the bridge (and follows its redirects) and the other
//! namespaces, and a partition cuts one namespace off, both ways, new and established
//! connections alike, until it heals.

use crate::bed::{signal, TestCluster, TestNet};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddrV4;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// How long a request into a cut-off namespace is given before it counts as unanswered.
const CUT_OFF: Duration = Duration::from_millis(1500);

/// Runs `cmd` and returns its output, or `None` (after killing it) if it has not finished
/// within `within`.
fn output_within(mut cmd: Command, within: Duration) -> Option<Output> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().unwrap())
}

/// `redis-cli` in namespace `i` against the Redis at `to`.
fn redis_cli(net: &TestNet, i: usize, to: SocketAddrV4, args: &[&str]) -> Command {
    let mut c = net.command(i, "redis-cli");
    c.args(["-h", &to.ip().to_string(), "-p", &to.port().to_string()])
        .args(args);
    c
}

/// Whether namespace `i` gets PONG from `to` within `within`.
fn pong_within(net: &TestNet, i: usize, to: SocketAddrV4, within: Duration) -> bool {
    output_within(redis_cli(net, i, to, &["ping"]), within)
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
}

/// Whether namespace `i` gets PONG within `CUT_OFF` (where no answer is expected).
fn pong(net: &TestNet, i: usize, to: SocketAddrV4) -> bool {
    pong_within(net, i, to, CUT_OFF)
}

/// Namespace `i` gets PONG (given time for a busy machine: this is where one is expected).
fn reaches(net: &TestNet, i: usize, to: SocketAddrV4) -> bool {
    pong_within(net, i, to, Duration::from_secs(5))
}

/// Polls until namespace `i` gets PONG from `to` (a healed link first resolves
/// addresses anew; a fresh server first binds).
fn wait_pong(net: &TestNet, i: usize, to: SocketAddrV4) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pong(net, i, to) {
        assert!(
            Instant::now() < deadline,
            "namespace {i} never reached {to}"
        );
    }
}

/// Master `k` of the cluster, at the bridge address.
fn master(net: &TestNet, cluster: &TestCluster, k: usize) -> SocketAddrV4 {
    SocketAddrV4::new(net.host_ip(), cluster.ports()[k])
}

#[test]
fn a_command_in_a_namespace_is_the_program_itself_and_takes_signals() {
    let Some(net) = TestNet::for_test("command_in_namespace", 1) else {
        return;
    };
    let mut child = net
        .command(0, "sleep")
        .arg("60")
        .spawn()
        .expect("sleep starts");
    let pid = child.id();
    // `ip netns exec` has execed the program by the time it runs in the namespace; wait
    // for that (the pid's executable changes from ip to sleep).
    let deadline = Instant::now() + Duration::from_secs(5);
    let exe = loop {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        if exe.file_name().is_some_and(|n| n == "sleep") {
            break exe;
        }
        assert!(Instant::now() < deadline, "pid {pid} is still {exe:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(exe.ends_with("sleep"), "{exe:?}");
    // Its network namespace is the bed's, not ours.
    let ns_ino = std::fs::metadata(format!("/run/netns/{}", net.netns(0)))
        .unwrap()
        .ino();
    let own = std::fs::read_link("/proc/self/ns/net").unwrap();
    let its = std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(its.to_str().unwrap(), format!("net:[{ns_ino}]"));
    assert_ne!(its, own);
    // SIGSTOP stops the program itself (state T, once the signal is delivered), SIGKILL
    // ends it.
    signal(pid, "STOP").unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat.rsplit(") ").next().unwrap().chars().next().unwrap();
        if state == 'T' {
            break;
        }
        assert!(Instant::now() < deadline, "not stopped: {stat}");
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(pid, "KILL").unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(9));
}

#[test]
fn every_namespace_reaches_the_cluster_and_follows_its_redirects() {
    let Some(net) = TestNet::for_test("namespaces_reach_cluster", 2) else {
        return;
    };
    let cluster = TestCluster::start(net.host_ip(), 3);
    let host = net.host_ip().to_string();
    assert_eq!(
        cluster.seeds(),
        cluster
            .ports()
            .iter()
            .map(|p| format!("redis://{host}:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for i in 0..net.len() {
        for k in 0..cluster.ports().len() {
            let to = master(&net, &cluster, k);
            assert!(reaches(&net, i, to), "namespace {i} → {to}");
        }
    }
    // The cluster announces the bridge address, the one the namespaces can reach.
    let slots = redis_cli(&net, 0, master(&net, &cluster, 0), &["cluster", "slots"])
        .output()
        .unwrap();
    let slots = String::from_utf8_lossy(&slots.stdout);
    let addrs: Vec<&str> = slots
        .lines()
        .filter(|l| l.parse::<std::net::Ipv4Addr>().is_ok())
        .collect();
    assert_eq!(addrs.len(), 3, "{slots}");
    assert!(addrs.iter().all(|a| *a == host), "{slots}");
    // Keys of many slots written through one master and read through another: every
    // MOVED is followed from inside the namespaces.
    let (first, second) = (master(&net, &cluster, 0), master(&net, &cluster, 1));
    for k in 0..12 {
        let key = format!("bed-key-{k}");
        let set = redis_cli(&net, 0, first, &["-c", "set", &key, &k.to_string()])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&set.stdout).trim(), "OK");
        let get = redis_cli(&net, 1, second, &["-c", "get", &key])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), k.to_string());
    }
}

#[test]
fn a_partition_cuts_one_namespace_off_until_it_heals() {
    let Some(net) = TestNet::for_test("partition_and_heal", 3) else {
        return;
    };
    let cluster = TestCluster::start(net.host_ip(), 3);
    let on_host = master(&net, &cluster, 1);
    // A Redis inside namespace 0 too (namespaces reach each other over the bridge);
    // the bed kills it with the namespace if the test fails first.
    let in_ns0 = SocketAddrV4::new(net.ns_ip(0), 6390);
    let mut server = net
        .command(0, "redis-server")
        .args(["--bind", &in_ns0.ip().to_string(), "--port", "6390"])
        .args(["--save", "", "--appendonly", "no", "--dir", "/tmp"])
        // Without a password Redis answers only loopback clients unless told otherwise.
        .args(["--protected-mode", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server starts");
    wait_pong(&net, 1, in_ns0);
    assert!(reaches(&net, 0, on_host));

    net.partition(0);
    assert!(
        !pong(&net, 0, on_host),
        "a cut-off namespace reaches the host"
    );
    assert!(!pong(&net, 1, in_ns0), "a cut-off namespace is reached");
    for i in 1..net.len() {
        assert!(reaches(&net, i, on_host), "namespace {i} lost the host too");
    }

    net.heal(0);
    wait_pong(&net, 0, on_host);
    wait_pong(&net, 2, in_ns0);
    let _ = server.kill();
    let _ = server.wait();
}

#[test]
fn an_established_connection_carries_nothing_while_partitioned() {
    let Some(net) = TestNet::for_test("established_connection_partition", 2) else {
        return;
    };
    let cluster = TestCluster::start(net.host_ip(), 3);
    let to = master(&net, &cluster, 0);
    // One redis-cli session (one TCP connection) held open from inside namespace 1.
    let mut cli = redis_cli(&net, 1, to, &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut to_cli = cli.stdin.take().unwrap();
    let from_cli = BufReader::new(cli.stdout.take().unwrap());
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in from_cli.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut send = |cmd: &str| writeln!(to_cli, "{cmd}").unwrap();
    send("CLIENT ID");
    let id = lines.recv_timeout(Duration::from_secs(5)).expect("an id");

    net.partition(1);
    send("ECHO during-the-partition");
    assert_eq!(
        lines.recv_timeout(CUT_OFF),
        Err(RecvTimeoutError::Timeout),
        "an answer crossed the partition"
    );
    assert!(reaches(&net, 0, to), "the other namespace is cut off too");

    net.heal(1);
    // TCP retransmits the request; the same connection (same client id) answers it.
    let answer = lines.recv_timeout(Duration::from_secs(15));
    assert_eq!(answer.as_deref(), Ok("during-the-partition"));
    send("CLIENT ID");
    assert_eq!(lines.recv_timeout(Duration::from_secs(5)), Ok(id));
    drop(to_cli);
    let _ = cli.kill();
    let _ = cli.wait();
}
