//! [`Publisher`] against a fake writer.

use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::api::{NetworkTopologySpec, NetworkTopologyStatus};
use crate::controller::fake_writer::{FakeWriter, NETWORK, OBJECT, STATUS, targets};

fn view(nodes: u32, at: &str) -> View {
    View {
        cluster: ClusterTopologyStatus {
            calculated_at: Some(at.into()),
            calculation_millis: 3,
            node_count: nodes,
            ..Default::default()
        },
        network: NetworkTopologySpec {
            configmap_name: "linkmeter-aggregator".into(),
            weights: vec![],
        },
        network_status: NetworkTopologyStatus {
            node_count: Some(i64::from(nodes)),
            weight_calculation_time: Some(at.into()),
        },
    }
}

fn publisher(network: bool) -> Publisher<std::sync::Arc<FakeWriter>> {
    Publisher::new(std::sync::Arc::new(FakeWriter::default()), targets(network))
}

const T1: &str = "2026-01-01T00:00:00Z";
const T2: &str = "2026-01-01T00:00:30Z";

#[tokio::test]
async fn the_first_publish_writes_everything() {
    let mut p = publisher(true);
    let r = p.publish(&view(4, T1), Instant::now()).await;
    assert!(matches!(r.cluster, Outcome::Written { bytes } if bytes > 0));
    assert!(matches!(r.network, Some(Outcome::Written { .. })));
    assert_eq!(p.writer().kinds(), vec![OBJECT, STATUS, NETWORK]);
    let obj = p.writer().last(OBJECT).expect("object");
    assert!(
        obj.get("status").is_none(),
        "the object apply has no status"
    );
    let status = p.writer().last(STATUS).expect("status");
    assert_eq!(status["status"]["nodeCount"], 4);
}

#[tokio::test]
async fn unchanged_content_is_not_written_again() {
    let mut p = publisher(true);
    p.publish(&view(4, T1), Instant::now()).await;
    // Only the calculation times differ.
    let r = p.publish(&view(4, T2), Instant::now()).await;
    assert_eq!(r.cluster, Outcome::Unchanged);
    assert_eq!(r.network, Some(Outcome::Unchanged));
    assert_eq!(p.writer().kinds().len(), 3);
}

#[tokio::test]
async fn changed_content_is_written_without_the_object_again() {
    let mut p = publisher(true);
    p.publish(&view(4, T1), Instant::now()).await;
    let r = p.publish(&view(5, T2), Instant::now()).await;
    assert!(matches!(r.cluster, Outcome::Written { .. }));
    assert!(matches!(r.network, Some(Outcome::Written { .. })));
    assert_eq!(
        p.writer().kinds(),
        vec![OBJECT, STATUS, NETWORK, STATUS, NETWORK]
    );
    let status = p.writer().last(STATUS).expect("status");
    assert_eq!(status["status"]["calculatedAt"], T2);
}

#[tokio::test]
async fn after_a_reset_everything_is_written_once_even_if_unchanged() {
    let mut p = publisher(true);
    p.publish(&view(4, T1), Instant::now()).await;
    p.reset();
    p.publish(&view(4, T1), Instant::now()).await;
    assert_eq!(
        p.writer().kinds(),
        vec![OBJECT, STATUS, NETWORK, OBJECT, STATUS, NETWORK]
    );
    let r = p.publish(&view(4, T2), Instant::now()).await;
    assert_eq!(r.cluster, Outcome::Unchanged);
}

#[tokio::test]
async fn the_network_topology_carries_its_status_in_the_main_object() {
    let mut p = publisher(true);
    p.publish(&view(4, T1), Instant::now()).await;
    let nt = p.writer().last(NETWORK).expect("written");
    assert_eq!(nt["kind"], "NetworkTopology");
    assert_eq!(nt["metadata"]["name"], "nt-default");
    assert_eq!(nt["metadata"]["namespace"], "default");
    assert_eq!(nt["spec"]["configmapName"], "linkmeter-aggregator");
    assert_eq!(nt["status"]["nodeCount"], 4);
    assert_eq!(nt["status"]["weightCalculationTime"], T1);
}

