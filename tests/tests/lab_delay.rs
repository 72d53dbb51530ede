//! Delay links through `lab-relay`: RTT accuracy and deterministic loss.
//! They need root; see `Lab::new_or_skip`.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use linkmeter_tests::lab::{DelaySpec, Lab};

#[test]
fn seven_ms_each_way_gives_fourteen_ms_rtt() -> Result<()> {
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let (a, b) = (lab.add_node("a")?, lab.add_node("b")?);
    lab.link(&a, &b, DelaySpec::new(Duration::from_millis(7)))?;
    let stats = lab.ping(&a, b.addr(), 40, Duration::from_millis(50))?;
    let median = stats.median_ms().context("no ping replies")?;
    println!(
        "delay 7 ms each way: median RTT {median:.3} ms, min {:?} ms, {} of {} replies",
        stats.min_ms(),
        stats.received,
        stats.transmitted
    );
    ensure!(
        stats.received == stats.transmitted,
        "unexpected loss: {stats:?}"
    );
    ensure!(
        (median - 14.0).abs() <= 14.0 * 0.02,
        "median RTT {median} ms is not within 2 % of 14 ms"
    );
    Ok(())
}

#[test]
fn drop_every_fifth_request_loses_twenty_percent() -> Result<()> {
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
    ensure!((0.15..=0.25).contains(&loss), "loss {loss} not 20 % +- 5 %");
    Ok(())
}

#[test]
fn rate_limited_delay_link_still_delays() -> Result<()> {
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let (a, b) = (lab.add_node("a")?, lab.add_node("b")?);
    lab.link(
        &a,
        &b,
        DelaySpec::new(Duration::from_millis(3)).rate_mbit(20),
    )?;
    let stats = lab.ping(&a, b.addr(), 10, Duration::from_millis(20))?;
    let median = stats.median_ms().context("no ping replies")?;
    println!("3 ms + 20 Mbit/s relay: median RTT {median:.3} ms");
    // 84-byte echoes add ~34 us of serialisation per direction.
    ensure!(
        (6.0..6.5).contains(&median),
        "median RTT {median} ms, want ~6.07"
    );
    Ok(())
}
