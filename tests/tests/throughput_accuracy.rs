//! The throughput probe against `iperf3 -t 10` on tbf-shaped lab links: within 3 % of
//! iperf3's goodput, in each direction, with fewer bytes. Needs root and iperf3; takes
//! about 100 s of two busy cores, so the rates run one after another in one test.
//!
//! The probe's figure is the median of [`PROBE_RUNS`] runs: one ~1.2 s test reads off
//! now and then where iperf3 averages 10 s (a quiet CI run read 912 Mbit/s once on the
//! 1 Gbit/s link where iperf3 read 946 and the probe's other runs read within 1.5%).
//! A rate that misses gets a second round of both (see the loop's comment).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use anyhow::{Context, Result, ensure};
use linkmeter_tests::bins;
use linkmeter_tests::lab::{Lab, Node, VethSpec, median};

/// iperf3's test length, as in the design's accuracy target.
const IPERF_SECONDS: u32 = 10;
/// Probe runs per rate; their median is compared.
const PROBE_RUNS: usize = 3;

#[test]
fn probe_matches_iperf3_on_shaped_links() -> Result<()> {
    let Some(lab) = Lab::new_or_skip()? else {
        return Ok(());
    };
    let (a, b) = (lab.add_node("a")?, lab.add_node("b")?);
    let link = lab.link(&a, &b, VethSpec::shaped(10))?;
    let mut failures = Vec::new();
    println!("rate   dir      iperf3 Mbit/s  ours Mbit/s  ratio   iperf3 MB  ours MB  ours s");
    for rate in [10u32, 40, 200, 1000] {
        // Re-shape the same link: tbf on both ends, as the lab builds it.
        for (node, ifname) in [(&a, &link.a_if), (&b, &link.b_if)] {
            let per_ms = u64::from(rate) * 125;
            let burst = per_ms.max(15_140);
            let limit = per_ms * 20 + burst;
            let status = std::process::Command::new("tc")
                .args([
                    "-n",
                    node.netns(),
                    "qdisc",
                    "replace",
                    "dev",
                    ifname,
                    "root",
                    "tbf",
                ])
                .args(["rate", &format!("{rate}mbit"), "burst", &burst.to_string()])
                .args(["limit", &limit.to_string()])
                .status()
                .context("tc")?;
            ensure!(status.success(), "tc qdisc replace failed");
        }
        // Round 1: iperf3 each way, then the probe's runs. When a direction misses the
        // bound, round 2 measures both again and the probe is judged against every
        // iperf3 reading of the rate (within 3 % of one of them, or between them): at
        // 1 Gbit/s the link is CPU-bound on two cores, so a busy second moves iperf3's
        // 10 s as much as the probe's 1.2 s, and one reading is not the rate.
        let mut refs: [Vec<f64>; 2] = Default::default();
        let mut runs: [(Vec<f64>, f64, f64, String); 2] = Default::default();
        for round in 1..=2 {
            refs[0].push(lab.iperf3(&b, &a, IPERF_SECONDS)?);
            refs[1].push(lab.iperf3(&a, &b, IPERF_SECONDS)?);
            probe_runs(&lab, &a, &b, &mut runs)?;
            let missed = runs
                .iter()
                .zip(&refs)
                .any(|(run, r)| !within(median(&run.0).unwrap_or(0.0), r));
            if !missed || round == 2 {
                break;
            }
            println!("{rate} Mbit/s: outside 3% of iperf3, measuring both again");
        }
        for ((rates, cost, duration, dir), iperf) in runs.iter().zip(&refs) {
            let ours = median(rates).context("probe runs")?;
            let cost = *cost;
            let iperf_bps = median(iperf).context("iperf3 runs")?;
            let iperf_bytes = iperf_bps / 8.0 * f64::from(IPERF_SECONDS);
            let ratio = ours / iperf_bps;
            println!(
                "{rate:<6} {dir:<8} {:>13.2} {:>12.2} {ratio:>6.4} {:>10.1} {:>8.1} {duration:>6.2}  (median of {:?}; iperf3 {:?})",
                iperf_bps / 1e6,
                ours / 1e6,
                iperf_bytes / 1e6,
                cost / 1e6,
                mbits(rates),
                mbits(iperf),
            );
            if !within(ours, iperf) {
                failures.push(format!(
                    "{rate} Mbit/s {dir}: ours {ours:.0} vs iperf3 {iperf:?}"
                ));
            }
            if cost >= iperf_bytes {
                failures.push(format!(
                    "{rate} Mbit/s {dir}: {cost} bytes, iperf3 {iperf_bytes}"
                ));
            }
        }
    }
    ensure!(
        failures.is_empty(),
        "probe vs iperf3:\n{}",
        failures.join("\n")
    );
    Ok(())
}

/// True when `ours` is within 3 % of one of the iperf3 readings, or between them.
fn within(ours: f64, iperf: &[f64]) -> bool {
    let lo = iperf.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = iperf.iter().copied().fold(0.0, f64::max);
    ours >= lo * 0.97 && ours <= hi * 1.03
}

fn mbits(rates: &[f64]) -> Vec<f64> {
    rates.iter().map(|r| (r / 1e4).round() / 100.0).collect()
}

/// [`PROBE_RUNS`] runs of our probe in `a` against a stock `iperf3 -s` in `b`; per
/// direction (send, receive) each run's rate, the largest byte cost, the last length.
fn probe_runs(
    lab: &Lab,
    a: &Node,
    b: &Node,
    runs: &mut [(Vec<f64>, f64, f64, String); 2],
) -> Result<()> {
    let port = "5212";
    let server = lab.spawn(
        lab.command(b, "iperf3")
            .args([
                "-s",
                "--forceflush",
                "-p",
                port,
                "-B",
                &b.addr().to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    )?;
    let mut lines = BufReader::new(server.take_stdout().context("stdout")?).lines();
    while !lines
        .next()
        .context("iperf3 exited")??
        .contains("listening")
    {}
    std::thread::spawn(move || lines.for_each(drop));
    for _ in 0..PROBE_RUNS {
        let out = lab
            .command(a, bins::agent())
            .args(["probe", &format!("{}:{port}", b.addr()), "--json"])
            .stderr(Stdio::inherit())
            .output()
            .context("running linkmeter-agent probe")?;
        ensure!(out.status.success(), "probe failed: {}", out.status);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).context("probe JSON")?;
        let results = doc["results"].as_array().context("results")?;
        ensure!(results.len() == 2, "expected both directions");
        for (r, run) in results.iter().zip(runs.iter_mut()) {
            run.0
                .push(r["bits_per_second"].as_f64().context("bits_per_second")?);
            let cost = ["app_bytes", "bytes", "peer_bytes"]
                .iter()
                .filter_map(|k| r[*k].as_u64())
                .max()
                .unwrap_or(0) as f64;
            run.1 = run.1.max(cost);
            run.2 = r["duration"].as_f64().unwrap_or(0.0);
            run.3 = r["direction"].as_str().unwrap_or("?").to_owned();
        }
    }
    server.stop()?;
    Ok(())
}
