use std::sync::Mutex;

use super::*;
use crate::cluster::{self, Options};
use crate::placement::seed;

#[derive(Debug, Default)]
struct Fake {
    calls: Mutex<Vec<String>>,
    fail_status: Mutex<u32>,
}

impl PlacementWriter for Arc<Fake> {
    async fn apply_node_bandwidth(&self, obj: &NodeBandwidth) -> Result<(), kube::Error> {
        let owner = obj
            .metadata
            .owner_references
            .as_ref()
            .map_or("-".to_owned(), |o| o[0].uid.clone());
        self.record(format!("object {} owner={owner}", name(obj)));
        Ok(())
    }
    async fn apply_node_bandwidth_status(&self, obj: &NodeBandwidth) -> Result<(), kube::Error> {
        let mut fail = self.fail_status.lock().expect("lock");
        if *fail > 0 {
            *fail -= 1;
            return Err(kube::Error::Api(
                kube::core::Status::failure("injected", "Injected")
                    .with_code(500)
                    .boxed(),
            ));
        }
        drop(fail);
        let s = obj.status.as_ref().expect("status");
        self.record(format!(
            "status {} reserved={}",
            name(obj),
            s.egress.reserved_bps
        ));
        Ok(())
    }
    async fn label_node(&self, node: &str, key: &str, value: &str) -> Result<(), kube::Error> {
        self.record(format!("label {node} {key}={value}"));
        Ok(())
    }
}

impl Fake {
    fn record(&self, s: String) {
        self.calls.lock().expect("lock").push(s);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().expect("lock"))
    }
}

fn name(obj: &NodeBandwidth) -> &str {
    obj.metadata.name.as_deref().unwrap_or_default()
}

fn setup() -> (World, Vec<NodeInfo>) {
    let now: jiff::Timestamp = "2026-12-01T12:00:00Z".parse().expect("timestamp");
    let (mut infos, topologies) = seed::cluster(now);
    for i in &mut infos {
        i.uid = format!("uid-{}", i.name);
    }
    let world = World::new(
        cluster::compute(Some(&infos), &topologies, &Options::at(now)),
        &topologies,
    );
    (world, infos)
}

fn pod(node: &str, egress: u64) -> Arc<PlacedPod> {
    Arc::new(PlacedPod {
        namespace: "ns".into(),
        name: format!("p-{node}"),
        uid: format!("p-{node}"),
        node: node.into(),
        labels: BTreeMap::new(),
        owner_uid: None,
        egress_bps: egress,
        ingress_bps: 0,
    })
}

#[tokio::test]
async fn only_changed_statuses_are_written() {
    let (world, infos) = setup();
    let fake = Arc::new(Fake::default());
    let mut p = PlacementPublisher::new(fake.clone(), true, None);
    let r = p.publish(&world, &[], &infos).await;
    assert_eq!(r.bandwidth_written, 3);
    let calls = fake.take();
    assert!(
        calls.contains(&"object home-1 owner=uid-home-1".to_owned()),
        "{calls:?}"
    );
    assert!(calls.contains(&"status home-1 reserved=0".to_owned()));
    // Nothing changed: nothing sent.
    assert_eq!(
        p.publish(&world, &[], &infos).await,
        PlacementReport::default()
    );
    assert!(fake.take().is_empty());
    // A reservation on home-1: only its status.
    let r = p
        .publish(&world, &[pod("home-1", 600_000_000)], &infos)
        .await;
    assert_eq!(r.bandwidth_written, 1);
    assert_eq!(fake.take(), ["status home-1 reserved=600000000"]);
    // After a leadership change everything is written again, objects first.
    p.reset();
    p.publish(&world, &[pod("home-1", 600_000_000)], &infos)
        .await;
    assert_eq!(fake.take().len(), 6);
}

#[tokio::test]
async fn a_failed_write_is_retried_next_time() {
    let (world, infos) = setup();
    let fake = Arc::new(Fake::default());
    *fake.fail_status.lock().expect("lock") = 1;
    let mut p = PlacementPublisher::new(fake.clone(), true, None);
    let r = p.publish(&world, &[], &infos).await;
    assert_eq!((r.bandwidth_written, r.bandwidth_failed), (2, 1));
    assert!(r.wants_retry());
    fake.take();
    let r = p.publish(&world, &[], &infos).await;
    assert_eq!((r.bandwidth_written, r.bandwidth_failed), (1, 0));
}

#[tokio::test]
async fn labels_follow_the_uplink_once() {
    let (world, mut infos) = setup();
    let fake = Arc::new(Fake::default());
    let mut p = PlacementPublisher::new(fake.clone(), true, Some(50_000_000));
    let r = p.publish(&world, &[], &infos).await;
    assert_eq!(r.labels_written, 3);
    let labels: Vec<String> = fake
        .take()
        .into_iter()
        .filter(|c| c.starts_with("label"))
        .collect();
    assert_eq!(
        labels,
        [
            "label home-1 linkmeter.dev/uplink-class=fast",
            "label home-2 linkmeter.dev/uplink-class=fast",
            "label vps linkmeter.dev/uplink-class=slow",
        ]
    );
    // The watch has not caught up yet: no second write.
    assert_eq!(p.publish(&world, &[], &infos).await.labels_written, 0);
    // A label set by hand the other way is put back.
    p.reset();
    for i in &mut infos {
        i.uplink_class = Some("fast".into());
    }
    let r = p.publish(&world, &[], &infos).await;
    assert_eq!(r.labels_written, 1, "only vps changes");
}
