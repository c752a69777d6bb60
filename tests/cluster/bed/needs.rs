//! What the test bed needs from the machine (root, `ip`, redis, `nginx`) and what a test
//! does when it is missing: CI runs as root with everything installed and sets
//! `DISPATCH_REQUIRE_NETNS=1`, so there a missing piece fails the test; elsewhere (a
//! developer without root) the test says loudly that it skipped and passes.

use std::io::Write;
use std::process::{Command, Stdio};

/// Set (to `1`) where the bed must be available: a skip is then a failure.
pub const REQUIRE_ENV: &str = "DISPATCH_REQUIRE_NETNS";

fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Fails under `DISPATCH_REQUIRE_NETNS=1`; otherwise prints a skip notice that cannot be
/// missed in the test output. The caller returns (skips) after this.
#[track_caller]
pub fn skip(test: &str, why: &str) {
    assert!(
        !required(),
        "{test}: {why}, and {REQUIRE_ENV}=1 requires the multi-host test bed \
         (root, iproute2, redis, nginx)"
    );
    // Straight to the process's stderr: the test harness captures `eprintln!` of a
    // passing test, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n\
         ************************************************************************\n\
         SKIPPED {test}: {why}\n\
         (set {REQUIRE_ENV}=1 to make this a failure; CI does)\n\
         ************************************************************************\n"
    );
}

/// Whether this process runs as root (creating namespaces, veths and bridges needs
/// CAP_NET_ADMIN and CAP_SYS_ADMIN, which in practice means root).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .is_some_and(|effective| effective == "0")
    })
}

/// Whether `program` runs (found on PATH and executable).
pub fn has_program(program: &str, version_arg: &str) -> bool {
    Command::new(program)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Why network namespaces cannot be made here, if they cannot.
pub fn netns_missing() -> Option<String> {
    if !is_root() {
        return Some("not running as root (network namespaces need it)".into());
    }
    if !has_program("ip", "-V") {
        return Some("`ip` (iproute2) is not installed".into());
    }
    if !has_program("redis-server", "--version") || !has_program("redis-cli", "--version") {
        return Some("redis-server/redis-cli are not installed".into());
    }
    None
}
