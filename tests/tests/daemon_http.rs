//! `linkmeter-agent run` on loopback: endpoints, promtool, a real Prometheus scrape,
//! config errors, shutdown.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use linkmeter_aggregator::api::NodeTopologyStatus;
use linkmeter_tests::agent::{AgentProcess, free_port, http_get, sample, wait_for};
use linkmeter_tests::bins;
use linkmeter_tests::prometheus::Prometheus;

/// An agent on loopback probing 127.0.0.1, with fast intervals; returns it and its URL.
fn loopback_agent(extra: &[&str]) -> (AgentProcess, String) {
    let port = free_port().expect("port");
    let tport = free_port().expect("port");
    let mut cmd = Command::new(bins::agent());
    cmd.args([
        "run",
        "--node-name",
        "test-node",
        "--listen",
        &format!("127.0.0.1:{port}"),
    ])
    .args([
        "--peer",
        "loopback=127.0.0.1",
        "--ping-interval",
        "500ms",
        "--ping-count",
        "2",
    ])
    .args([
        "--ping-spacing",
        "50ms",
        "--ping-timeout",
        "200ms",
        "--no-throughput",
    ])
    .args([
        "--throughput-port",
        &tport.to_string(),
        "--system-interval",
        "1s",
        "--gpu-interval",
        "1s",
    ])
    .args(extra)
    .env("LINKMETER_LOG_LEVEL", "info");
    let agent = AgentProcess::spawn(cmd).expect("spawn agent");
    let url = format!("http://127.0.0.1:{port}");
    let ready = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        http_get(None, &format!("{url}/readyz"), None).ok()
    });
    assert!(
        ready.is_some(),
        "agent never became ready:\n{}",
        agent.log()
    );
    (agent, url)
}

fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), msg)
}

#[test]
fn endpoints_serve_metrics_report_and_health() {
    let (agent, url) = loopback_agent(&[]);
    let text = wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        let t = http_get(None, &format!("{url}/metrics"), None).ok()?;
        (sample(
            &t,
            "linkmeter_peer_rtt_seconds_count",
            &[("peer", "loopback")],
        )? >= 4.0)
            .then_some(t)
    })
    .unwrap_or_else(|| panic!("no RTT samples for the peer:\n{}", agent.log()));
    assert_eq!(
        sample(&text, "linkmeter_peer_loss_ratio", &[("peer", "loopback")]),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &text,
            "linkmeter_collector_success",
            &[("collector", "icmp")]
        ),
        Some(1.0)
    );
    // This machine has no NVML: the GPU collector has nothing to do. That is neither a
    // success (nothing was measured) nor a failure; its outcome says which.
    assert_eq!(
        sample(
            &text,
            "linkmeter_collector_success",
            &[("collector", "gpu")]
        ),
        Some(0.0),
        "{text}"
    );
    for (outcome, want) in [("working", 0.0), ("idle", 1.0), ("failing", 0.0)] {
        assert_eq!(
            sample(
                &text,
                "linkmeter_collector_outcome",
                &[("collector", "gpu"), ("outcome", outcome)]
            ),
            Some(want),
            "gpu {outcome}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "linkmeter_collector_outcome",
            &[("collector", "icmp"), ("outcome", "working")]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            "linkmeter_peer_rtt_seconds_bucket",
            &[("peer", "loopback"), ("le", "0.000025")]
        )
        .is_some()
    );
    assert!(http_get(None, &format!("{url}/healthz"), None).is_ok());

    let report = http_get(None, &format!("{url}/report"), None).expect("report");
    let st: NodeTopologyStatus = serde_json::from_str(&report).expect("status JSON");
    assert_eq!(st.links[0].peer, "loopback");
    assert!(st.links[0].rtt_p50_us.is_some());
    assert!(st.system.is_some());

    // gzip when asked: curl --compressed decodes it, and the raw bytes are gzip.
    let raw = Command::new("curl")
        .args([
            "-sS",
            "-H",
            "Accept-Encoding: gzip",
            &format!("{url}/report"),
        ])
        .output()
        .expect("curl");
    assert_eq!(&raw.stdout[..2], &[0x1f, 0x8b], "gzip magic");
}

#[test]
fn promtool_accepts_both_exposition_formats() {
    let (agent, url) = loopback_agent(&[]);
    let _ = wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        let t = http_get(None, &format!("{url}/metrics"), None).ok()?;
        sample(
            &t,
            "linkmeter_collector_success",
            &[("collector", "system")],
        )
        .map(|_| ())
    });
    let text = http_get(None, &format!("{url}/metrics"), None).expect("text scrape");
    let (ok, msg) = promtool_check(&text);
    assert!(
        ok,
        "promtool rejects the text format: {msg}\n{text}\n{}",
        agent.log()
    );
    assert!(text.contains("# TYPE linkmeter_peer_probes_total counter"));
    let om = http_get(
        None,
        &format!("{url}/metrics"),
        Some("application/openmetrics-text; version=1.0.0"),
    )
    .expect("openmetrics scrape");
    // promtool 2.42 parses only the classic format; OpenMetrics is checked for its
    // shape here and ingested by the real Prometheus in the next test (which asks for
    // OpenMetrics first).
    assert!(
        om.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    assert!(om.contains("# TYPE linkmeter_peer_probes counter"));
    assert!(om.contains("linkmeter_peer_probes_total{peer=\"loopback\"}"));
}

