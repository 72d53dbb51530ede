//! Lab naming and the sweep of namespaces left behind by dead test runs.
//!
//! Namespaces are named `lm<pid>x<n>-<node>`: the pid of the test process
//! that owns the lab and a per-process counter. Two labs can therefore never
//! collide, whether they live in the same process or in different ones, and
//! a later run can tell whether a namespace's owner is still alive.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Result;

use super::netns;

/// Prefix of every namespace the lab creates.
pub(crate) const PREFIX: &str = "lm";

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// A fresh lab id, unique on this machine while this process lives.
pub(crate) fn new_lab_id() -> String {
    format!(
        "{}x{}",
        std::process::id(),
        NEXT_LAB.fetch_add(1, Ordering::Relaxed)
    )
}

/// Name of a lab device in the root namespace: `lm<lab>-<kind><index>`, which
/// [`owner_pid`] parses like a namespace name, so [`cleanup_stale`] finds it too.
pub(crate) fn host_device_name(lab_id: &str, kind: &str, index: usize) -> Result<String> {
    let name = format!("{PREFIX}{lab_id}-{kind}{index}");
    anyhow::ensure!(
        name.len() < 16,
        "device name {name} is longer than the kernel's 15 bytes"
    );
    Ok(name)
}

/// Namespace name of `node` in lab `lab_id`.
pub(crate) fn netns_name(lab_id: &str, node: &str) -> String {
    format!("{PREFIX}{lab_id}-{node}")
}

/// The owning pid encoded in a lab namespace name, or `None` when the name
/// does not follow the lab's pattern (it belongs to someone else then).
pub(crate) fn owner_pid(netns: &str) -> Option<u32> {
    let rest = netns.strip_prefix(PREFIX)?;
    let (pid, rest) = rest.split_once('x')?;
    let (counter, node) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(counter) || node.is_empty() {
        return None;
    }
    pid.parse().ok()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Deletes every lab namespace (`lm<pid>x<n>-<node>`), and every lab device in
/// the root namespace (`lm<pid>x<n>-<kind><i>`), whose owning process no longer
/// exists, e.g. because a test run was killed before its `Lab`
/// was dropped. Relays of such runs have already exited (their stdin
/// closed), and deleting a namespace removes the devices inside it.
/// Returns the names it deleted.
pub fn cleanup_stale() -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for name in netns::list()? {
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        // Another process may be sweeping at the same moment; losing that
        // race is fine, so only report what this call removed.
        if netns::delete(&name).is_ok() {
            deleted.push(name);
        }
    }
    // Devices of Lab::host_address / link_to_host in the root namespace. `ip -o
    // link` prints `N: name[@peer]: <...`.
    let links = netns::run("ip", &["-o", "link", "show"])?;
    for line in links.lines() {
        let Some(name) = line
            .split(':')
            .nth(1)
            .map(|n| n.trim().split('@').next().unwrap_or_default().to_owned())
        else {
            continue;
        };
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if !pid_alive(pid) && netns::run("ip", &["link", "delete", &name]).is_ok() {
            deleted.push(name);
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_to_the_owner_pid() {
        let name = netns_name("1234x7", "node-a");
        assert_eq!(name, "lm1234x7-node-a");
        assert_eq!(owner_pid(&name), Some(1234));
    }

    #[test]
    fn foreign_names_have_no_owner() {
        for name in [
            "lm", "lmfoo", "lm12x-a", "lmx3-a", "lm12x3-", "lm12y3-a", "other",
        ] {
            assert_eq!(owner_pid(name), None, "{name}");
        }
    }
}
