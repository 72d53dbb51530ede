use serde_json::{Value, json};

use super::*;
use crate::cluster::{self, Options};
use crate::placement::{request, seed};

fn world() -> World {
    let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().expect("timestamp");
    let (infos, topologies) = seed::cluster(now);
    World::new(
        cluster::compute(Some(&infos), &topologies, &Options::at(now)),
        &topologies,
    )
}

fn pod(annotations: Value) -> Value {
    json!({
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "annotations": annotations},
        "spec": {"containers": [{"name": "c", "image": "x"}]}
    })
}

fn node(name: &str) -> Value {
    json!({"metadata": {"name": name, "labels": {"a": "b"}}, "status": {"allocatable": {"pods": "10"}}})
}

fn body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("json")
}

#[test]
fn filter_with_node_names_answers_names_and_reasons() {
    let w = world();
    let req = json!({
        "Pod": pod(json!({ request::MIN_BANDWIDTH: "100M" })),
        "Nodes": null,
        "NodeNames": ["home-1", "home-2", "vps"]
    });
    let out = serde_json::to_value(filter(Some(&w), &[], &body(&req))).expect("json");
    assert_eq!(out["NodeNames"], json!(["home-1", "home-2"]));
    assert_eq!(out["Nodes"], Value::Null);
    assert_eq!(
        out["FailedNodes"],
        json!({"vps": "uplink 9.6 Mbit/s measured < 100 Mbit/s requested"})
    );
    assert_eq!(out["Error"], "");
}

#[test]
fn filter_with_whole_nodes_returns_the_objects_that_fit() {
    let w = world();
    let req = json!({
        "Pod": pod(json!({ request::MIN_BANDWIDTH: "100M" })),
        "Nodes": {"metadata": {}, "items": [node("home-1"), node("vps"), node("home-2")]},
        "NodeNames": null
    });
    let out = serde_json::to_value(filter(Some(&w), &[], &body(&req))).expect("json");
    assert_eq!(
        out["Nodes"]["items"],
        json!([node("home-1"), node("home-2")]),
        "the Node objects come back whole"
    );
    assert_eq!(out["NodeNames"], Value::Null);
    assert!(out["FailedNodes"]["vps"].is_string());
}

#[test]
fn prioritize_scores_every_node_given() {
    let w = world();
    let req = json!({
        "pod": pod(json!({ request::MIN_BANDWIDTH: "1M" })),
        "nodenames": ["vps", "home-1"]
    });
    let out = prioritize(Some(&w), &[], &body(&req)).expect("served");
    assert_eq!(
        out,
        [
            HostPriority {
                host: "vps".into(),
                score: 0
            },
            HostPriority {
                host: "home-1".into(),
                score: 10
            },
        ]
    );
}

#[test]
fn pods_without_annotations_pass_even_before_the_first_view() {
    let req = json!({"Pod": pod(json!({})), "NodeNames": ["a", "b"]});
    let out = filter(None, &[], &body(&req));
    assert_eq!(out.node_names, Some(vec!["a".to_owned(), "b".to_owned()]));
    assert!(out.failed_nodes.is_empty() && out.error.is_empty());
    let scores = prioritize(None, &[], &body(&req)).expect("served");
    assert!(scores.iter().all(|h| h.score == 0));
    // An annotated pod waits for the view.
    let req = json!({"Pod": pod(json!({ request::MIN_BANDWIDTH: "1M" })), "NodeNames": ["a"]});
    assert!(
        filter(None, &[], &body(&req))
            .error
            .contains("no cluster view yet")
    );
}

#[test]
fn bad_requests_get_an_error_answer() {
    let w = world();
    for (raw, want) in [
        (&b"{"[..], "not ExtenderArgs JSON"),
        (b"[]", "no Pod"),
        (b"{}", "no Pod"),
        (
            br#"{"Pod": {"metadata": {"name": "p"}}}"#,
            "neither NodeNames nor Nodes",
        ),
        (
            br#"{"Pod": {"metadata": {"name": 5}}, "NodeNames": []}"#,
            "not ExtenderArgs JSON",
        ),
        (
            br#"{"Pod": {}, "Nodes": {"items": [{"metadata": {"name": 7}}]}}"#,
            "cannot be read",
        ),
    ] {
        let out = filter(Some(&w), &[], raw);
        assert!(
            out.error.contains(want),
            "{:?}: {}",
            String::from_utf8_lossy(raw),
            out.error
        );
        let err = prioritize(Some(&w), &[], raw).expect_err("refused");
        assert!(err.0.contains(want), "{err}");
    }
}

#[test]
fn unknown_nodes_fail_with_a_reason_for_annotated_pods() {
    let w = world();
    let req = json!({"Pod": pod(json!({ request::MIN_BANDWIDTH: "1M" })), "NodeNames": ["home-1", "ghost"]});
    let out = filter(Some(&w), &[], &body(&req));
    assert_eq!(out.node_names, Some(vec!["home-1".to_owned()]));
    assert!(out.failed_nodes["ghost"].contains("not in linkmeter's view"));
}

proptest::proptest! {
    #[test]
    fn arbitrary_bodies_never_panic(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
        let w = world();
        let _ = filter(Some(&w), &[], &raw);
        let _ = prioritize(Some(&w), &[], &raw);
    }
}
