//! Removes what earlier runs left behind: a test process killed with SIGKILL (or a
//! crashed run) never ran its `Drop`, so its namespaces, bridge and veths are still there.
//! Anything of the bed's whose owner pid is no longer alive is removed, along with the
//! processes still running inside those namespaces.

use super::cmd::{ip, signal};
use super::names::owner;
use std::path::Path;

fn dead(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills every process inside namespace `ns`, then deletes it.
pub fn remove_netns(ns: &str) {
    if let Ok(pids) = ip(&["netns", "pids", ns]) {
        for pid in pids.split_whitespace().filter_map(|p| p.parse().ok()) {
            let _ = signal(pid, "KILL");
        }
    }
    let _ = ip(&["netns", "del", ns]);
}

/// Sweeps the leftovers of dead test processes.
pub fn sweep_dead_runs() {
    if let Ok(list) = ip(&["netns", "list"]) {
        // Lines are `<name>` or `<name> (id: N)`.
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if owner(ns).is_some_and(dead) {
                remove_netns(ns);
            }
        }
    }
    if let Ok(links) = ip(&["-o", "link", "show"]) {
        // Lines are `<index>: <name>[@<peer>]: <flags> …`.
        for name in links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n))
        {
            if owner(name).is_some_and(dead) {
                let _ = ip(&["link", "del", name]);
            }
        }
    }
}
