//! `predict` on the fixture cluster: measured pairs report the measurement, the others
//! are predicted; one pair with `--from/--to`.

#[allow(dead_code)]
#[path = "fixtures/support.rs"]
mod support;

use serde_json::Value;
use support::{NOW, run};

fn predict(extra: &[&str]) -> support::Run {
    support::run_fixture("predict", extra)
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn find<'a>(lines: &'a [Value], from: &str, to: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["from"] == from && l["to"] == to)
        .unwrap_or_else(|| panic!("{from} -> {to} listed"))
}

#[test]
fn every_pair_measured_or_predicted() {
    let r = predict(&[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let all = lines(&r.stdout);
    println!("predict: {} pairs in {:?}", all.len(), r.wall);
    // 6 nodes: 30 ordered pairs, sorted by from then to; gone1 is not a node.
    let keys: Vec<(String, String)> = all
        .iter()
        .map(|l| {
            (
                l["from"].as_str().expect("from").to_owned(),
                l["to"].as_str().expect("to").to_owned(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(
        keys.iter()
            .all(|(f, t)| f != t && f != "gone1" && t != "gone1")
    );
    assert!(all.len() <= 30 && all.len() >= 20, "{}", r.stdout);
    for l in &all {
        let keys: Vec<&String> = l.as_object().expect("object").keys().collect();
        assert_eq!(keys.len(), 4, "{l}");
        assert!(l["rttUs"].as_u64().is_some_and(|v| v > 0), "{l}");
    }

    // Measured by both ends (a1: 152 µs, a2: 148 µs): the mean, both directions.
    for (from, to) in [("a1", "a2"), ("a2", "a1")] {
        let l = find(&all, from, to);
        assert_eq!(l["measured"], true, "{l}");
        assert_eq!(l["rttUs"], 150, "{l}");
    }
    // Measured by one end only.
    let l = find(&all, "c1", "b1");
    assert_eq!(l["measured"], true, "{l}");
    // Never measured by either end: predicted from the coordinates.
    let cross = find(&all, "a1", "b2");
    assert_eq!(cross["measured"], false, "{cross}");
    let far = find(&all, "a2", "b1");
    assert_eq!(far["measured"], false, "{far}");
}

#[test]
fn one_pair() {
    let r = predict(&["--from", "b1", "--to", "a1"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let all = lines(&r.stdout);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["from"], "b1");
    assert_eq!(all[0]["to"], "a1");
    assert_eq!(all[0]["measured"], true);

    let r = predict(&["--from", "a1", "--to", "b2"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let all = lines(&r.stdout);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["measured"], false);
}

#[test]
fn unknown_node_is_a_usage_error() {
    for args in [
        ["--from", "a1", "--to", "nosuch"],
        ["--from", "gone1", "--to", "a1"],
    ] {
        let r = predict(&args);
        assert_eq!(r.code, 64, "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());
        let last = r
            .stderr_lines()
            .last()
            .copied()
            .unwrap_or_default()
            .to_owned();
        assert!(last.contains("unknown node"), "{}", r.stderr);
    }
}

#[test]
fn pair_without_any_figure_is_exit_1() {
    // lonely has a report but no links: nothing measured, nothing to predict from.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nt.json");
    let list = serde_json::json!({
        "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
        "items": [
            {"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
             "metadata": {"name": "x"}, "spec": {},
             "status": {"observedAt": NOW, "windowSeconds": 300,
                        "links": [{"peer": "y", "rttP50Us": 200, "rttP90Us": 250}]}},
            {"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
             "metadata": {"name": "y"}, "spec": {},
             "status": {"observedAt": NOW, "windowSeconds": 300,
                        "links": [{"peer": "x", "rttP50Us": 210, "rttP90Us": 260}]}},
            {"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
             "metadata": {"name": "lonely"}, "spec": {},
             "status": {"observedAt": NOW, "windowSeconds": 300}},
        ]
    });
    std::fs::write(&path, list.to_string()).expect("written");
    let path = path.display().to_string();
    let pair = |to: &str| {
        run(&[
            "predict",
            "--nodetopologies",
            &path,
            "--now",
            NOW,
            "--from",
            "x",
            "--to",
            to,
        ])
    };
    let r = pair("lonely");
    assert_eq!(r.code, 1, "stdout: {} stderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr_lines().len(), 1, "{}", r.stderr);
    let r = pair("y");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        r#"{"from":"x","to":"y","rttUs":205,"measured":true}"#
    );
}
