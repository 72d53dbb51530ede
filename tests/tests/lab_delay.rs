//! Delay links through `lab-relay`, checked as every delay test must be: against ping
//! over a plain veth in the same run (the path without the relay), and against the
//! configured delay only within [`RELAY_SLACK`], a bound measured on a loaded 2-core
//! machine. They need root; see `Lab::new_or_skip`. One at a time: they measure timing.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Result, ensure};
use linkmeter_tests::lab::{
    BusyCore, DelaySpec, Lab, Node, RELAY_SLACK, VethSpec, interleave, median,
};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// A lab with `a` joined to `b` by a plain veth and to `c` by `relay`.
fn veth_and_relay(lab: &Lab, relay: DelaySpec) -> Result<(Node, Node, Node)> {
    let (a, b, c) = (lab.add_node("a")?, lab.add_node("b")?, lab.add_node("c")?);
    lab.link(&a, &b, VethSpec::plain())?;
    lab.link(&a, &c, relay)?;
    // Neighbour resolution on both paths, so no round pays for it.
    lab.ping(&a, b.addr(), 2, Duration::from_millis(10))?;
    lab.ping(&a, c.addr(), 2, Duration::from_millis(10))?;
    Ok((a, b, c))
}

/// Ping medians (µs) from `a` to `b` (veth) and to `c` (relay), `rounds` interleaved
/// runs of `count` echoes each; returns the median of each path's run medians.
fn veth_vs_relay(
    lab: &Lab,
    (a, b, c): &(Node, Node, Node),
    rounds: usize,
    count: u32,
    gap: Duration,
) -> Result<(f64, f64)> {
    let mut veth = || lab.ping_median_us(a, b.addr(), count, gap);
    let mut relay = || lab.ping_median_us(a, c.addr(), count, gap);
    let runs = interleave(rounds, &mut [&mut veth, &mut relay])?;
    let (v, r) = (median(&runs[0]), median(&runs[1]));
    println!("  veth runs {:?} µs, relay runs {:?} µs", runs[0], runs[1]);
    Ok((v.unwrap_or(f64::NAN), r.unwrap_or(f64::NAN)))
}

/// The relay is every delay test's clock: what it adds to a round trip (ping through
/// a 0 ms relay against ping over a plain veth, interleaved), idle and with one core
/// kept busy. Prints both figures.
#[test]
fn relay_adds_little_latency() -> Result<()> {
    let _g = serial();
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let nodes = veth_and_relay(&lab, DelaySpec::new(Duration::ZERO))?;
    let gap = Duration::from_millis(10);
    let (veth, relay) = veth_vs_relay(&lab, &nodes, 3, 50, gap)?;
    let idle = relay - veth;
    let (veth_l, relay_l) = {
        let _busy = BusyCore::start();
        veth_vs_relay(&lab, &nodes, 3, 50, gap)?
    };
    let loaded = relay_l - veth_l;
    println!(
        "relay added latency per round trip: idle {idle:.0} µs (veth {veth:.0}, relay {relay:.0}); \
         one more core busy {loaded:.0} µs (veth {veth_l:.0}, relay {relay_l:.0})"
    );
    // ping prints 1 µs steps below 1 ms; the relay path is never faster than the veth
    // by more than noise.
    ensure!(idle > -10.0 && loaded > -10.0, "relay faster than a veth?");
    // ~150 µs idle was the bar for reworking the relay (the two-thread one it replaced
    // added 150); this one measured 62-142 µs idle over the session's CI runs, so the
    // test bound has headroom and still catches a relay that doubles its cost.
    ensure!(idle <= 250.0, "the relay adds {idle:.0} µs idle");
    ensure!(
        loaded <= RELAY_SLACK.as_secs_f64() * 1e6,
        "the relay adds {loaded:.0} µs with a core busy, beyond RELAY_SLACK"
    );
    Ok(())
}

/// A relay with delay D in each direction adds 2·D to the round trip: the relay path's
/// median minus the veth's, within [−50 µs (ping's 0.1 ms steps above 10 ms), +RELAY_SLACK].
fn check_added_delay(what: &str, veth_us: f64, relay_us: f64, want_us: f64) -> Result<()> {
    let added = relay_us - veth_us;
    println!(
        "{what}: relay path median {relay_us:.0} µs, veth {veth_us:.0} µs: adds {added:.0} µs \
         for {want_us:.0} µs configured ({:+.0} µs)",
        added - want_us
    );
    let slack = RELAY_SLACK.as_secs_f64() * 1e6;
    ensure!(
        added >= want_us - 50.0 && added <= want_us + slack,
        "{what}: the relay adds {added:.0} µs, want {want_us:.0} µs (-50/+{slack:.0})"
    );
    Ok(())
}

#[test]
fn seven_ms_each_way_gives_fourteen_ms_rtt() -> Result<()> {
    let _g = serial();
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let nodes = veth_and_relay(&lab, DelaySpec::new(Duration::from_millis(7)))?;
    let (veth, relay) = veth_vs_relay(&lab, &nodes, 3, 20, Duration::from_millis(20))?;
    check_added_delay("7 ms each way", veth, relay, 14_000.0)
}

#[test]
fn drop_every_fifth_request_loses_twenty_percent() -> Result<()> {
    let _g = serial();
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let (a, b) = (lab.add_node("a")?, lab.add_node("b")?);
    lab.link(
        &a,
        &b,
        DelaySpec::new(Duration::from_millis(2)).drop_every(5),
    )?;
    let stats = lab.ping(&a, b.addr(), 100, Duration::from_millis(10))?;
    let loss = stats.loss();
    println!(
        "drop_every=5 (a->b): loss {:.1} % ({} of {} replies)",
        loss * 100.0,
        stats.received,
        stats.transmitted
    );
    // Deterministic: the relay drops the 5th, 10th, … IPv4 packet a->b; ping's own
    // timeout (-W 2) is far above the 4 ms round trip, so nothing else is lost.
    ensure!((0.15..=0.25).contains(&loss), "loss {loss} not 20 % +- 5 %");
    Ok(())
}

#[test]
fn rate_limited_delay_link_still_delays() -> Result<()> {
    let _g = serial();
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let nodes = veth_and_relay(&lab, DelaySpec::new(Duration::from_millis(3)).rate_mbit(20))?;
    let (veth, relay) = veth_vs_relay(&lab, &nodes, 3, 10, Duration::from_millis(20))?;
    // 84-byte echoes add 84·8 bit / 20 Mbit/s = 33.6 µs of serialisation per direction.
    check_added_delay("3 ms + 20 Mbit/s", veth, relay, 6_000.0 + 2.0 * 33.6)
}
