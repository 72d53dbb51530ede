//! `linkmeter-agent run` on lab hosts: three agents measuring each other over links of
//! known delay and rate, a peer that goes away and comes back, and SIGTERM while a
//! throughput test runs (client side and server side).

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use linkmeter_tests::agent::{
    AgentProcess, LAB_HTTP_PORT, lab_metrics, lab_report, sample, wait_for,
};
use linkmeter_tests::bins;
use linkmeter_tests::lab::{
    DelaySpec, Lab, Node, RELAY_PICKUP_US, RELAY_SLACK, THROUGHPUT_TOLERANCE, VethSpec, median,
    rtt_tolerance_us,
};

/// These tests load both cores (agents, relays, throughput tests); one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const HTTP_PORT: u16 = LAB_HTTP_PORT;

/// The iperf3 reference: 6 s, the first 3 left out, the better of two runs. With the
/// machine's default congestion control (BBR) on a tbf link, single iperf3 runs read
/// 35.8-37.5 Mbit/s now and then on the 40 Mbit/s veth where they usually read 38.1
/// (and the agents 38.1): the link's capacity is what the best run reaches.
const IPERF_SECONDS: u32 = 6;
const IPERF_OMIT: u32 = 3;

/// Goodput from `from` to `to` in bit/s by iperf3: the better of two runs.
fn iperf3_reference(lab: &Lab, to: &Node, from: &Node) -> f64 {
    let run = || {
        lab.iperf3_omitting(to, from, IPERF_SECONDS, IPERF_OMIT)
            .expect("iperf3")
    };
    run().max(run())
}

fn agent_cmd(lab: &Lab, node: &Node, peers: &[&Node], extra: &[&str]) -> Command {
    let mut cmd = lab.command(node, bins::agent());
    cmd.args([
        "run",
        "--node-name",
        node.name(),
        "--listen",
        &format!("{}:{HTTP_PORT}", node.addr()),
    ])
    .args(["--no-gpu", "--system-interval", "5s"])
    .args(extra)
    .env("LINKMETER_LOG_LEVEL", "info");
    for p in peers {
        cmd.args(["--peer", &format!("{}={}", p.name(), p.addr())]);
    }
    cmd
}

/// Sends SIGTERM and asserts the agent exits with 0 within 2 s.
fn sigterm_exits_zero_within_2s(agent: &mut AgentProcess, who: &str) {
    agent.signal(libc::SIGTERM).expect("SIGTERM");
    let st = agent.wait_timeout(Duration::from_secs(2)).expect("wait");
    let st =
        st.unwrap_or_else(|| panic!("{who} still running 2 s after SIGTERM:\n{}", agent.log()));
    assert_eq!(st.code(), Some(0), "{who}: {}", agent.log());
}

