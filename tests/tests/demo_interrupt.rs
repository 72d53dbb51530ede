//! Ctrl-C stops everything the demo started: `linkmeter-demo`, interrupted in its
//! process group (as a terminal's Ctrl-C does) while the API server starts and again
//! while the agents measure, exits 130 and leaves no namespace and no process behind.
//!
//! The full demo with its checks runs in `scripts/test.sh` (`scripts/demo.sh --check`);
//! this test needs only the debug binaries `cargo build --workspace --bins` makes.
//! Fails when the lab or the API server cannot start, unless `LINKMETER_SKIP_LAB=1` or
//! `LINKMETER_SKIP_KUBE=1`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use linkmeter_tests::bins;
use linkmeter_tests::lab::list_netns;

/// Programs the demo starts.
const PROGRAMS: [&str; 7] = [
    "linkmeter-agent",
    "linkmeter-aggregator",
    "lab-relay",
    "kube-apiserver",
    "kube-scheduler",
    "/usr/bin/etcd",
    "prometheus",
];

/// Network namespaces, and pids of processes running one of [`PROGRAMS`].
fn snapshot() -> Result<(BTreeSet<String>, BTreeSet<u32>)> {
    let netns = list_netns()?.into_iter().collect();
    let mut pids = BTreeSet::new();
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let first = String::from_utf8_lossy(first);
        if PROGRAMS.iter().any(|p| first.ends_with(p)) {
            pids.insert(pid);
        }
    }
    Ok((netns, pids))
}

/// Starts the demo in a process group of its own, waits for a line containing `at` and
/// then `delay`, interrupts the group and checks the exit and what is left.
fn interrupt_at(at: &str, delay: Duration) -> Result<()> {
    let before = snapshot()?;
    let out_dir = tempfile::tempdir()?;
    let mut child = Command::new(bins::workspace_bin("linkmeter-demo"))
        .args(["--no-reference", "--out"])
        .arg(out_dir.path())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting linkmeter-demo")?;
    let pid = i32::try_from(child.id())?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let end = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(at);
                seen.push(line);
                if hit {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                bail!(
                    "no line with {at:?} within 120 s; output:\n{}",
                    seen.join("\n")
                );
            }
        }
    }
    std::thread::sleep(delay);
    // SAFETY: kill(2) on the process group we created for the child.
    let rc = unsafe { libc::kill(-pid, libc::SIGINT) };
    ensure!(rc == 0, "kill: {}", std::io::Error::last_os_error());
    let interrupted = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if interrupted.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            bail!("the demo did not exit within 30 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = interrupted.elapsed();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    ensure!(
        status.code() == Some(130),
        "interrupted at {at:?}: exit {status}, want 130; stderr:\n{stderr}"
    );
    // Children killed by the group's SIGINT may take a moment to be reaped.
    let mut after = snapshot()?;
    let settle = Instant::now();
    while (!after.0.is_subset(&before.0) || !after.1.is_subset(&before.1))
        && settle.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(200));
        after = snapshot()?;
    }
    let netns: Vec<_> = after.0.difference(&before.0).collect();
    let pids: Vec<_> = after.1.difference(&before.1).collect();
    println!(
        "interrupted at {at:?}: exit 130 after {took:?}; left: namespaces {netns:?}, processes {pids:?}"
    );
    ensure!(
        netns.is_empty() && pids.is_empty(),
        "left behind after Ctrl-C at {at:?}: namespaces {netns:?}, processes {pids:?} ({})",
        pids.iter()
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " "))
            .collect::<Vec<_>>()
            .join("; ")
    );
    Ok(())
}

#[test]
fn ctrl_c_stops_everything_the_demo_started() -> Result<()> {
    if linkmeter_tests::lab::skip_requested()
        || std::env::var(linkmeter_tests::kube_env::SKIP_ENV).is_ok_and(|v| v == "1")
    {
        println!("SKIPPED: the demo needs the lab and the Kubernetes environment");
        return Ok(());
    }
    // Built once (and cached) before the clock of any step starts.
    linkmeter_tests::kube_env::install()?;
    // While kube-apiserver starts: the step after the lab's line makes keys (about a
    // second), then starts etcd and kube-apiserver and waits seconds for it to be ready.
    // Without the signal traps in kube-env.sh this leaves both running.
    interrupt_at("lab: 3 nodes", Duration::from_millis(1500))?;
    // While the agents measure.
    interrupt_at("published: RTT", Duration::ZERO)?;
    Ok(())
}
