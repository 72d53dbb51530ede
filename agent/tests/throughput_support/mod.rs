//! Helpers shared by the throughput integration tests: the reference iperf3 binary,
//! free loopback ports and a server running in the background.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use linkmeter_agent::throughput::{Server, ServerConfig, TestOutcome};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Set to `1` to skip tests that need the reference `iperf3` binary.
pub const SKIP_ENV: &str = "LINKMETER_SKIP_IPERF3";

/// Whether iperf3 can run here. Without it the tests fail with instructions, unless
/// `LINKMETER_SKIP_IPERF3=1` asks to skip them.
pub fn have_iperf3() -> bool {
    let ok = std::process::Command::new("iperf3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        println!("SKIPPED: iperf3 not installed ({SKIP_ENV}=1)");
        return false;
    }
    panic!("these tests need iperf3 (apt-get install -y iperf3), or set {SKIP_ENV}=1 to skip them");
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Output of a finished iperf3.
#[derive(Debug)]
pub struct Iperf3Run {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Iperf3Run {
    /// The `-J` document.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("iperf3 JSON: {e}\n{}\n{}", self.stdout, self.stderr))
    }
}

/// Starts iperf3 with `args`; it is killed if the test drops the handle.
pub fn spawn_iperf3(args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new("iperf3")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn iperf3")
}

/// Waits for a spawned iperf3, killing it after `limit`.
pub async fn finish_iperf3(child: tokio::process::Child, limit: Duration) -> Iperf3Run {
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .expect("iperf3 did not finish in time")
        .expect("iperf3 output");
    Iperf3Run {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs iperf3 to completion.
pub async fn run_iperf3(args: &[&str], limit: Duration) -> Iperf3Run {
    finish_iperf3(spawn_iperf3(args), limit).await
}

/// A server of ours on a loopback port, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub outcomes: broadcast::Receiver<TestOutcome>,
    stop: CancellationToken,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestServer {
    /// Starts a server with `tune` applied to a loopback configuration with a 1 s
    /// control timeout.
    pub async fn start(tune: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let mut cfg = ServerConfig::new("127.0.0.1:0".parse().expect("addr"));
        cfg.control_timeout = Duration::from_secs(1);
        tune(&mut cfg);
        let server = Server::bind(cfg).await.expect("bind");
        let addr = server.local_addr().expect("addr");
        let outcomes = server.subscribe();
        let stop = CancellationToken::new();
        tokio::spawn(server.run(stop.clone()));
        TestServer {
            addr,
            outcomes,
            stop,
        }
    }

    /// The next finished test's outcome.
    pub async fn next_outcome(&mut self, limit: Duration) -> TestOutcome {
        tokio::time::timeout(limit, self.outcomes.recv())
            .await
            .expect("no test outcome in time")
            .expect("outcome channel")
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }
}

/// Relative difference of two positive figures.
pub fn rel_diff(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.max(b)
}
