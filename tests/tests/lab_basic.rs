//! Integration tests of the network lab itself: connectivity, routing over
//! the right link, and cleanup. They need root; see `Lab::new_or_skip`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, ensure};
use linkmeter_tests::lab::{DelaySpec, Lab, VethSpec, cleanup_stale, list_netns};

const PING_GAP: Duration = Duration::from_millis(20);

#[test]
fn ping_over_plain_veth() -> Result<()> {
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let (a, b) = (lab.add_node("a")?, lab.add_node("b")?);
    let link = lab.link(&a, &b, VethSpec::plain())?;
    ensure!(link.relay_pid.is_none());
    let stats = lab.ping(&a, b.addr(), 5, PING_GAP)?;
    println!("veth a->b: {stats:?}");
    ensure!(
        stats.received == 5,
        "lost pings over a plain veth: {stats:?}"
    );
    // And back, from the other side.
    let back = lab.ping(&b, a.addr(), 3, PING_GAP)?;
    ensure!(back.received == 3, "b -> a: {back:?}");
    Ok(())
}

#[test]
fn node_addresses_route_over_their_own_link() -> Result<()> {
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let (a, b, c) = (lab.add_node("a")?, lab.add_node("b")?, lab.add_node("c")?);
    lab.link(&a, &b, VethSpec::plain())?;
    lab.link(&a, &c, DelaySpec::new(Duration::from_millis(5)))?;

    let to_b = lab.ping(&a, b.addr(), 10, PING_GAP)?;
    let to_c = lab.ping(&a, c.addr(), 10, PING_GAP)?;
    let (rtt_b, rtt_c) = (to_b.median_ms(), to_c.median_ms());
    println!("a->b (veth) median {rtt_b:?} ms, a->c (5 ms delay) median {rtt_c:?} ms");
    ensure!(
        to_b.received == 10 && to_c.received == 10,
        "{to_b:?} {to_c:?}"
    );
    let (rtt_b, rtt_c) = (rtt_b.unwrap_or(f64::NAN), rtt_c.unwrap_or(f64::NAN));
    // Routing, not timing: c's echoes cross the 5 ms relay (a relay never releases
    // early, so at least 10 ms less ping's 0.1 ms print step), b's do not (a veth is
    // sub-millisecond: a tenth of c's RTT is a bound no load reaches).
    ensure!(
        rtt_c >= 9.95,
        "a->c should take 2 x 5 ms through the relay, median {rtt_c} ms"
    );
    ensure!(
        rtt_b < rtt_c / 10.0,
        "a->b should be a fast veth, median {rtt_b} ms (a->c {rtt_c} ms)"
    );
    // b and c have no link, so no route either.
    let stray = lab.ping(&b, c.addr(), 1, PING_GAP);
    ensure!(
        stray.map_or(true, |s| s.received == 0),
        "b reached c without a link"
    );
    Ok(())
}

#[test]
fn drop_removes_namespaces_and_relays() -> Result<()> {
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let (a, b) = (lab.add_node("a")?, lab.add_node("b")?);
    lab.link(&a, &b, DelaySpec::new(Duration::from_millis(1)))?;
    let sleeper = lab.spawn(lab.command(&a, "sleep").arg("600"))?;
    let (names, relays, sleeper_pid) = (lab.netns_names(), lab.relay_pids(), sleeper.pid());
    ensure!(relays.len() == 1, "one relay expected: {relays:?}");
    ensure!(Path::new(&format!("/proc/{}", relays[0])).exists());
    // The lab, not the guard, must stop the child: forget the guard.
    std::mem::forget(sleeper);
    drop(lab);

    let left = list_netns()?;
    for name in &names {
        ensure!(!left.contains(name), "namespace {name} survived the lab");
    }
    for pid in relays.iter().chain([&sleeper_pid]) {
        ensure!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} survived the lab"
        );
    }
    Ok(())
}

#[test]
fn child_guard_stops_its_process() -> Result<()> {
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let a = lab.add_node("a")?;
    let guard = lab.spawn(lab.command(&a, "sleep").arg("600"))?;
    let pid = guard.pid();
    ensure!(guard.try_wait()?.is_none(), "sleep ended early");
    drop(guard);
    ensure!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "sleep {pid} survived its guard"
    );
    Ok(())
}

#[test]
fn sweep_removes_namespaces_of_dead_runs() -> Result<()> {
    let Some(_lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    // A pid that certainly belonged to a process that is gone now.
    let mut child = Command::new("true").spawn()?;
    child.wait()?;
    let stale = format!("lm{}x0-ghost", child.id());
    let run = |args: &[&str]| Command::new("ip").args(args).status();
    ensure!(
        run(&["netns", "add", &stale])?.success(),
        "creating {stale}"
    );
    let deleted = cleanup_stale()?;
    let left = list_netns()?;
    if left.contains(&stale) {
        let _ = run(&["netns", "delete", &stale]);
    }
    // A test process running in parallel may have swept it first, so check
    // that it is gone rather than who removed it.
    ensure!(!left.contains(&stale), "{stale} not swept: {deleted:?}");
    // Namespaces of this (live) process stay.
    let own = Lab::new()?;
    let node = own.add_node("x")?;
    cleanup_stale()?;
    ensure!(
        list_netns()?.contains(&node.netns().to_owned()),
        "live lab was swept"
    );
    Ok(())
}