#[test]
fn prometheus_scrapes_the_agent_and_promql_returns_peer_rtt() {
    let (agent, url) = loopback_agent(&[]);
    let target = url.trim_start_matches("http://").to_owned();
    let prom = Prometheus::start(&format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: linkmeter\n    static_configs:\n      - targets: ['{target}']\n"
    ))
    .expect("start prometheus");
    let query = "histogram_quantile(0.5,rate(linkmeter_peer_rtt_seconds_bucket[30s]))";
    let found = wait_for(Duration::from_secs(40), Duration::from_millis(500), || {
        let body = http_get(None, &prom.query_url(query), None).ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        let series = result.iter().find(|r| r["metric"]["peer"] == "loopback")?;
        let value: f64 = series["value"][1].as_str()?.parse().ok()?;
        value.is_finite().then_some(value)
    });
    let p50 = found.unwrap_or_else(|| {
        panic!(
            "PromQL never returned the peer's RTT\nprometheus:\n{}\nagent:\n{}",
            prom.log(),
            agent.log()
        )
    });
    assert!(p50 > 0.0 && p50 < 0.01, "median loopback RTT {p50} s");
    let up = http_get(None, &prom.query_url("up"), None).expect("up query");
    assert!(up.contains("\"job\":\"linkmeter\""), "{up}");
}

#[test]
fn bad_config_exits_64_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let unknown = file("unknown.yaml", "ping-intervall: 10s\n");
    let syntax = file("syntax.yaml", "ping-interval: 10s\npeer: [a, b\n");
    let list_for_one = file("type.yaml", "ping-count: [1, 2]\n");
    let not_a_number = file("number.yaml", "ping-count: many\n");
    let not_a_switch = file("switch.yaml", "no-gpu: perhaps\n");
    // Each case: the arguments, and what its one line must say.
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--ping-count".into(), "0".into()], "--ping-count"),
        (
            vec!["--ping-interval".into(), "5ms".into()],
            "--ping-interval",
        ),
        (vec!["--listen".into(), "nowhere".into()], "--listen"),
        (
            vec!["--peer".into(), "a=x".into(), "--peer".into(), "a=y".into()],
            "twice",
        ),
        (
            vec!["--throughput-allow".into(), "10.0.0.0/40".into()],
            "--throughput-allow",
        ),
        (
            vec!["--config".into(), unknown],
            "did you mean \"ping-interval\"",
        ),
        (vec!["--config".into(), syntax], "column"),
        (
            vec!["--config".into(), list_for_one],
            "ping-count: expected one value",
        ),
        (vec!["--config".into(), not_a_number], "--ping-count"),
        (
            vec!["--config".into(), not_a_switch],
            "no-gpu: expected true or false",
        ),
        (
            vec!["--config".into(), "/nonexistent/linkmeter.yaml".into()],
            "/nonexistent/linkmeter.yaml",
        ),
    ];
    for (args, want) in cases {
        let out = Command::new(bins::agent())
            .args(["run", "--node-name", "n"])
            .args(&args)
            .output()
            .expect("run agent");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err:?} should say {want:?}");
    }
}

/// Every long flag of `run`, as `--help` lists them, but the ones a file cannot set.
fn run_flags() -> Vec<String> {
    let out = Command::new(bins::agent())
        .args(["run", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&out.stdout);
    let mut flags: Vec<String> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_owned()
        })
        .filter(|w| !w.is_empty() && !["help", "version", "config"].contains(&w.as_str()))
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

