//! Running the machine's tools (`ip`, `kill`, `redis-cli`) and reading their answer.

use std::process::{Command, Stdio};

/// Runs `program args…` to completion: its stdout, or a message with its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `ip args…`.
pub fn ip(args: &[&str]) -> Result<String, String> {
    run("ip", args)
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`, …) to `pid`.
pub fn signal(pid: u32, signal: &str) -> Result<(), String> {
    run("kill", &[&format!("-{signal}"), &pid.to_string()]).map(|_| ())
}
