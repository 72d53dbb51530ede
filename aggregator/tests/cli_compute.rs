//! `compute` on the fixture cluster: the golden output, what it must say, YAML, and the
//! command line itself.

#[allow(dead_code)]
#[path = "fixtures/support.rs"]
mod support;

use serde_json::Value;
use support::{
    NOW, assert_one_error_line, blank_millis, compute_fixture, fixture, input_args, run,
};

fn parsed(stdout: &str) -> Value {
    serde_json::from_str(stdout).expect("compute prints JSON")
}

/// Compares `compute`'s output with tests/fixtures/compute.golden.json.
///
/// With `LINKMETER_BLESS=1` in the environment the test instead rewrites the golden file
/// from this run (and passes): do that after a deliberate change to the calculation, then
/// review the diff before committing it.
#[test]
fn compute_matches_the_golden_file() {
    let r = compute_fixture(&[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let got = blank_millis(parsed(&r.stdout));
    let mut got_text = serde_json::to_string_pretty(&got).expect("serialises");
    got_text.push('\n');
    let path = fixture("compute.golden.json");
    if std::env::var("LINKMETER_BLESS").as_deref() == Ok("1") {
        std::fs::write(&path, &got_text).expect("golden file written");
        eprintln!("LINKMETER_BLESS=1: rewrote {path}");
        return;
    }
    let want_text = std::fs::read_to_string(&path).expect("golden file exists");
    if got_text != want_text {
        let line = got_text
            .lines()
            .zip(want_text.lines())
            .position(|(g, w)| g != w)
            .unwrap_or_else(|| got_text.lines().count().min(want_text.lines().count()));
        let around = |text: &str| -> String {
            text.lines()
                .skip(line.saturating_sub(3))
                .take(7)
                .collect::<Vec<_>>()
                .join("\n")
        };
        panic!(
            "compute output differs from {path} at line {}:\n--- golden\n{}\n--- got\n{}\n\
             (LINKMETER_BLESS=1 rewrites the golden file after a deliberate change)",
            line + 1,
            around(&want_text),
            around(&got_text)
        );
    }
}

/// What the golden file must say, checked on its own so a blessed golden cannot hide it.
#[test]
fn compute_output_makes_sense() {
    let r = compute_fixture(&[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let list = parsed(&r.stdout);
    assert_eq!(list["apiVersion"], "v1");
    assert_eq!(list["kind"], "List");
    let ct = &list["items"][0];
    let nt = &list["items"][1];
    assert_eq!(ct["apiVersion"], "linkmeter.dev/v1alpha1");
    assert_eq!(ct["kind"], "ClusterTopology");
    assert_eq!(ct["metadata"]["name"], "cluster");
    assert_eq!(ct["spec"], serde_json::json!({}));
    assert_eq!(nt["apiVersion"], "networktopology.diktyo.x-k8s.io/v1alpha1");
    assert_eq!(nt["kind"], "NetworkTopology");
    assert_eq!(nt["metadata"]["name"], "nt-default");
    assert_eq!(nt["metadata"]["namespace"], "default");
    assert_eq!(nt["spec"]["configmapName"], "linkmeter-aggregator");
    assert_eq!(nt["spec"]["weights"][0]["name"], "UserDefined");

    let status = &ct["status"];
    assert_eq!(status["calculatedAt"], NOW);
    assert_eq!(
        status["nodeCount"], 6,
        "gone1 has no Node, so it is not in the view"
    );
    assert_eq!(status["staleNodes"], serde_json::json!(["c2"]));
    assert!(
        !r.stdout.contains("gone1"),
        "a NodeTopology without its Node is ignored"
    );
    assert!(
        !r.stdout.contains("ghost-node"),
        "links to unknown peers are dropped"
    );

    // Zone costs from za order as the delays: inside za < to zb (~1.2 ms) < to zc (~30 ms).
    let cost = |from: &str, to: &str| -> u64 {
        let zones = nt["spec"]["weights"][0]["topologyList"]
            .as_array()
            .expect("topologyList")
            .iter()
            .find(|t| t["topologyKey"] == "topology.kubernetes.io/zone")
            .expect("a zone entry")
            .clone();
        zones["originList"]
            .as_array()
            .expect("originList")
            .iter()
            .find(|o| o["origin"] == from)
            .and_then(|o| {
                o["costList"]
                    .as_array()?
                    .iter()
                    .find(|c| c["destination"] == to)
                    .and_then(|c| c["networkCost"].as_u64())
            })
            .unwrap_or(u64::MAX)
    };
    assert!(cost("za", "zb") < cost("za", "zc"), "{}", r.stdout);
    assert!(cost("zb", "za") < cost("zb", "zc"), "{}", r.stdout);
    assert!(cost("za", "zc") < u64::MAX);
    let keys: Vec<&str> = nt["spec"]["weights"][0]["topologyList"]
        .as_array()
        .expect("topologyList")
        .iter()
        .filter_map(|t| t["topologyKey"].as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "topology.kubernetes.io/region",
            "topology.kubernetes.io/zone"
        ]
    );

    // The skipped input is on stderr, bounded, and counted in the status.
    for reason in ["nodeGone", "unknownPeer", "duplicatePeer"] {
        assert!(
            r.stderr.contains(reason),
            "{reason} in stderr: {}",
            r.stderr
        );
        assert!(
            status["skipped"]
                .as_array()
                .expect("skipped")
                .iter()
                .any(|s| s["reason"] == reason),
            "{reason} counted"
        );
    }
}

#[test]
fn yaml_output_has_the_same_content() {
    let json = compute_fixture(&[]);
    let yaml = compute_fixture(&["-o", "yaml"]);
    assert_eq!(yaml.code, 0, "stderr: {}", yaml.stderr);
    let from_yaml: Value = serde_norway::from_str(&yaml.stdout).expect("YAML parses");
    assert_eq!(blank_millis(from_yaml), blank_millis(parsed(&json.stdout)));
}

#[test]
fn flags_name_the_objects() {
    let r = compute_fixture(&[
        "--network-topology-namespace",
        "kube-system",
        "--network-topology-name",
        "nt-lab",
        "--cluster-topology-name",
        "lab",
        "--weights-name",
        "NetperfCosts",
        "--configmap-name",
        "costs",
    ]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let list = parsed(&r.stdout);
    assert_eq!(list["items"][0]["metadata"]["name"], "lab");
    assert_eq!(list["items"][1]["metadata"]["name"], "nt-lab");
    assert_eq!(list["items"][1]["metadata"]["namespace"], "kube-system");
    assert_eq!(
        list["items"][1]["spec"]["weights"][0]["name"],
        "NetperfCosts"
    );
    assert_eq!(list["items"][1]["spec"]["configmapName"], "costs");
}

#[test]
fn stale_after_decides_who_is_stale() {
    // c2 reported at 10:02, two hours before NOW: with 3 h nobody is stale.
    let r = compute_fixture(&["--stale-after", "3h"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let list = parsed(&r.stdout);
    assert_eq!(list["items"][0]["status"]["staleNodeCount"], 0);
}

#[test]
fn help_and_version_go_to_stdout() {
    let r = run(&["--help"]);
    assert_eq!(r.code, 0);
    for word in ["run", "compute", "predict", "report"] {
        assert!(r.stdout.contains(word), "{word} in {}", r.stdout);
    }
    let r = run(&["compute", "--help"]);
    assert_eq!(r.code, 0);
    for text in [
        "--nodetopologies",
        "[default: 15m]",
        "[default: nt-default]",
        "RFC 3339",
    ] {
        assert!(r.stdout.contains(text), "{text} in {}", r.stdout);
    }
    let r = run(&["--version"]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("linkmeter-aggregator "),
        "{}",
        r.stdout
    );
}

#[test]
fn usage_errors_are_one_line_and_64() {
    let topologies = fixture("nodetopologies.json");
    let nodes = fixture("nodes.json");
    let cases: Vec<Vec<&str>> = vec![
        vec!["compute", "--bogus"],
        vec!["frobnicate"],
        vec!["compute", "--nodes", &nodes],
        input_args("compute", &topologies, &nodes, &["--now", "noon"]),
        input_args("compute", &topologies, &nodes, &["-o", "xml"]),
        input_args("compute", &topologies, &nodes, &["--stale-after", "0s"]),
        vec!["compute", "--nodetopologies", "-", "--nodes", "-"],
        vec!["predict", "--nodetopologies", &topologies, "--from", "a1"],
    ];
    for args in cases {
        assert_one_error_line(&run(&args), 64, &format!("{args:?}"));
    }
}
