//! `explain` on the fixture cluster (see fixtures/support.rs) with the pods of
//! fixtures/explain/pods.json: `db-0` (app=db) on a1, `backup` reserving 9 Gbit/s of b1's
//! egress, and a finished job on a2 that reserves nothing. Golden text per pod file;
//! `LINKMETER_BLESS=1` rewrites the golden files after a deliberate change.

#[allow(dead_code)]
#[path = "fixtures/support.rs"]
mod support;

use serde_json::Value;
use support::{assert_one_error_line, fixture, run};

fn explain(pod: &str, extra: &[&str]) -> support::Run {
    let pod = fixture(&format!("explain/{pod}.yaml"));
    let (topologies, nodes, pods) = (
        fixture("nodetopologies.json"),
        fixture("nodes.json"),
        fixture("explain/pods.json"),
    );
    let mut args = vec![
        "explain",
        "--pod",
        &pod,
        "--nodetopologies",
        &topologies,
        "--nodes",
        &nodes,
        "--pods",
        &pods,
        "--now",
        support::NOW,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn golden(pod: &str) {
    let r = explain(pod, &[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    println!("{}", r.stdout);
    let path = fixture(&format!("explain/{pod}.golden.txt"));
    if std::env::var_os("LINKMETER_BLESS").is_some() {
        std::fs::write(&path, &r.stdout).expect("golden written");
        return;
    }
    let want = std::fs::read_to_string(&path).expect("golden exists");
    assert!(
        want == r.stdout,
        "explain {pod} differs from {path}:\n--- golden\n{want}\n--- got\n{}\n\
         (LINKMETER_BLESS=1 rewrites the golden file after a deliberate change)",
        r.stdout
    );
}

#[test]
fn peers_pod_matches_the_golden_text() {
    golden("peers");
    // What the golden must say, checked apart so a blessed golden cannot hide it.
    let out = explain("peers", &[]).stdout;
    assert!(out.contains("a1  fits, score 10"), "{out}");
    assert!(
        out.contains("RTT 30.1 ms to a1 measured > 2 ms allowed"),
        "{out}"
    );
    assert!(out.contains("9 Gbit/s reserved by 1 pod"), "{out}");
    assert!(out.contains("to a1 predicted"), "{out}");
}

#[test]
fn gpu_pod_matches_the_golden_text() {
    golden("gpu");
    let out = explain("gpu", &[]).stdout;
    assert!(out.contains("2 of 6 nodes fit"), "{out}");
}

#[test]
fn bad_annotations_fail_every_node_naming_them() {
    golden("bad");
    let out = explain("bad", &[]).stdout;
    assert!(out.contains("0 of 6 nodes fit"));
    assert!(
        out.contains("annotation linkmeter.dev/min-bandwidth: \"lots\""),
        "{out}"
    );
}

#[test]
fn json_has_the_same_verdicts() {
    let r = explain("peers", &["--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).expect("one JSON document");
    assert_eq!(v["pod"], "shop/api");
    let nodes = v["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 6);
    assert_eq!(nodes[0]["node"], "a1");
    assert_eq!(nodes[0]["fits"], true);
    assert_eq!(nodes[0]["score"], 10);
    let fit: Vec<&str> = nodes
        .iter()
        .filter(|n| n["fits"] == true)
        .filter_map(|n| n["node"].as_str())
        .collect();
    assert_eq!(fit, ["a1", "a2"]);
}

#[test]
fn bad_usage_and_input_are_one_line() {
    let r = run(&["explain"]);
    assert_eq!(r.code, 64, "{}", r.stderr);
    let r = run(&["explain", "a/b/c"]);
    assert_one_error_line(&r, 64, "POD with two slashes");
    let nodes = fixture("nodes.json");
    let topologies = fixture("nodetopologies.json");
    let r = run(&["explain", "--pod", &nodes, "--nodetopologies", &topologies]);
    let line = assert_one_error_line(&r, 65, "a NodeList as the pod");
    assert!(line.contains("not a Pod"), "{line}");
    let r = run(&[
        "explain",
        "--pod",
        "/nonexistent/pod.yaml",
        "--nodetopologies",
        &topologies,
    ]);
    assert_one_error_line(&r, 66, "missing pod file");
}