#[test]
fn three_agents_measure_delays_and_rates() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(lab) = Lab::new_or_skip().expect("lab") else {
        return;
    };
    let (a, b, c) = (
        lab.add_node("a").expect("a"),
        lab.add_node("b").expect("b"),
        lab.add_node("c").expect("c"),
    );
    lab.link(&a, &b, VethSpec::shaped(40)).expect("a-b");
    lab.link(
        &a,
        &c,
        DelaySpec::new(Duration::from_millis(5)).rate_mbit(20),
    )
    .expect("a-c");
    lab.link(
        &b,
        &c,
        DelaySpec::new(Duration::from_millis(2)).rate_mbit(10),
    )
    .expect("b-c");
    // References on the same links, measured by the reference tools before the agents
    // start: iperf3 each way (slow start left out, as the agents' adaptive tests leave
    // it out) and ping each way.
    let nodes = [&a, &b, &c];
    let mut iperf_mbps = BTreeMap::new();
    let mut ping_before = BTreeMap::new();
    for (x, y) in [(&a, &b), (&a, &c), (&b, &c)] {
        for (from, to) in [(x, y), (y, x)] {
            let bps = iperf3_reference(&lab, to, from);
            iperf_mbps.insert((from.name(), to.name()), bps / 1e6);
            let rtt = lab
                .ping_median_us(from, to.addr(), 20, Duration::from_millis(20))
                .expect("ping");
            ping_before.insert((from.name(), to.name()), rtt);
        }
    }
    let fast = [
        "--ping-interval",
        "1s",
        "--ping-count",
        "3",
        "--ping-spacing",
        "50ms",
        "--ping-timeout",
        "500ms",
        "--window",
        "20s",
        "--throughput-period",
        "4s",
        "--throughput-max-duration",
        "3s",
    ];
    let agents: Vec<AgentProcess> = [(&a, [&b, &c]), (&b, [&a, &c]), (&c, [&a, &b])]
        .iter()
        .map(|(n, peers)| AgentProcess::spawn(agent_cmd(&lab, n, peers, &fast)).expect("spawn"))
        .collect();
    let logs = || {
        agents
            .iter()
            .map(AgentProcess::log)
            .collect::<Vec<_>>()
            .join("\n----\n")
    };

    // Every agent has RTT for both peers and throughput both ways to both peers. The
    // agents retest every --throughput-period, and their figure is the median of what
    // they read until 30 s after the first complete set: a single short test on a tbf
    // link reads off now and then, for the agents as for iperf3 (whose reference is the
    // better of two runs). Seen on a loaded machine: one agent test at 18.71 Mbit/s on
    // the 20 Mbit/s link where iperf3 read 19.30 and the agents' other tests
    // 19.26-19.32. The median, not the best: the best of seven read 38.50 on the
    // 40 Mbit/s link where iperf3 read 38.10, an outlier the other way.
    let pairs = [(&a, ["b", "c"]), (&b, ["a", "c"]), (&c, ["a", "b"])];
    let mut seen: BTreeMap<(String, String, &str), BTreeMap<u64, f64>> = BTreeMap::new();
    let poll = |seen: &mut BTreeMap<(String, String, &str), BTreeMap<u64, f64>>| {
        let mut rtt_ready = true;
        for (node, peers) in &pairs {
            let Some(text) = lab_metrics(node) else {
                rtt_ready = false;
                continue;
            };
            for p in peers {
                rtt_ready &= sample(&text, "linkmeter_peer_rtt_seconds_count", &[("peer", p)])
                    .is_some_and(|v| v >= 6.0);
                for dir in ["tx", "rx"] {
                    let labels = [("peer", *p), ("direction", dir)];
                    let Some(v) =
                        sample(&text, "linkmeter_peer_throughput_bits_per_second", &labels)
                    else {
                        continue;
                    };
                    // Each test gives a new figure; the same figure is the same test.
                    seen.entry((node.name().to_owned(), (*p).to_owned(), dir))
                        .or_default()
                        .insert(v.to_bits(), v / 1e6);
                }
            }
        }
        rtt_ready && seen.len() == 12
    };
    let first_set = wait_for(Duration::from_secs(120), Duration::from_secs(1), || {
        poll(&mut seen).then_some(())
    });
    if first_set.is_none() {
        panic!("agents never measured everything:\n{}", logs());
    }
    let more_until = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < more_until {
        std::thread::sleep(Duration::from_secs(1));
        poll(&mut seen);
    }
    let throughput: Vec<_> = seen
        .iter()
        .map(|((n, p, d), m)| {
            let readings: Vec<f64> = m.values().copied().collect();
            (
                n.clone(),
                p.clone(),
                *d,
                median(&readings).unwrap_or(0.0),
                m.len(),
            )
        })
        .collect();
    // "tx" is what the node sent to the peer: iperf3 from the node to the peer.
    for (from, to, dir, mbps, tests) in &throughput {
        let (sender, receiver) = match *dir {
            "tx" => (from.as_str(), to.as_str()),
            _ => (to.as_str(), from.as_str()),
        };
        let reference = iperf_mbps[&(sender, receiver)];
        let ratio = mbps / reference;
        eprintln!(
            "{from} -> {to} {dir}: {mbps:.2} Mbit/s (median of {tests}), iperf3 {sender}->{receiver} {reference:.2} (ratio {ratio:.4})"
        );
        assert!(
            (ratio - 1.0).abs() <= THROUGHPUT_TOLERANCE,
            "{from}->{to} {dir}: {mbps:.2} Mbit/s, iperf3 on the same link {reference:.2}"
        );
    }

    // RTT from /report (the NodeTopology status shape), read while the agents run.
    let reports: Vec<_> = pairs
        .iter()
        .map(|(node, _)| lab_report(node).expect("report"))
        .collect();
    // ping again once the agents are gone: the references bracket the agents' run.
    drop(agents);
    let mut ping_after = BTreeMap::new();
    for (node, peers) in &pairs {
        for p in peers {
            let to = nodes.iter().find(|n| n.name() == *p).expect("peer node");
            let rtt = lab
                .ping_median_us(node, to.addr(), 20, Duration::from_millis(20))
                .expect("ping");
            ping_after.insert((node.name(), *p), rtt);
        }
    }
    for ((node, peers), st) in pairs.iter().zip(&reports) {
        for p in peers {
            let l = st.links.iter().find(|l| l.peer == *p).expect("link listed");
            let p50 = l.rtt_p50_us.expect("p50") as f64;
            let key = (node.name(), *p);
            let (before, after) = (ping_before[&key], ping_after[&key]);
            let (lo, hi) = (before.min(after), before.max(after));
            let tol = rtt_tolerance_us(hi);
            eprintln!(
                "{} -> {p}: p50 {p50:.0} µs, ping {before:.0} µs before / {after:.0} µs after \
                 (bound ±{tol:.0}), p99 {:?} µs, loss {} ppm",
                node.name(),
                l.rtt_p99_us,
                l.loss_ppm
            );
            // The agents' own transfers load the relays while they measure, which the
            // quiet pings before and after do not see: up to [`RELAY_SLACK`] more.
            // Phase 2 below holds the RTT to ping under the same load.
            let slack = RELAY_SLACK.as_secs_f64() * 1e6;
            assert!(
                p50 >= lo - tol && p50 <= hi + tol + slack,
                "{}->{p}: p50 {p50:.0} µs, ping on the same path {before:.0}/{after:.0} µs",
                node.name()
            );
            if (node.name(), *p) == ("a", "b") || (node.name(), *p) == ("b", "a") {
                // The shaped veth carries only a<->b's own throughput tests, and ICMP
                // rounds wait for them: no self-made queueing or loss in the figures
                // (without that, p99 read ~22 ms and one echo in 60 was lost; with it
                // 0.08-0.17 ms, so 5 ms is a bound no load reaches).
                let p99_ms = l.rtt_p99_us.expect("p99") as f64 / 1000.0;
                assert!(p99_ms < 5.0, "{}->{p}: p99 {p99_ms} ms", node.name());
                assert_eq!(l.loss_ppm, 0, "{}->{p}: loss", node.name());
            }
            assert!(
                l.throughput_tx_kbps.is_some() && l.throughput_rx_kbps.is_some(),
                "{l:?}"
            );
        }
    }

    // Phase 2: RTT against ping at the same time on the same paths. Fresh agents
    // (ICMP only, a 10 s window) and one ping per ordered pair run side by side for
    // the window, so both see the same relays under the same load.
    let icmp_only = [
        "--ping-interval",
        "1s",
        "--ping-count",
        "3",
        "--ping-spacing",
        "50ms",
        "--ping-timeout",
        "500ms",
        "--window",
        "10s",
        "--no-throughput",
        "--no-serve",
    ];
    let agents: Vec<AgentProcess> = [(&a, [&b, &c]), (&b, [&a, &c]), (&c, [&a, &b])]
        .iter()
        .map(|(n, peers)| {
            AgentProcess::spawn(agent_cmd(&lab, n, peers, &icmp_only)).expect("spawn")
        })
        .collect();
    // Past the agents' start-up (three processes starting load both cores): two rounds
    // in, the 10 s window then covers the pings' 10 s.
    for ((node, peers), agent) in pairs.iter().zip(&agents) {
        wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
            let text = lab_metrics(node)?;
            peers.iter().try_for_each(|p| {
                sample(&text, "linkmeter_peer_rtt_seconds_count", &[("peer", p)])
                    .filter(|v| *v >= 6.0)
                    .map(drop)
            })
        })
        .unwrap_or_else(|| panic!("{} never measured:\n{}", node.name(), agent.log()));
    }
    let ping_during: BTreeMap<(&str, &str), f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = pairs
            .iter()
            .flat_map(|(node, peers)| peers.iter().map(move |p| (*node, *p)))
            .map(|(node, p)| {
                let to = nodes.iter().find(|n| n.name() == p).expect("peer node");
                let lab = &lab;
                scope.spawn(move || {
                    let rtt = lab
                        .ping_median_us(node, to.addr(), 100, Duration::from_millis(100))
                        .expect("ping");
                    ((node.name(), p), rtt)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("ping thread"))
            .collect()
    });
    for ((node, peers), agent) in pairs.iter().zip(&agents) {
        let st = lab_report(node).unwrap_or_else(|| panic!("report:\n{}", agent.log()));
        for p in peers {
            let l = st.links.iter().find(|l| l.peer == *p).expect("link listed");
            let p50 = l.rtt_p50_us.expect("p50") as f64;
            let ping = ping_during[&(node.name(), *p)];
            // Every link here has a rate, and ping's echoes, the other agent's and this
            // agent's share its queue: an echo that lands behind one other waits one
            // serialisation time (84 B) each way. Measured: the b-c agents read +80 µs
            // over ping on the 10 Mbit/s relay in 3 of 3 quiet runs, +0-16 µs elsewhere.
            let rate_mbit = match (node.name().min(p), node.name().max(p)) {
                ("a", "b") => 40.0,
                ("a", "c") => 20.0,
                _ => 10.0,
            };
            let queued_behind_one = 2.0 * 84.0 * 8.0 / rate_mbit;
            // Three daemons: a relay may pick their echoes up later than ping's
            // (RELAY_PICKUP_US, measured); a veth needs no pick-up.
            let pickup = if (node.name().min(p), node.name().max(p)) == ("a", "b") {
                0.0
            } else {
                RELAY_PICKUP_US
            };
            let tol = rtt_tolerance_us(ping) + queued_behind_one + pickup;
            eprintln!(
                "phase 2: {} -> {p}: p50 {p50:.0} µs over {} samples, ping at the same time \
                 {ping:.0} µs ({:+.0}, bound ±{tol:.0})",
                node.name(),
                l.samples,
                p50 - ping
            );
            assert!(
                (p50 - ping).abs() <= tol,
                "{}->{p}: p50 {p50:.0} µs, ping at the same time {ping:.0} µs",
                node.name()
            );
        }
    }
}

