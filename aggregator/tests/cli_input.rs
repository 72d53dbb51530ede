//! Bad and hostile input files: one clear line and 65/66 for a file that is not a list,
//! warnings (bounded) and exit 0 for a list with bad items.

#[allow(dead_code)]
#[path = "fixtures/support.rs"]
mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::{
    NOW, assert_one_error_line, blank_millis, fixture, input_args, run, run_at_now, run_with_stdin,
};

fn compute(topologies: &str, nodes: &str) -> support::Run {
    run_at_now("compute", topologies, nodes, &[])
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("written");
    path.display().to_string()
}

fn assert_one_line(r: &support::Run, code: i32, names: &str) {
    let line = assert_one_error_line(r, code, names);
    assert!(line.contains(names), "{line} names {names}");
}

#[test]
fn malformed_json_is_65_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = fixture("nodes.json");
    // Valid items before the break: their warnings must not be printed either.
    let bad = write(
        dir.path(),
        "broken.json",
        r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":{"name":"p"}},{"kind":"NodeTopology","#,
    );
    assert_one_line(&compute(&bad, &nodes), 65, "broken.json");
    let bad = write(dir.path(), "yaml.json", "items: [unclosed\n  - :::");
    assert_one_line(&compute(&bad, &nodes), 65, "yaml.json");
    let bad = write(dir.path(), "empty.json", "");
    assert_one_line(&compute(&bad, &nodes), 65, "empty.json");
}

#[test]
fn not_a_list_is_65() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nodes = fixture("nodes.json");
    for (name, text) in [
        (
            "object.json",
            r#"{"apiVersion":"linkmeter.dev/v1alpha1","kind":"NodeTopology","metadata":{"name":"a"}}"#,
        ),
        ("array.json", "[]"),
        (
            "items.json",
            r#"{"apiVersion":"v1","kind":"List","items":{"a":1}}"#,
        ),
        ("noitems.json", r#"{"apiVersion":"v1","kind":"List"}"#),
        ("scalar.yaml", "42\n"),
    ] {
        let path = write(dir.path(), name, text);
        assert_one_line(&compute(&path, &nodes), 65, name);
    }
    // The two files swapped: a NodeList where NodeTopologies belong.
    let topologies = fixture("nodetopologies.json");
    assert_one_line(&compute(&nodes, &topologies), 65, "nodes.json");
}

#[test]
fn missing_file_is_66() {
    let nodes = fixture("nodes.json");
    assert_one_line(
        &compute("/nonexistent/nt.json", &nodes),
        66,
        "/nonexistent/nt.json",
    );
    let topologies = fixture("nodetopologies.json");
    assert_one_line(
        &compute(&topologies, "/nonexistent/n.json"),
        66,
        "/nonexistent/n.json",
    );
    // A directory opens but cannot be read.
    assert_one_line(&compute(&topologies, "/"), 66, "/");
}

#[test]
fn oversized_file_is_65() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("huge.json");
    let file = std::fs::File::create(&path).expect("created");
    // Sparse: the size alone must refuse it, without reading 257 MiB.
    file.set_len(257 * 1024 * 1024).expect("sized");
    let path = path.display().to_string();
    let r = compute(&path, &fixture("nodes.json"));
    assert_one_line(&r, 65, "256 MiB");
}

#[test]
fn unknown_flag_is_64() {
    let r = run(&input_args("compute", "x", "y", &["--frobnicate"]));
    assert_one_line(&r, 64, "--frobnicate");
}

