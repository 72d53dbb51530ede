//! The throughput probe against `iperf3 -t 10` on tbf-shaped lab links: within 3 % of
//! iperf3's goodput, in each direction, with fewer bytes. Needs root and iperf3; takes
//! about 100 s of two busy cores, so the rates run one after another in one test.
//!
//! The probe's figure is the median of [`PROBE_RUNS`] runs: one ~1.2 s test reads off
//! now and then where iperf3 averages 10 s (a quiet CI run read 912 Mbit/s once on the
//! 1 Gbit/s link where iperf3 read 946 and the probe's other runs read within 1.5%).

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use anyhow::{Context, Result, ensure};
use linkmeter_tests::bins;
use linkmeter_tests::lab::{Lab, VethSpec, median};

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
        let iperf_send = lab.iperf3(&b, &a, IPERF_SECONDS)?;
        let iperf_recv = lab.iperf3(&a, &b, IPERF_SECONDS)?;

        // Our probe in `a` against a stock iperf3 server in `b`.
        let port = "5212";
        let server = lab.spawn(
            lab.command(&b, "iperf3")
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
        // Per direction (send, receive): each run's rate, the largest byte cost, and
        // the length of the last run.
        let mut runs: [(Vec<f64>, f64, f64, String); 2] = Default::default();
        for _ in 0..PROBE_RUNS {
            let out = lab
                .command(&a, bins::agent())
                .args(["probe", &format!("{}:{port}", b.addr()), "--json"])
                .stderr(Stdio::inherit())
                .output()
                .context("running linkmeter-agent probe")?;
            ensure!(out.status.success(), "probe failed: {}", out.status);
            let doc: serde_json::Value =
                serde_json::from_slice(&out.stdout).context("probe JSON")?;
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
        for ((rates, cost, duration, dir), iperf_bps) in runs.iter().zip([iperf_send, iperf_recv]) {
            let ours = median(rates).context("probe runs")?;
            let cost = *cost;
            let iperf_bytes = iperf_bps / 8.0 * f64::from(IPERF_SECONDS);
            let ratio = ours / iperf_bps;
            println!(
                "{rate:<6} {dir:<8} {:>13.2} {:>12.2} {ratio:>6.4} {:>10.1} {:>8.1} {duration:>6.2}  (median of {:?})",
                iperf_bps / 1e6,
                ours / 1e6,
                iperf_bytes / 1e6,
                cost / 1e6,
                rates
                    .iter()
                    .map(|r| (r / 1e4).round() / 100.0)
                    .collect::<Vec<_>>()
            );
            if (ratio - 1.0).abs() > 0.03 {
                failures.push(format!(
                    "{rate} Mbit/s {dir}: ours {ours:.0} vs iperf3 {iperf_bps:.0}"
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