/// How far a handed-over figure may be from iperf3 on the same link: a sanity bound
/// (the figure is a rate of this link), not the accuracy target.
const HANDOVER_SANITY: f64 = 0.25;

/// A node that only serves learns both directions from its peer's tests: the client
/// hands over its estimate in the results exchange.
#[test]
fn a_serving_node_records_the_figures_of_the_tests_it_served() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(lab) = Lab::new_or_skip().expect("lab") else {
        return;
    };
    let (a, b) = (lab.add_node("a").expect("a"), lab.add_node("b").expect("b"));
    lab.link(&a, &b, VethSpec::shaped(40)).expect("a-b");
    // The reference on the same link: iperf3 each way before the agents start.
    let iperf_ab = iperf3_reference(&lab, &b, &a) / 1e6;
    let iperf_ba = iperf3_reference(&lab, &a, &b) / 1e6;
    let common = [
        "--ping-interval",
        "1s",
        "--ping-timeout",
        "300ms",
        "--throughput-period",
        "4s",
        "--throughput-max-duration",
        "3s",
    ];
    let client = AgentProcess::spawn(agent_cmd(&lab, &a, &[&b], &common)).expect("spawn a");
    let mut serve_only = common.to_vec();
    serve_only.push("--no-throughput");
    let server = AgentProcess::spawn(agent_cmd(&lab, &b, &[&a], &serve_only)).expect("spawn b");
    let figures = |node: &Node, peer: &str| {
        let text = lab_metrics(node)?;
        let get = |dir| {
            sample(
                &text,
                "linkmeter_peer_throughput_bits_per_second",
                &[("peer", peer), ("direction", dir)],
            )
        };
        Some((get("tx")? / 1e6, get("rx")? / 1e6))
    };
    // The server records a's handed-over figures in the results exchange, a few
    // milliseconds before a's own client returns and records them: wait for both.
    let both = wait_for(Duration::from_secs(60), Duration::from_millis(500), || {
        Some((figures(&b, "a")?, figures(&a, "b")?))
    });
    let ((b_tx, b_rx), (a_tx, a_rx)) = both.unwrap_or_else(|| {
        panic!(
            "a's tests were never recorded on both nodes:
b:
{}
a:
{}",
            server.log(),
            client.log()
        )
    });
    eprintln!(
        "b -> a tx {b_tx:.2} rx {b_rx:.2}; a -> b tx {a_tx:.2} rx {a_rx:.2} Mbit/s; \
         iperf3 a->b {iperf_ab:.2}, b->a {iperf_ba:.2}"
    );
    // What this test is about: b records exactly the figures a measured and handed
    // over (b's rx is a's tx, b's tx is a's rx).
    for (what, v, handed) in [("b tx", b_tx, a_rx), ("b rx", b_rx, a_tx)] {
        assert!(
            (v / handed - 1.0).abs() <= 0.01,
            "{what}: {v:.2} Mbit/s recorded, {handed:.2} measured by a"
        );
    }
    // And they are the link's rate, not some other figure. Accuracy against iperf3
    // within THROUGHPUT_TOLERANCE is throughput_accuracy's business (with a second
    // round for a busy machine); one 3 s test here has read 8% low with a core busy.
    for (what, v, reference) in [("b tx", b_tx, iperf_ba), ("b rx", b_rx, iperf_ab)] {
        assert!(
            (v / reference - 1.0).abs() <= HANDOVER_SANITY,
            "{what}: {v:.2} Mbit/s, iperf3 on the same link {reference:.2}"
        );
    }
    let st = lab_report(&b).expect("report");
    let link = st.links.iter().find(|l| l.peer == "a").expect("a listed");
    assert!(
        link.throughput_tx_kbps.is_some() && link.throughput_rx_kbps.is_some(),
        "{link:?}"
    );
    assert!(
        server
            .log()
            .contains("throughput measured by the peer's test")
    );
}

