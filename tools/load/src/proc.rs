//! The server process as /proc sees it (RSS, CPU time), and this process's own file limit.
//! Linux only; read on the server's machine.

/// Resident set size of `pid` in KiB (VmRSS), 0 when it cannot be read.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time of `pid` so far (utime + stime, fields 14 and 15 of /proc/<pid>/stat), in
/// clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    // rest starts at field 3 (state); utime is field 14, i.e. the 12th of rest.
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux almost everywhere).
pub fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Server CPU between two samples, in cores (1.0 = one core busy all the time).
pub fn cores(ticks_before: Option<u64>, ticks_after: Option<u64>, wall_s: f64) -> f64 {
    match (ticks_before, ticks_after) {
        (Some(a), Some(b)) if wall_s > 0.0 => b.saturating_sub(a) as f64 / clk_tck() / wall_s,
        _ => f64::NAN,
    }
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns (before, after).
// rlim_t is u64 on Linux but not on every target.
#[allow(clippy::unnecessary_cast)]
pub fn raise_nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return (0, 0);
        }
        let before = lim.rlim_cur as u64;
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return (before, before);
            }
        }
        (before, lim.rlim_cur as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id();
        assert!(rss_kib(me) > 0);
        assert!(cpu_ticks(me).is_some());
        assert!(clk_tck() > 0.0);
        let (before, after) = raise_nofile();
        assert!(after >= before);
    }
}
