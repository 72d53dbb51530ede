//! `linkmeter-agent run` on lab hosts: three agents measuring each other over links of
//! known delay and rate, a peer that goes away and comes back, and SIGTERM while a
//! throughput test runs (client side and server side).

use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use linkmeter_tests::agent::{
    AgentProcess, LAB_HTTP_PORT, lab_metrics, lab_report, sample, wait_for,
};
use linkmeter_tests::bins;
use linkmeter_tests::lab::{DelaySpec, Lab, Node, VethSpec};

/// These tests load both cores (agents, relays, throughput tests); one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const HTTP_PORT: u16 = LAB_HTTP_PORT;

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

    // Every agent has RTT for both peers and throughput both ways to both peers.
    let pairs = [(&a, ["b", "c"]), (&b, ["a", "c"]), (&c, ["a", "b"])];
    let complete = wait_for(Duration::from_secs(120), Duration::from_secs(1), || {
        let mut all = Vec::new();
        for (node, peers) in &pairs {
            let text = lab_metrics(node)?;
            for p in peers {
                sample(&text, "linkmeter_peer_rtt_seconds_count", &[("peer", p)])
                    .filter(|v| *v >= 6.0)?;
                for dir in ["tx", "rx"] {
                    let v = sample(
                        &text,
                        "linkmeter_peer_throughput_bits_per_second",
                        &[("peer", p), ("direction", dir)],
                    )?;
                    all.push((node.name().to_owned(), (*p).to_owned(), dir, v / 1e6));
                }
            }
        }
        Some(all)
    });
    let throughput =
        complete.unwrap_or_else(|| panic!("agents never measured everything:\n{}", logs()));
    for (from, to, dir, mbps) in &throughput {
        eprintln!("{from} -> {to} {dir}: {mbps:.1} Mbit/s");
        let rate = match (from.as_str(), to.as_str()) {
            ("a", "b") | ("b", "a") => 40.0,
            ("a", "c") | ("c", "a") => 20.0,
            _ => 10.0,
        };
        assert!(
            *mbps > rate * 0.85 && *mbps < rate * 1.03,
            "{from}->{to} {dir}: {mbps:.1} Mbit/s on a {rate} Mbit/s link"
        );
    }

    // RTT from /report (the NodeTopology status shape) matches the lab's delays.
    let expect_ms = |x: &str, y: &str| match (x, y) {
        ("a", "b") | ("b", "a") => 0.0,
        ("a", "c") | ("c", "a") => 10.0,
        _ => 4.0,
    };
    for (node, peers) in &pairs {
        let st = lab_report(node).expect("report");
        for p in peers {
            let l = st.links.iter().find(|l| l.peer == *p).expect("link listed");
            let p50_ms = l.rtt_p50_us.expect("p50") as f64 / 1000.0;
            let want = expect_ms(node.name(), p);
            eprintln!(
                "{} -> {p}: p50 {p50_ms:.3} ms p99 {:?} µs (delay {want} ms), loss {} ppm",
                node.name(),
                l.rtt_p99_us,
                l.loss_ppm
            );
            if want == 0.0 {
                assert!(p50_ms < 1.0, "{}->{p}: {p50_ms} ms on a veth", node.name());
                // The shaped veth carries only a<->b's own throughput tests, and ICMP
                // rounds wait for them: no self-made queueing or loss in the figures
                // (without that, p99 read ~22 ms and one echo in 60 was lost).
                let p99_ms = l.rtt_p99_us.expect("p99") as f64 / 1000.0;
                assert!(p99_ms < 5.0, "{}->{p}: p99 {p99_ms} ms", node.name());
                assert_eq!(l.loss_ppm, 0, "{}->{p}: loss", node.name());
            } else {
                // The relay adds ~0.15 ms per round trip; shaping queues add a little
                // while a throughput test shares the link.
                assert!(
                    p50_ms >= want && p50_ms < want * 1.1 + 0.3,
                    "{}->{p}: {p50_ms} ms, delay {want} ms",
                    node.name()
                );
            }
            assert!(
                l.throughput_tx_kbps.is_some() && l.throughput_rx_kbps.is_some(),
                "{l:?}"
            );
        }
    }
}

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
    let (b_tx, b_rx) = wait_for(Duration::from_secs(60), Duration::from_millis(500), || {
        figures(&b, "a")
    })
    .unwrap_or_else(|| {
        panic!(
            "the serving node never recorded a's tests:
b:
{}
a:
{}",
            server.log(),
            client.log()
        )
    });
    let (a_tx, a_rx) = figures(&a, "b").expect("a measured b");
    eprintln!("b -> a tx {b_tx:.2} rx {b_rx:.2}; a -> b tx {a_tx:.2} rx {a_rx:.2} Mbit/s");
    for v in [b_tx, b_rx] {
        assert!(
            v > 40.0 * 0.85 && v < 40.0 * 1.03,
            "{v} Mbit/s on 40 Mbit/s"
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
    let mut probe_cmd = lab.command(&a, bins::agent());
    probe_cmd.args([
        "probe",
        &format!("{}:5201", b.addr()),
        "--forward-only",
        "--max-duration",
        "20s",
    ]);
    let mut probe = AgentProcess::spawn(probe_cmd).expect("probe");
    let second = wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        (server.log().matches("test requested").count() >= 2).then_some(())
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