#[test]
fn stdin_and_yaml_read_like_json_files() {
    let json_run = compute(&fixture("nodetopologies.json"), &fixture("nodes.json"));
    assert_eq!(json_run.code, 0, "{}", json_run.stderr);
    let want = blank_millis(serde_json::from_str(&json_run.stdout).expect("JSON"));

    let text = std::fs::read_to_string(fixture("nodetopologies.json")).expect("fixture");
    let value: Value = serde_json::from_str(&text).expect("fixture JSON");
    let yaml = serde_norway::to_string(&value).expect("YAML");
    let nodes = fixture("nodes.json");
    let r = run_with_stdin(
        &input_args("compute", "-", &nodes, &["--now", NOW]),
        Some(yaml.as_bytes()),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let got = blank_millis(serde_json::from_str(&r.stdout).expect("JSON"));
    assert_eq!(got, want);
}

/// NodeTopology items as an attacker (or a broken agent) might write them.
fn hostile_topologies() -> Value {
    let many_links: Vec<Value> = (0..100_000)
        .map(|i| json!({"peer": format!("n{}", i % 7), "rttP50Us": 100 + i, "rttP90Us": 200 + i}))
        .collect();
    let fresh = |name: &str, links: Value| {
        json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
               "metadata": {"name": name}, "spec": {},
               "status": {"observedAt": NOW, "windowSeconds": 300, "links": links}})
    };
    let mut items = vec![
        json!(7),
        json!("a string"),
        json!(null),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}),
        json!({"kind": "NodeTopology", "metadata": {"name": "n0"}, "status": {"windowSeconds": "x"}}),
        json!({"kind": "NodeTopology", "metadata": {"name": "n0"}, "status": {"links": {"peer": "n1"}}}),
        json!({"kind": "NodeTopology", "metadata": {"name": "n0"}, "status": {"gpuCount": -3}}),
        json!({"kind": "NodeTopology", "metadata": {"name": 12}}),
        json!({"kind": "NodeTopology", "metadata": {}}),
        json!({"kind": "NodeTopology", "metadata": {"name": "n5"}}),
        json!({"kind": ["NodeTopology"], "metadata": {"name": "n0"}}),
        json!({"apiVersion": "linkmeter.dev/v9", "kind": "NodeTopology", "metadata": {"name": "n0"}}),
        fresh("n1", Value::Array(many_links)),
        fresh(
            "n2",
            json!([
                {"peer": "n3", "rttP50Us": 1_000_000_000_000_000u64, "rttP90Us": 18_446_744_073_709_551_615u64},
                {"peer": "n3", "rttP50Us": 0},
                {"peer": "n4", "rttP50Us": 300, "throughputTxKbps": 18_446_744_073_709_551_615u64},
                {"peer": "n2", "rttP50Us": 5},
                {"peer": "x".repeat(10_000), "rttP50Us": 5},
            ]),
        ),
        fresh(
            "n3",
            json!([{"peer": "n2", "rttP50Us": 250, "rttP90Us": 100}]),
        ),
        fresh("n4", json!([{"peer": "n2", "rttP50Us": -1}])),
        fresh("n6", json!([{"peer": "n0", "rttP50Us": 1.5}])),
    ];
    items.push(json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
                      "metadata": {"name": "n0"}, "spec": {},
                      "status": {"observedAt": "not a time", "links": [{"peer": "n1", "rttP50Us": 120}]}}));
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

fn hostile_nodes() -> Value {
    let mut items: Vec<Value> = (0..7)
        .map(|i| {
            json!({"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": format!("n{i}"),
                                "labels": {"topology.kubernetes.io/zone": format!("z{}", i % 2),
                                           "topology.kubernetes.io/region": "r"}}})
        })
        .collect();
    items.push(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "bad", "labels": "x"}}),
    );
    items.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod"}}));
    items.push(json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "y".repeat(300)}}));
    json!({"apiVersion": "v1", "kind": "NodeList", "items": items})
}

#[test]
fn hostile_list_gives_warnings_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let topologies = write(
        dir.path(),
        "hostile.json",
        &hostile_topologies().to_string(),
    );
    let nodes = write(dir.path(), "nodes.json", &hostile_nodes().to_string());
    let r = compute(&topologies, &nodes);
    println!(
        "hostile list: exit {}, {:?} wall (binary start, read, compute, print), {} stderr lines",
        r.code,
        r.wall,
        r.stderr_lines().len()
    );
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let lines = r.stderr_lines();
    assert!(!lines.is_empty());
    // Per source at most 10 lines and one count: two files and the calculation, plus
    // the summary line.
    assert!(lines.len() <= 3 * 11 + 1, "{}", r.stderr);
    assert!(
        lines.iter().all(|l| l.len() < 600),
        "short lines: {}",
        r.stderr
    );
    assert!(r.stderr.contains("more warnings"), "{}", r.stderr);
    assert!(r.wall.as_secs() < 30, "bounded time: {:?}", r.wall);
    let out: Value = serde_json::from_str(&r.stdout).expect("still a List");
    let status = &out["items"][0]["status"];
    let skipped = status["skipped"].as_array().expect("skipped counts");
    let reason = |name: &str| skipped.iter().any(|s| s["reason"] == name);
    for name in [
        "unreadableNodeTopology",
        "unreadableNode",
        "tooManyLinks",
        "absurdRtt",
    ] {
        assert!(reason(name), "{name} counted: {skipped:?}");
    }
    assert!(r.stdout.len() < 1 << 20, "output stays small");
}
