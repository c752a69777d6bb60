//! The names of the bed's namespaces, bridge and veths. Each carries the pid of the test
//! process that made it (so a later run can tell a dead run's leftovers from a live run's)
//! and a per-process sequence number (tests of one binary run in parallel threads).
//! Interface names are at most 15 characters: the pid and sequence are written in base 36.

/// Every link name of the bed starts with this, then a kind letter (`b` bridge, `h` the
/// host end of a veth), then the owner tag.
pub const LINK_PREFIX: &str = "dn";
/// Every namespace name of the bed starts with this, then the owner tag.
pub const NETNS_PREFIX: &str = "dispatchd-test-";

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// The names of one `TestNet`, owned by process `pid`.
#[derive(Clone, Debug)]
pub struct Names {
    tag: String,
    pid: u32,
    seq: u64,
}

impl Names {
    pub fn new(pid: u32, seq: u64) -> Names {
        Names {
            tag: format!("{}-{}", base36(pid as u64), base36(seq)),
            pid,
            seq,
        }
    }

    /// A number that differs between processes and between beds of one process (where a
    /// bed starts looking for a free subnet).
    pub fn hash(&self) -> u64 {
        self.pid as u64 * 31 + self.seq * 7
    }

    pub fn bridge(&self) -> String {
        format!("{LINK_PREFIX}b{}", self.tag)
    }

    /// The root-namespace end of namespace `i`'s veth (the end `partition` takes down).
    pub fn host_veth(&self, i: usize) -> String {
        format!("{LINK_PREFIX}h{}-{i}", self.tag)
    }

    pub fn netns(&self, i: usize) -> String {
        format!("{NETNS_PREFIX}{}-{i}", self.tag)
    }
}

/// The pid that made a link or namespace of the bed, from its name; `None` for names the
/// bed did not make.
pub fn owner(name: &str) -> Option<u32> {
    let tag = if let Some(rest) = name.strip_prefix(NETNS_PREFIX) {
        rest
    } else {
        let rest = name.strip_prefix(LINK_PREFIX)?;
        rest.strip_prefix('b').or_else(|| rest.strip_prefix('h'))?
    };
    // The tag is `<pid>-<seq>[-<i>]`; a name without the dash is someone else's.
    let (pid36, rest) = tag.split_once('-')?;
    if rest.is_empty() {
        return None;
    }
    u32::from_str_radix(pid36, 36).ok()
}

#[test]
fn link_names_fit_the_kernel_limit_and_name_their_owner() {
    // The largest pid Linux hands out (pid_max is at most 2^22) and a high sequence.
    let n = Names::new(4_194_304, 1295);
    for name in [n.bridge(), n.host_veth(15)] {
        assert!(name.len() <= 15, "{name} is {} characters", name.len());
        assert_eq!(owner(&name), Some(4_194_304), "{name}");
    }
    assert_eq!(owner(&n.netns(2)), Some(4_194_304));
    assert_eq!(owner("eth0"), None);
    assert_eq!(owner("dnx12-1"), None);
    assert_eq!(owner("docker0"), None);
    assert_eq!(owner("dnbr0"), None);
}
