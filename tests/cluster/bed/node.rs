//! `Node`: the real `dispatchd` binary as a child process, in a namespace of a `TestNet`
//! (or in the root namespace), that a test can SIGKILL, SIGSTOP and SIGCONT.

use super::cmd::signal;
use super::netns::TestNet;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The dispatcher token every node of a test accepts.
pub const DISPATCHER: &str = "cluster-test-dispatcher";
/// How much of a node's log is kept to explain a node that died at start.
const LOG_TAIL_LINES: usize = 40;

pub struct Node {
    child: Child,
    /// `http://<ip>:<port>`, as the node logged it.
    pub base: String,
}

impl Node {
    /// `dispatchd` in namespace `i` of `net`, listening on the namespace's address, with
    /// the memory store unless `env` says otherwise.
    pub fn in_netns(net: &TestNet, i: usize, env: &[(&str, &str)]) -> Node {
        let cmd = net.command(i, env!("CARGO_BIN_EXE_dispatchd"));
        Node::start(cmd, net.ns_ip(i), env)
    }

    /// `dispatchd` in the root namespace on `ip`.
    pub fn on_host(ip: Ipv4Addr, env: &[(&str, &str)]) -> Node {
        Node::start(Command::new(env!("CARGO_BIN_EXE_dispatchd")), ip, env)
    }

    fn start(mut cmd: Command, ip: Ipv4Addr, env: &[(&str, &str)]) -> Node {
        cmd.env("DISPATCH_STORE__BACKEND", "memory")
            .env("DISPATCH_DEMO__ENABLED", "false")
            .env("DISPATCH_SERVER__BIND", format!("{ip}:0"))
            .env("DISPATCH_INGEST__OSMAND_BIND", format!("{ip}:0"))
            .env("DISPATCH_AUTH__DISPATCHER_TOKEN", DISPATCHER)
            .env("RUST_LOG", "info,actix_server=warn")
            .env_remove("LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("dispatchd starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let kept = tail.clone();
        // Reads the log to its end (a full pipe would block the node), passing on the
        // bound address and anything that looks like trouble, and keeping the last lines
        // to show if the node dies before it listens.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(rest.trim().to_string());
                    }
                }
                if line.contains("panicked") || line.contains("ERROR") {
                    eprintln!("[dispatchd] {line}");
                }
                let mut kept = kept.lock().unwrap();
                if kept.len() == LOG_TAIL_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| {
                let _ = child.kill();
                let status = child.wait();
                // The reader has seen the end of the log once the process is gone.
                std::thread::sleep(Duration::from_millis(100));
                let log: Vec<String> = tail.lock().unwrap().iter().cloned().collect();
                panic!(
                    "dispatchd did not log its address ({e}; {status:?}); its last lines:\n{}",
                    log.join("\n")
                )
            });
        Node { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The process's pid: the `dispatchd` process itself, also in a namespace.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGSTOP: the process stays, its sockets stay open, it answers nothing.
    pub fn pause(&self) {
        signal(self.pid(), "STOP").expect("SIGSTOP");
    }

    /// SIGCONT after `pause`.
    pub fn resume(&self) {
        signal(self.pid(), "CONT").expect("SIGCONT");
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