#[test]
fn a_peer_that_goes_away_shows_loss_without_stalling_others_and_recovers() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(lab) = Lab::new_or_skip().expect("lab") else {
        return;
    };
    let (a, b, c) = (
        lab.add_node("a").expect("a"),
        lab.add_node("b").expect("b"),
        lab.add_node("c").expect("c"),
    );
    let ab = lab.link(&a, &b, VethSpec::plain()).expect("a-b");
    lab.link(&a, &c, VethSpec::plain()).expect("a-c");
    let args = [
        "--ping-interval",
        "500ms",
        "--ping-count",
        "2",
        "--ping-spacing",
        "50ms",
        "--ping-timeout",
        "300ms",
        "--window",
        "3s",
        "--no-throughput",
        "--no-serve",
    ];
    let agent = AgentProcess::spawn(agent_cmd(&lab, &a, &[&b, &c], &args)).expect("spawn");
    let count =
        |text: &str, p: &str| sample(text, "linkmeter_peer_rtt_seconds_count", &[("peer", p)]);
    let loss = |text: &str, p: &str| sample(text, "linkmeter_peer_loss_ratio", &[("peer", p)]);

    let before = wait_for(Duration::from_secs(15), Duration::from_millis(250), || {
        let t = lab_metrics(&a)?;
        (count(&t, "b")? >= 4.0 && loss(&t, "b")? == 0.0).then_some(t)
    })
    .unwrap_or_else(|| panic!("no clean start:\n{}", agent.log()));
    let c_before = count(&before, "c").unwrap_or(0.0);

    // b goes away: its end of the link goes down.
    let down = lab
        .command(&b, "ip")
        .args(["link", "set", "dev", &ab.b_if, "down"])
        .status()
        .expect("ip");
    assert!(down.success());
    let during = wait_for(Duration::from_secs(15), Duration::from_millis(250), || {
        let t = lab_metrics(&a)?;
        (loss(&t, "b")? >= 0.99).then_some(t)
    })
    .unwrap_or_else(|| panic!("loss to b never rose:\n{}", agent.log()));
    assert!(
        count(&during, "c").unwrap_or(0.0) > c_before,
        "c stalled while b was away"
    );
    assert_eq!(
        loss(&during, "c"),
        Some(0.0),
        "c must not suffer from b's absence"
    );

    // b returns: replies flow again and the window forgets the loss.
    let b_count = count(&during, "b").unwrap_or(0.0);
    let up = lab
        .command(&b, "ip")
        .args(["link", "set", "dev", &ab.b_if, "up"])
        .status()
        .expect("ip");
    assert!(up.success());
    // Taking a device down deletes the routes through it; put b's route to a back.
    let route = lab
        .command(&b, "ip")
        .args([
            "route",
            "replace",
            &format!("{}/32", a.addr()),
            "via",
            &ab.a_addr.to_string(),
        ])
        .args(["dev", &ab.b_if, "src", &b.addr().to_string()])
        .status()
        .expect("ip route");
    assert!(route.success());
    let after = wait_for(Duration::from_secs(20), Duration::from_millis(250), || {
        let t = lab_metrics(&a)?;
        (loss(&t, "b")? == 0.0 && count(&t, "b")? > b_count).then_some(t)
    });
    assert!(
        after.is_some(),
        "b's figures never recovered:\n{}",
        agent.log()
    );
}