#[test]
fn a_config_file_with_every_long_flag_name_runs_the_agent() {
    let port = free_port().expect("port");
    let tport = free_port().expect("port");
    let entries = [
        ("log-level", "info".to_owned()),
        ("log-format", "json".to_owned()),
        ("listen", format!("127.0.0.1:{port}")),
        ("node-name", "file-node".to_owned()),
        ("peer", "[loopback=127.0.0.1]".to_owned()),
        ("ping-interval", "500ms".to_owned()),
        ("ping-count", "2".to_owned()),
        ("ping-spacing", "50ms".to_owned()),
        ("ping-timeout", "200ms".to_owned()),
        ("ping-payload-size", "32".to_owned()),
        ("window", "1m".to_owned()),
        ("no-throughput", "true".to_owned()),
        ("no-serve", "false".to_owned()),
        ("throughput-port", tport.to_string()),
        ("throughput-period", "1h".to_owned()),
        ("throughput-bytes-per-hour", "2GiB".to_owned()),
        ("throughput-max-duration", "10s".to_owned()),
        ("throughput-max-bytes", "512MiB".to_owned()),
        ("throughput-allow", "[127.0.0.0/8, \"::1/128\"]".to_owned()),
        ("system-interval", "1s".to_owned()),
        ("gpu-interval", "1s".to_owned()),
        ("no-gpu", "false".to_owned()),
        ("no-system", "false".to_owned()),
        ("nvml-library", "/nonexistent/libnvidia-ml.so.1".to_owned()),
        ("max-peer-series", "16".to_owned()),
        ("kube", "false".to_owned()),
        ("kubeconfig", "/nonexistent/kubeconfig".to_owned()),
        ("publish-min-interval", "60s".to_owned()),
        ("publish-heartbeat", "5m".to_owned()),
        ("max-peers", "32".to_owned()),
        ("peer-rotation", "1h".to_owned()),
        ("host-proc", "/proc".to_owned()),
        ("host-sys", "/sys".to_owned()),
        ("host-root", "/".to_owned()),
    ];
    let mut keys: Vec<String> = entries.iter().map(|(k, _)| (*k).to_owned()).collect();
    keys.sort();
    assert_eq!(
        keys,
        run_flags(),
        "the file below must name every option of `run --help`"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("linkmeter.yaml");
    let text: String = entries.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    std::fs::write(&path, &text).expect("write config");
    let mut cmd = Command::new(bins::agent());
    cmd.args(["run", "--config"]).arg(&path);
    let mut agent = AgentProcess::spawn(cmd).expect("spawn agent");
    let url = format!("http://127.0.0.1:{port}");
    let report = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        let body = http_get(None, &format!("{url}/report"), None).ok()?;
        let st: NodeTopologyStatus = serde_json::from_str(&body).ok()?;
        (st.links.first()?.samples > 0).then_some(st)
    });
    let Some(report) = report else {
        panic!(
            "the agent from the file never reported:\n{}\n{text}",
            agent.log()
        )
    };
    assert_eq!(report.links[0].peer, "loopback", "peer came from the file");
    let log = agent.log();
    assert!(
        log.lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| l.starts_with('{')),
        "log-format json from the file applies from the first line:\n{log}"
    );
    agent.signal(libc::SIGTERM).expect("SIGTERM");
    let status = agent.wait_timeout(Duration::from_secs(5)).expect("wait");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", agent.log());
}

#[test]
fn help_documents_every_option_with_its_default() {
    let out = Command::new(bins::agent())
        .args(["run", "--help"])
        .output()
        .expect("help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--ping-interval",
        "--window",
        "--throughput-bytes-per-hour",
        "--max-peer-series",
        "--config",
    ] {
        assert!(help.contains(opt), "{opt} missing from --help");
    }
    assert!(help.contains("[default: 10s]"), "defaults are shown");
    assert!(help.contains("[env: NODE_NAME="), "env vars are shown");
}

#[test]
fn sigterm_exits_zero_promptly() {
    let (mut agent, _url) = loopback_agent(&[]);
    agent.signal(libc::SIGTERM).expect("SIGTERM");
    let status = agent.wait_timeout(Duration::from_secs(5)).expect("wait");
    let status =
        status.unwrap_or_else(|| panic!("agent still running 5 s after SIGTERM:\n{}", agent.log()));
    assert_eq!(status.code(), Some(0), "{}", agent.log());
}

/// Issue 13, item 1: a log reader that goes away must not keep the agent from stopping.
/// Before logging ignored failed writes, the first line after the reader closed its end
/// of stderr panicked inside the logging layer (its fallback `eprintln!` fails the same
/// way) and took the task that logged down — the signal task on SIGTERM, so only
/// SIGKILL ended the agent.
#[test]
fn sigterm_exits_zero_when_the_log_reader_has_gone() {
    let port = free_port().expect("port");
    let tport = free_port().expect("port");
    let mut child = Command::new(bins::agent())
        .args(["run", "--node-name", "me", "--peer", "p=127.0.0.1"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--no-serve"])
        .args(["--throughput-port", &tport.to_string(), "--no-gpu"])
        .args(["--ping-interval", "500ms", "--ping-count", "2"])
        .args(["--ping-spacing", "50ms", "--ping-timeout", "200ms"])
        .env("LINKMETER_LOG_LEVEL", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn agent");
    // Read a little, then close the pipe, as `agent 2>&1 | head -c 200` would.
    let mut stderr = child.stderr.take().expect("stderr piped");
    let mut first = [0u8; 200];
    std::io::Read::read_exact(&mut stderr, &mut first).expect("the agent logs");
    drop(stderr);
    let url = format!("http://127.0.0.1:{port}");
    let ready = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        http_get(None, &format!("{url}/readyz"), None).ok()
    });
    assert!(ready.is_some(), "the agent never became ready");
    // Debug logging writes at every ICMP round: let a few fail first.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        http_get(None, &format!("{url}/healthz"), None).is_ok(),
        "the agent stopped serving after its log reader went"
    );
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on the child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if start.elapsed() > Duration::from_secs(2) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the agent was still running 2 s after SIGTERM with its log reader gone");
    };
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
    println!(
        "exited 0 {:?} after SIGTERM with stderr's reader gone",
        start.elapsed()
    );
}
