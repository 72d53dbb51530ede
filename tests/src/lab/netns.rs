//! Running `ip`/`tc`, and creating and deleting network namespaces.

use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

/// Serialises `ip netns add` within this process: the first call ever on a
/// machine turns /run/netns into a shared mount, and two racing first calls
/// can stack bind mounts there.
static NETNS_ADD: Mutex<()> = Mutex::new(());

/// Runs `program args...` to completion and returns its stdout; a non-zero
/// exit becomes an error quoting the command line and its stderr.
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot start `{program}` (is it installed?)"))?;
    if !output.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `ip -n <netns> args...`.
pub(crate) fn ip_in(netns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-n", netns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// `tc -n <netns> args...`.
pub(crate) fn tc_in(netns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-n", netns];
    full.extend_from_slice(args);
    run("tc", &full)
}

/// Creates namespace `name`. Permission errors get a hint, because they mean
/// the tests are running without root rather than that the lab is broken.
pub(crate) fn add(name: &str) -> Result<()> {
    let _serial = NETNS_ADD.lock().unwrap_or_else(|e| e.into_inner());
    run("ip", &["netns", "add", name]).map(drop).map_err(|e| {
        let text = format!("{e:#}");
        if text.contains("Operation not permitted") || text.contains("Permission denied") {
            e.context(super::NEED_ROOT)
        } else {
            e
        }
    })
}

/// Deletes namespace `name`; the kernel removes the veth pairs and TUN
/// devices inside it.
pub(crate) fn delete(name: &str) -> Result<()> {
    run("ip", &["netns", "delete", name]).map(drop)
}

/// Names of all namespaces on the machine (`ip netns list` prints
/// `name (id: N)` or just `name`).
pub fn list() -> Result<Vec<String>> {
    Ok(run("ip", &["netns", "list"])?
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}
