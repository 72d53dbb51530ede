//! The loop with real computations on a tiny cluster and a fake writer. Real time, with
//! short intervals and wide margins (no paused clock in this crate's test build).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::api::{Link, NodeTopology, NodeTopologySpec, NodeTopologyStatus};
use crate::cluster::NodeInfo;
use crate::controller::fake_writer::{FakeWriter, NETWORK, OBJECT, STATUS, targets};
use crate::controller::store::Converted;

fn info(name: &str, zone: &str) -> NodeInfo {
    NodeInfo {
        name: name.to_owned(),
        zone: Some(zone.to_owned()),
        region: Some("r1".to_owned()),
        ..Default::default()
    }
}

fn topology(name: &str, peers: &[(&str, u64)]) -> NodeTopology {
    let links = peers
        .iter()
        .map(|(p, rtt)| Link {
            peer: (*p).to_owned(),
            rtt_p50_us: Some(*rtt),
            rtt_p90_us: Some(rtt + rtt / 10),
            samples: 10,
            ..Default::default()
        })
        .collect();
    let mut status = NodeTopologyStatus {
        observed_at: Some(jiff::Timestamp::now().to_string()),
        links,
        ..Default::default()
    };
    status.normalize();
    let mut t = NodeTopology::new(name, NodeTopologySpec {});
    t.status = Some(status);
    t
}

fn put<T: Clone>(store: &crate::controller::store::Store<T>, name: &str, version: &str, v: T) {
    store.put(Converted {
        name: name.to_owned(),
        version: version.to_owned(),
        value: Ok(v),
    });
}

/// Two zones, three nodes, both stores listed.
fn shared() -> Arc<Shared> {
    let s = Arc::new(Shared::new());
    s.nodes.begin_relist();
    put(&s.nodes, "a1", "1", info("a1", "za"));
    put(&s.nodes, "a2", "1", info("a2", "za"));
    put(&s.nodes, "b1", "1", info("b1", "zb"));
    s.nodes.finish_relist();
    s.topologies.begin_relist();
    put(
        &s.topologies,
        "a1",
        "1",
        topology("a1", &[("a2", 200), ("b1", 4_000)]),
    );
    put(
        &s.topologies,
        "a2",
        "1",
        topology("a2", &[("a1", 200), ("b1", 4_000)]),
    );
    put(
        &s.topologies,
        "b1",
        "1",
        topology("b1", &[("a1", 4_000), ("a2", 4_000)]),
    );
    s.topologies.finish_relist();
    s
}

fn config(interval_ms: u64) -> LoopConfig {
    LoopConfig {
        interval: Duration::from_millis(interval_ms),
        refresh: Duration::from_secs(60),
        stale_after: Duration::from_secs(900),
        weights_name: "UserDefined".into(),
        configmap_name: "linkmeter-aggregator".into(),
        identity: "test".into(),
    }
}

struct Running {
    shared: Arc<Shared>,
    fake: Arc<FakeWriter>,
    leader: watch::Sender<bool>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

fn start(shared: Arc<Shared>, leader: bool, interval_ms: u64) -> Running {
    let fake = Arc::new(FakeWriter::default());
    let publisher = Publisher::new(fake.clone(), targets(true));
    let mut lp = ControlLoop::new(shared.clone(), publisher, config(interval_ms));
    let (tx, rx) = watch::channel(leader);
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move { lp.run(rx, token).await });
    Running {
        shared,
        fake,
        leader: tx,
        stop,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("stops promptly")
            .expect("no panic");
    }
}

async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_follower_computes_but_never_writes() {
    let r = start(shared(), false, 50);
    // Nudge it a few times: each change is a computation, none a write.
    for v in 2..5 {
        until("a computation", || r.shared.metrics.computations() >= v - 1).await;
        put(
            &r.shared.nodes,
            "a1",
            &v.to_string(),
            info("a1", &format!("z{v}")),
        );
    }
    until("three computations", || {
        r.shared.metrics.computations() >= 3
    })
    .await;
    assert!(
        r.shared.not_ready_reason().is_none(),
        "ready after computing"
    );
    assert!(r.fake.kinds().is_empty(), "{:?}", r.fake.kinds());
    r.stop().await;
}

