//! `report` and `report --json` on the fixture cluster.

#[allow(dead_code)]
#[path = "fixtures/support.rs"]
mod support;

use serde_json::Value;
use support::{NOW, run, run_at_now};

fn report(extra: &[&str]) -> support::Run {
    support::run_fixture("report", extra)
}

#[test]
fn text_report_has_every_section() {
    let r = report(&[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    println!("{}", r.stdout);
    for section in [
        "Nodes per zone",
        "Zone RTT p50/p90, ms",
        "Zone throughput median, Mbit/s",
        "Region RTT p50/p90, ms",
        "Worst measured links",
        "Stale nodes",
        "GPUs per node",
        "Node classes",
        "Model quality",
        "Skipped or clipped input",
    ] {
        assert!(r.stdout.contains(section), "{section} in:\n{}", r.stdout);
    }
    assert!(
        r.stdout.contains("6 nodes in 3 zones, 1 stale"),
        "{}",
        r.stdout
    );
    let gpu_line = r
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("a1 ") && l.trim_end().ends_with(" 8"));
    assert!(gpu_line.is_some(), "a1 with 8 GPUs:\n{}", r.stdout);
    assert!(r.stdout.contains("slow-uplink"), "{}", r.stdout);
    assert!(!r.stdout.contains("gone1"));
}

#[test]
fn json_report_parses_and_has_the_same_content() {
    let r = report(&["--json"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    assert_eq!(v["nodeCount"], 6);
    assert_eq!(v["staleNodes"], serde_json::json!(["c2"]));
    let worst = v["worstLinks"].as_array().expect("worstLinks");
    assert!(!worst.is_empty() && worst.len() <= 10);
    let rtts: Vec<u64> = worst
        .iter()
        .map(|l| l["rttP50Us"].as_u64().expect("rttP50Us"))
        .collect();
    assert!(
        rtts.windows(2).all(|w| w[0] >= w[1]),
        "worst first: {rtts:?}"
    );
    // The worst links cross regions (~30 ms).
    assert!(rtts[0] > 20_000, "{rtts:?}");
    assert!(v["zonePairs"].as_array().is_some_and(|z| !z.is_empty()));
    assert!(v["zones"].as_array().is_some_and(|z| z.len() == 3));
}

#[test]
fn report_without_a_cluster_is_exit_1() {
    let r = run(&[
        "report",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--now",
        NOW,
    ]);
    assert_eq!(r.code, 1, "stderr: {}", r.stderr);
    assert_eq!(r.stderr_lines().len(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("--kubeconfig"), "{}", r.stderr);
}

#[test]
fn text_report_stays_readable_at_5000_nodes() {
    // 5,000 nodes in 60 zones of 3 regions, two links each, every 10th with GPUs,
    // every 25th stale: every list in the report is long.
    let n = 5000;
    let name = |i: usize| format!("node-{i:04}");
    let zone = |i: usize| format!("z{:02}", i % 60);
    let region = |i: usize| format!("r{}", i % 3);
    let topologies: Vec<Value> = (0..n)
        .map(|i| {
            let links: Vec<Value> = [1, 7]
                .iter()
                .map(|d| {
                    let j = (i + d) % n;
                    let rtt = if zone(i) == zone(j) { 150 } else if region(i) == region(j) { 1200 } else { 30_000 };
                    serde_json::json!({"peer": name(j), "rttP50Us": rtt + (i % 13), "rttP90Us": rtt + 40})
                })
                .collect();
            let observed = if i % 25 == 0 { "2025-06-01T08:00:00Z" } else { NOW };
            let gpus: Vec<Value> = (0..if i % 10 == 0 { 8 } else { 0 })
                .map(|g| serde_json::json!({"index": g}))
                .collect();
            serde_json::json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
                "metadata": {"name": name(i)}, "spec": {},
                "status": {"observedAt": observed, "windowSeconds": 300, "links": links, "gpus": gpus}})
        })
        .collect();
    let nodes: Vec<Value> = (0..n)
        .map(|i| {
            serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name(i),
                "labels": {"topology.kubernetes.io/zone": zone(i), "topology.kubernetes.io/region": region(i)}}})
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |file: &str, items: Vec<Value>| {
        let path = dir.path().join(file);
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        std::fs::write(&path, list.to_string()).expect("written");
        path.display().to_string()
    };
    let topologies = write("nt.json", topologies);
    let nodes = write("nodes.json", nodes);
    let r = run_at_now("report", &topologies, &nodes, &[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    let widest = lines.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    println!(
        "report at 5,000 nodes: {} lines, widest {widest} chars, {:?} wall",
        lines.len(),
        r.wall
    );
    assert!(lines.len() < 150, "{}", r.stdout);
    assert!(widest <= 120, "{}", r.stdout);
    assert!(
        r.stdout.contains("5000 nodes in 60 zones, 200 stale"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("… and 180 more"),
        "stale list cut: {}",
        r.stdout
    );
    assert!(r.stdout.contains("more zones"), "{}", r.stdout);
}
