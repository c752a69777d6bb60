//! `TestNet`: several hosts on one machine. A Linux bridge in the root namespace with an
//! address on a /24 of 10.231.0.0/16 (the host: where Redis Cluster and nginx listen), and
//! N network namespaces, each joined to the bridge by a veth pair and given an address on
//! that /24 (a node: where a `dispatchd` runs). `partition(i)` cuts namespace i off in
//! both directions; `Drop` removes everything, also after a panic.

use super::cmd::ip;
use super::names::Names;
use super::needs::{netns_missing, skip};
use super::sweep::{remove_netns, sweep_dead_runs};
use std::fs::File;
use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(0);

/// Where the bed's /24s are cut from: 10.231.<subnet>.0/24.
const NET16: [u8; 2] = [10, 231];
/// The host's address on the bridge is .1; namespace i is .(FIRST_NODE + i).
const FIRST_NODE: u8 = 10;
/// Most namespaces one bed holds (its addresses must fit the /24).
const MAX_NODES: usize = 200;

pub struct TestNet {
    names: Names,
    subnet: u8,
    /// How many namespaces exist so far (a failed setup removes only what it made).
    made: usize,
    bridge_made: bool,
}

impl TestNet {
    /// A bed of `nodes` namespaces for `test`, or `None` (after a loud notice) where this
    /// machine cannot make one and `DISPATCH_REQUIRE_NETNS` is not set.
    #[track_caller]
    pub fn for_test(test: &str, nodes: usize) -> Option<TestNet> {
        if let Some(why) = netns_missing() {
            skip(test, &why);
            return None;
        }
        match TestNet::new(nodes) {
            Ok(net) => Some(net),
            Err(e) => {
                skip(test, &format!("cannot set up network namespaces: {e}"));
                None
            }
        }
    }

    /// Makes the bridge and `nodes` namespaces (root only).
    pub fn new(nodes: usize) -> Result<TestNet, String> {
        assert!(nodes <= MAX_NODES, "at most {MAX_NODES} namespaces");
        let names = Names::new(std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        // One process at a time picks a free /24 and claims it by giving the bridge its
        // address; the sweep runs under the same lock so it never races a live setup.
        let lock = File::create(std::env::temp_dir().join("dispatchd-testnet.lock"))
            .map_err(|e| format!("lock file: {e}"))?;
        lock.lock().map_err(|e| format!("lock: {e}"))?;
        sweep_dead_runs();
        let subnet = free_subnet(&names)?;
        let mut net = TestNet {
            names,
            subnet,
            made: 0,
            bridge_made: false,
        };
        let bridge = net.names.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        net.bridge_made = true;
        // Traffic between namespaces crosses the bridge; where br_netfilter is loaded it
        // would also cross the host's iptables FORWARD chain (which Docker sets to DROP).
        // The bed is a plain switch: keep the host's firewall out of it.
        ip(&[
            "link",
            "set",
            &bridge,
            "type",
            "bridge",
            "nf_call_iptables",
            "0",
            "nf_call_ip6tables",
            "0",
            "nf_call_arptables",
            "0",
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", net.host_ip()),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        drop(lock);
        for i in 0..nodes {
            net.add_node(i)?;
        }
        Ok(net)
    }

    fn add_node(&mut self, i: usize) -> Result<(), String> {
        let ns = self.names.netns(i);
        let veth = self.names.host_veth(i);
        ip(&["netns", "add", &ns])?;
        self.made = i + 1;
        // The namespace's end is made inside it, so it can be called eth0 there.
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["link", "set", &veth, "master", &self.names.bridge()])?;
        ip(&["link", "set", &veth, "up"])?;
        let addr = format!("{}/24", self.ns_ip(i));
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(())
    }

    /// How many namespaces the bed has.
    pub fn len(&self) -> usize {
        self.made
    }

    /// The root namespace's address on the bridge: every namespace reaches the host here.
    pub fn host_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(NET16[0], NET16[1], self.subnet, 1)
    }

    /// Namespace `i`'s address.
    pub fn ns_ip(&self, i: usize) -> Ipv4Addr {
        Ipv4Addr::new(NET16[0], NET16[1], self.subnet, FIRST_NODE + i as u8)
    }

    /// Namespace `i`'s name (for `ip netns exec`).
    pub fn netns(&self, i: usize) -> String {
        assert!(i < self.made, "no namespace {i}");
        self.names.netns(i)
    }

    /// A command that runs `program` inside namespace `i`. `ip netns exec` enters the
    /// namespace and then execs the program, so the child's pid is the program's own:
    /// SIGKILL and SIGSTOP reach it, not a wrapper.
    pub fn command(&self, i: usize, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns(i), program]);
        c
    }

    /// Cuts namespace `i` off the network, both ways, at once: its veth's host end goes
    /// down, so the bridge stops forwarding to it and whatever it sends is dropped.
    /// Established TCP connections stay open but carry nothing (no reset, no FIN), as in a
    /// real partition; after `heal` their retransmissions get through again.
    pub fn partition(&self, i: usize) {
        assert!(i < self.made, "no namespace {i}");
        ip(&["link", "set", &self.names.host_veth(i), "down"]).expect("veth down");
    }

    /// Joins namespace `i` to the network again.
    pub fn heal(&self, i: usize) {
        assert!(i < self.made, "no namespace {i}");
        ip(&["link", "set", &self.names.host_veth(i), "up"]).expect("veth up");
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for i in 0..self.made {
            // The processes still inside (a dispatchd whose guard leaked, a redis-cli)
            // are killed first: a namespace lives on while anything runs in it.
            remove_netns(&self.names.netns(i));
            // Deleting the namespace takes its veth pair with it; this is in case
            // something still held it.
            let _ = ip(&["link", "del", &self.names.host_veth(i)]);
        }
        if self.bridge_made {
            let _ = ip(&["link", "del", &self.names.bridge()]);
        }
    }
}

/// A /24 of 10.231.0.0/16 that no interface on this machine has an address in, starting
/// from one that depends on the pid and sequence (so parallel runs rarely even look at the
/// same one).
fn free_subnet(names: &Names) -> Result<u8, String> {
    let addrs = ip(&["-o", "-4", "addr", "show"])?;
    let used = |s: u8| addrs.contains(&format!("inet {}.{}.{s}.", NET16[0], NET16[1]));
    let start = names.hash() % 254;
    (0..254u64)
        .map(|k| ((start + k) % 254 + 1) as u8)
        .find(|&s| !used(s))
        .ok_or_else(|| "every /24 of 10.231.0.0/16 is in use".into())
}