#[tokio::test]
async fn the_leader_writes_once_and_then_only_changes() {
    let r = start(shared(), true, 50);
    until("first writes", || r.fake.kinds().len() == 3).await;
    assert_eq!(r.fake.kinds(), vec![OBJECT, STATUS, NETWORK]);
    let status = r.fake.last(STATUS).expect("status");
    assert_eq!(status["status"]["nodeCount"], 3);
    let nt = r.fake.last(NETWORK).expect("network");
    assert_eq!(nt["status"]["nodeCount"], 3, "status in the main object");

    // A new report with the same figures (only its publish time moved): computed,
    // nothing written.
    let before = r.shared.metrics.computations();
    let mut again = r
        .shared
        .topologies
        .snapshot()
        .into_iter()
        .find(|t| t.metadata.name.as_deref() == Some("a1"))
        .expect("a1 held");
    if let Some(s) = again.status.as_mut() {
        s.published_at = Some(jiff::Timestamp::now().to_string());
    }
    put(&r.shared.topologies, "a1", "2", again);
    until("recomputed", || r.shared.metrics.computations() > before).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(r.fake.kinds().len(), 3, "{:?}", r.fake.kinds());

    // A real change: the status and the NetworkTopology again, not the object.
    put(&r.shared.nodes, "c1", "1", info("c1", "zc"));
    until("second writes", || r.fake.kinds().len() >= 4).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let kinds = r.fake.kinds();
    assert!(!kinds[3..].contains(&OBJECT), "{kinds:?}");
    assert_eq!(
        r.fake.last(STATUS).expect("status")["status"]["nodeCount"],
        4
    );
    r.stop().await;
}

#[tokio::test]
async fn becoming_leader_writes_at_once_even_if_unchanged() {
    let r = start(shared(), false, 50);
    until("computed as follower", || {
        r.shared.metrics.computations() >= 1
    })
    .await;
    r.leader.send_replace(true);
    until("writes on takeover", || r.fake.kinds().len() >= 3).await;
    assert_eq!(&r.fake.kinds()[..3], &[OBJECT, STATUS, NETWORK]);
    // Lose it and win it again: everything once more.
    r.leader.send_replace(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let n = r.fake.kinds().len();
    r.leader.send_replace(true);
    until("writes on the second takeover", || {
        r.fake.kinds().len() >= n + 3
    })
    .await;
    assert!(r.fake.kinds()[n..].contains(&OBJECT));
    r.stop().await;
}

#[tokio::test]
async fn changes_are_spaced_by_the_interval() {
    let r = start(shared(), false, 1_000);
    until("first computation", || r.shared.metrics.computations() == 1).await;
    // A burst right after the first computation: one more, an interval later.
    for v in 2..12 {
        put(
            &r.shared.nodes,
            "a1",
            &v.to_string(),
            info("a1", &format!("z{v}")),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r.shared.metrics.computations(),
        1,
        "held back by --interval"
    );
    until("the burst's computation", || {
        r.shared.metrics.computations() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r.shared.metrics.computations(),
        2,
        "one for the whole burst"
    );
    r.stop().await;
}

#[tokio::test]
async fn nothing_is_computed_before_both_lists() {
    let s = Arc::new(Shared::new());
    s.nodes.begin_relist();
    s.nodes.finish_relist();
    let r = start(s, true, 20);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.shared.metrics.computations(), 0);
    assert!(r.fake.kinds().is_empty());
    r.shared.topologies.begin_relist();
    r.shared.topologies.finish_relist();
    until("computed once listed", || {
        r.shared.metrics.computations() == 1
    })
    .await;
    r.stop().await;
}