#[test]
fn sigterm_during_a_throughput_test_exits_zero_within_two_seconds() {
    let _g = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let Some(lab) = Lab::new_or_skip().expect("lab") else {
        return;
    };
    let (a, b) = (lab.add_node("a").expect("a"), lab.add_node("b").expect("b"));
    lab.link(&a, &b, VethSpec::shaped(10)).expect("a-b");
    // b only serves; a tests b with long tests on a slow link.
    let mut server = AgentProcess::spawn(agent_cmd(
        &lab,
        &b,
        &[],
        &["--no-throughput", "--throughput-max-duration", "20s"],
    ))
    .expect("spawn b");
    let client_args = [
        "--ping-interval",
        "1s",
        "--ping-timeout",
        "300ms",
        "--throughput-period",
        "2s",
        "--throughput-max-duration",
        "20s",
    ];
    let mut client =
        AgentProcess::spawn(agent_cmd(&lab, &a, &[&b], &client_args)).expect("spawn a");
    let started = wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        server.log().contains("test requested").then_some(())
    });
    assert!(
        started.is_some(),
        "no test started:\nserver:\n{}\nclient:\n{}",
        server.log(),
        client.log()
    );
    std::thread::sleep(Duration::from_millis(500));

    // Client side: SIGTERM while its test runs.
    sigterm_exits_zero_within_2s(&mut client, "client agent");

    // Server side: a stock-style long test from `probe`, then SIGTERM the serving agent.
    // The server may still be closing the first test when the probe connects, and
    // then answers busy, as iperf3 does (seen 24 ms after the client went): a probe
    // that was told busy is started again.
    let probe_cmd = || {
        let mut cmd = lab.command(&a, bins::agent());
        cmd.args([
            "probe",
            &format!("{}:5201", b.addr()),
            "--forward-only",
            "--max-duration",
            "20s",
        ]);
        cmd
    };
    let mut probe = AgentProcess::spawn(probe_cmd()).expect("probe");
    let mut busy_retries = 0;
    let second = wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        if server.log().matches("test requested").count() >= 2 {
            return Some(());
        }
        let exited = probe.wait_timeout(Duration::ZERO).ok().flatten().is_some();
        if exited && probe.log().contains("busy") && busy_retries < 10 {
            busy_retries += 1;
            probe = AgentProcess::spawn(probe_cmd()).expect("probe");
        }
        None
    });
    assert!(
        second.is_some(),
        "second test never started:\n{}\n{}",
        server.log(),
        probe.log()
    );
    std::thread::sleep(Duration::from_millis(500));
    sigterm_exits_zero_within_2s(&mut server, "serving agent");
    // The server's sockets closed, so the client's test ends too.
    let p = probe
        .wait_timeout(Duration::from_secs(10))
        .expect("wait probe");
    assert!(
        p.is_some(),
        "probe still running after the server went away"
    );
}
