//! Interoperability with the reference iperf3 (3.12) on loopback, both ways round:
//! our client against `iperf3 -s`, and `iperf3 -c` (also `-R`, `-P 4`) against our
//! server.

mod throughput_support;

use std::time::Duration;

use linkmeter_agent::throughput::client::run_test;
use linkmeter_agent::throughput::estimator::EstimatorConfig;
use linkmeter_agent::throughput::{ClientConfig, Direction, StopReason};
use throughput_support::{
    TestServer, finish_iperf3, free_port, have_iperf3, rel_diff, run_iperf3, spawn_iperf3,
};

fn client(port: u16) -> ClientConfig {
    let mut cfg = ClientConfig::new(format!("127.0.0.1:{port}").parse().expect("addr"));
    cfg.estimator = EstimatorConfig {
        max_duration: Duration::from_millis(1500),
        ..EstimatorConfig::default()
    };
    // iperf3 needs a moment to start listening.
    cfg.setup_retry = Duration::from_secs(3);
    cfg
}

async fn our_client_against_iperf3(direction: Direction, streams: u32) {
    if !have_iperf3() {
        return;
    }
    let port = free_port();
    let p = port.to_string();
    let server = spawn_iperf3(&["-s", "-1", "-B", "127.0.0.1", "-p", &p, "-J"]);
    let mut cfg = client(port);
    cfg.streams = streams;
    let report = run_test(&cfg, direction, &mut |_| {})
        .await
        .expect("test against iperf3 -s");
    let run = finish_iperf3(server, Duration::from_secs(10)).await;
    assert!(
        run.success,
        "iperf3 -s failed: {}\n{}",
        run.stdout, run.stderr
    );
    let j = run.json();
    assert!(j["end"]["error"].is_null(), "{}", j["end"]);
    assert!(report.bits_per_second > 0.0, "{report:?}");
    assert_eq!(report.streams, streams);
    assert_ne!(report.stop, StopReason::ServerTerminated);
    // The server's byte count, as it reported it to us and in its own JSON.
    let (key, ours) = match direction {
        Direction::Send => ("sum_received", report.app_bytes),
        Direction::Receive => ("sum_sent", report.app_bytes),
    };
    let server_bytes = j["end"][key]["bytes"].as_u64().expect("bytes");
    assert_eq!(report.peer_bytes, Some(server_bytes), "{report:?}");
    // Receiver and sender counts agree up to what was in flight at TEST_END.
    assert!(
        rel_diff(ours as f64, server_bytes as f64) < 0.2,
        "ours {ours}, iperf3 {server_bytes}"
    );
    // Our converged (or capped) estimate agrees roughly with iperf3's whole-test
    // average; loopback is CPU-bound and noisy, hence the wide margin.
    let theirs = j["end"][key]["bits_per_second"].as_f64().expect("bps");
    let ratio = report.bits_per_second / theirs;
    assert!(
        (0.5..2.0).contains(&ratio),
        "ours {} vs iperf3 {theirs}",
        report.bits_per_second
    );
    assert!(report.rtt_us.is_some());
    if direction == Direction::Send {
        assert!(report.retransmits.is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_sends_to_iperf3_server() {
    our_client_against_iperf3(Direction::Send, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_receives_from_iperf3_server() {
    our_client_against_iperf3(Direction::Receive, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_with_parallel_streams_against_iperf3_server() {
    our_client_against_iperf3(Direction::Receive, 3).await;
}

async fn iperf3_client_against_our_server(extra: &[&str]) {
    if !have_iperf3() {
        return;
    }
    let mut server = TestServer::start(|_| {}).await;
    let port = server.port();
    let mut args = vec!["-c", "127.0.0.1", "-p", &port, "-t", "2", "-J"];
    args.extend_from_slice(extra);
    let run = run_iperf3(&args, Duration::from_secs(20)).await;
    assert!(
        run.success,
        "iperf3 {args:?} failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    let j = run.json();
    assert!(j["end"]["error"].is_null(), "{}", j["end"]);
    let outcome = server.next_outcome(Duration::from_secs(5)).await;
    let summary = outcome.result.expect("our server's test");
    let reverse = extra.contains(&"-R");
    assert_eq!(summary.reverse, reverse);
    let streams = if extra.contains(&"4") { 4 } else { 1 };
    assert_eq!(summary.streams, streams);
    assert_eq!(
        j["end"]["streams"].as_array().map(Vec::len),
        Some(streams as usize)
    );
    assert!(!summary.capped);
    let received = j["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .expect("bps");
    assert!(received > 0.0);
    if reverse {
        // We sent; iperf3 received what we sent less what was in flight at the end.
        let sent = j["end"]["sum_sent"]["bytes"].as_u64().expect("bytes");
        assert_eq!(sent, summary.bytes, "iperf3 shows our sent count");
        assert!(
            rel_diff(received, summary.bits_per_second) < 0.1,
            "iperf3 {received} vs ours {}",
            summary.bits_per_second
        );
    } else {
        // iperf3's receiver figures are ours, reported in the results exchange.
        let bytes = j["end"]["sum_received"]["bytes"].as_u64().expect("bytes");
        assert_eq!(bytes, summary.bytes);
        assert!(
            rel_diff(received, summary.bits_per_second) < 0.01,
            "iperf3 {received} vs ours {}",
            summary.bits_per_second
        );
        let client_sent = j["end"]["sum_sent"]["bytes"].as_u64().expect("bytes");
        assert_eq!(summary.client_bytes, Some(client_sent));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iperf3_client_sends_to_our_server() {
    iperf3_client_against_our_server(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iperf3_client_receives_from_our_server() {
    iperf3_client_against_our_server(&["-R"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iperf3_client_four_streams_to_our_server() {
    iperf3_client_against_our_server(&["-P", "4"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iperf3_client_four_streams_reverse_from_our_server() {
    iperf3_client_against_our_server(&["-R", "-P", "4"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_our_server_both_directions() {
    let mut server = TestServer::start(|_| {}).await;
    let cfg = client(server.addr.port());
    for dir in [Direction::Send, Direction::Receive] {
        let r = run_test(&cfg, dir, &mut |_| {}).await.expect("test");
        let s = server
            .next_outcome(Duration::from_secs(5))
            .await
            .result
            .expect("server side");
        assert_eq!(s.reverse, dir == Direction::Receive);
        assert_eq!(r.peer_bytes, Some(s.bytes));
        assert!(r.bits_per_second > 0.0);
    }
}