#[tokio::test]
async fn a_failed_write_is_retried_at_the_next_publish() {
    let mut p = publisher(true);
    p.writer().fail_next(STATUS, 500);
    p.writer().fail_next(NETWORK, 503);
    let r = p.publish(&view(4, T1), Instant::now()).await;
    assert_eq!(r.cluster, Outcome::Failed);
    assert_eq!(r.network, Some(Outcome::Failed));
    assert!(r.wants_retry());
    let r = p.publish(&view(4, T2), Instant::now()).await;
    assert!(matches!(r.cluster, Outcome::Written { .. }));
    assert!(matches!(r.network, Some(Outcome::Written { .. })));
    assert!(!r.wants_retry());
    // The object was applied once: its apply did not fail.
    assert_eq!(
        p.writer().kinds(),
        vec![OBJECT, STATUS, NETWORK, STATUS, NETWORK]
    );
}

#[tokio::test]
async fn a_failed_object_apply_skips_the_status_and_retries_both() {
    let mut p = publisher(false);
    p.writer().fail_next(OBJECT, 403);
    let r = p.publish(&view(4, T1), Instant::now()).await;
    assert_eq!(r.cluster, Outcome::Failed);
    assert_eq!(r.network, None);
    assert_eq!(p.writer().kinds(), vec![OBJECT]);
    p.publish(&view(4, T1), Instant::now()).await;
    assert_eq!(p.writer().kinds(), vec![OBJECT, OBJECT, STATUS]);
}

#[tokio::test]
async fn a_deleted_cluster_topology_is_made_again() {
    let mut p = publisher(false);
    p.publish(&view(4, T1), Instant::now()).await;
    p.writer().fail_next(STATUS, 404);
    let r = p.publish(&view(5, T2), Instant::now()).await;
    assert!(matches!(r.cluster, Outcome::Written { .. }));
    assert_eq!(
        p.writer().kinds(),
        vec![OBJECT, STATUS, STATUS, OBJECT, STATUS]
    );
}

#[tokio::test]
async fn a_missing_network_topology_crd_holds_writes_off() {
    let mut p = publisher(true);
    let t0 = Instant::now();
    p.writer().fail_next(NETWORK, 404);
    let r = p.publish(&view(4, T1), t0).await;
    assert_eq!(r.network, Some(Outcome::NotFound));
    assert_eq!(r.network.and_then(Outcome::label), Some("error"));
    assert!(
        !r.wants_retry(),
        "a 404 is not retried at every computation"
    );
    let r = p.publish(&view(5, T2), t0 + Duration::from_secs(10)).await;
    assert_eq!(r.network, Some(Outcome::HeldOff));
    assert!(matches!(r.cluster, Outcome::Written { .. }));
    assert_eq!(p.writer().kinds(), vec![OBJECT, STATUS, NETWORK, STATUS]);
    // Tried again after the hold-off; a second 404 holds it off twice as long.
    p.writer().fail_next(NETWORK, 404);
    let t1 = t0 + NOT_FOUND_RETRY;
    let r = p.publish(&view(5, T2), t1).await;
    assert_eq!(r.network, Some(Outcome::NotFound));
    let r = p.publish(&view(5, T2), t1 + NOT_FOUND_RETRY).await;
    assert_eq!(r.network, Some(Outcome::HeldOff));
    let r = p.publish(&view(5, T2), t1 + 2 * NOT_FOUND_RETRY).await;
    assert!(matches!(r.network, Some(Outcome::Written { .. })));
    // Written: the next 404 starts from the short hold-off again.
    p.writer().fail_next(NETWORK, 404);
    let t2 = t1 + 2 * NOT_FOUND_RETRY;
    let r = p.publish(&view(6, T1), t2).await;
    assert_eq!(r.network, Some(Outcome::NotFound));
    let r = p.publish(&view(6, T1), t2 + NOT_FOUND_RETRY).await;
    assert!(matches!(r.network, Some(Outcome::Written { .. })));
}

#[test]
fn outcome_labels_are_bounded() {
    assert_eq!(Outcome::Written { bytes: 1 }.label(), Some("ok"));
    assert_eq!(Outcome::Unchanged.label(), Some("unchanged"));
    assert_eq!(Outcome::Failed.label(), Some("error"));
    assert_eq!(Outcome::HeldOff.label(), None);
}
