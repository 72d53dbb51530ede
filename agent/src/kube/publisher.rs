//! Writing this node's NodeTopology.
//!
//! Every [`CHECK_PERIOD`] the publisher takes the agent's current status and asks
//! [`Hysteresis`] whether it differs enough from the last *published* one (or the
//! heartbeat age passed); at most one write per minimum interval. A write is a
//! server-side apply (field manager [`super::FIELD_MANAGER`]) of the object, once, then of
//! the status through the status subresource, forced so a stale manager cannot block
//! it.
//!
//! The object carries an ownerReference to the Node (uid from a GET), so the garbage
//! collector removes it with the Node; `blockOwnerDeletion` stays false because the
//! agent may not delete or finalize Nodes. If the Node does not exist (yet), the
//! object is written without an owner and the GET retried each minimum interval.
//!
//! Failures retry with exponential back-off and jitter, capped at 30 s and at the
//! minimum interval, so a server that comes back sees the current state within one
//! interval. Nothing queues: each attempt writes the status of that moment, so an
//! outage costs no memory. After an outage the next write happens at once (subject to
//! the minimum interval), whatever the hysteresis says, because readers judge
//! staleness by `publishedAt`.

use std::sync::Arc;
use std::time::Duration;

use ::kube::ResourceExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use linkmeter_aggregator::api::{NodeAddress, NodeTopologyStatus};
use linkmeter_aggregator::publish::{Hysteresis, Plan, PublishPlanner};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ApiHealth;
use super::backoff::Backoff;
use super::discovery::NodeEntry;
use super::writer::TopologyWriter;
use crate::daemon::Shared;
use crate::daemon::config::KubeSettings;
use crate::state::NodeIdentity;

/// A heartbeat with nothing material changed is a merge patch of `publishedAt` and
/// `observedAt` alone (~150 bytes instead of ~10 KB with 32 links); every this many
/// heartbeats it is a full write instead, so slow-moving figures the hysteresis ignores
/// (the system summary) are refreshed too — hourly with the default 5-minute heartbeat.
pub const FULL_REFRESH_EVERY: u32 = 12;

/// How often the current status is compared with the published one. A change is
/// therefore written within one minimum interval plus this.
pub const CHECK_PERIOD: Duration = Duration::from_secs(5);

/// Longest wait for the first ICMP round before the first write (an empty report
/// would be replaced by a full one a minimum interval later, costing a write).
const FIRST_ROUND_WAIT: Duration = Duration::from_secs(60);

/// Metric label of the object (metadata) write.
const REASON_OBJECT: &str = "object";

/// The publisher task's state; `W` makes the requests.
pub struct Publisher<W> {
    shared: Arc<Shared>,
    writer: W,
    health: Arc<ApiHealth>,
    /// Every decision about what to write and when (pure, unit-tested).
    planner: PublishPlanner,
    /// The planner's clock: its `now` is the time since this instant.
    origin: Instant,
    node_name: String,
    /// ownerReference to the Node, once its GET succeeded.
    owner: Option<OwnerReference>,
    /// When the Node was last read (identity and owner).
    node_read_at: Option<Instant>,
    /// The Node was missing and that was logged (once until it appears).
    missing_logged: bool,
    /// The object exists with the current owner.
    object_applied: bool,
    backoff: Backoff,
    /// The last non-outage error, so a repeating one is logged once.
    last_error: Option<String>,
}

impl<W> std::fmt::Debug for Publisher<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("node_name", &self.node_name)
            .field("object_applied", &self.object_applied)
            .field("stale", &self.planner.is_stale())
            .finish_non_exhaustive()
    }
}

/// Why a step did not finish.
enum StepError {
    /// The server did not answer (already logged by [`ApiHealth`]).
    Outage,
    /// The server answered with an error.
    Api(String),
}

impl<W: TopologyWriter> Publisher<W> {
    /// A publisher for `shared.config.node_name`, writing through `writer`.
    pub fn new(
        shared: Arc<Shared>,
        writer: W,
        health: Arc<ApiHealth>,
        settings: &KubeSettings,
    ) -> Self {
        let hysteresis = Hysteresis {
            min_interval: settings.publish_min_interval,
            heartbeat: settings.publish_heartbeat,
            ..Hysteresis::default()
        };
        let cap = settings
            .publish_min_interval
            .min(Duration::from_secs(30))
            .max(Duration::from_secs(1));
        Publisher {
            node_name: shared.config.node_name.clone(),
            shared,
            writer,
            health,
            planner: PublishPlanner::new(hysteresis, FULL_REFRESH_EVERY, CHECK_PERIOD),
            origin: Instant::now(),
            owner: None,
            node_read_at: None,
            missing_logged: false,
            object_applied: false,
            backoff: Backoff::new(Duration::from_millis(500), cap),
            last_error: None,
        }
    }

    /// Publishes until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut recoveries = self.health.recoveries();
        let waited = Instant::now();
        while !self.shared.is_ready() && waited.elapsed() < FIRST_ROUND_WAIT {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
        loop {
            let wait = match self.step().await {
                Ok(next) => {
                    self.backoff.reset();
                    // Our own success may have been the recovery; nothing is stale then.
                    recoveries.borrow_and_update();
                    next
                }
                Err(e) => {
                    self.shared.metrics.count_publish_error();
                    if let StepError::Api(text) = e {
                        self.log_error(text);
                    }
                    self.backoff.next_delay()
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                r = recoveries.changed() => {
                    if r.is_ok() {
                        // Discovery saw the server return: our object is stale.
                        self.planner.mark_stale();
                    }
                }
            }
        }
    }

    fn log_error(&mut self, text: String) {
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!(error = %text, "NodeTopology write failed; retrying with back-off");
            self.last_error = Some(text);
        } else {
            tracing::debug!(error = %text, "NodeTopology write failed again");
        }
    }

    /// One check: read the Node when due, make sure the object exists, write the
    /// status when the hysteresis says so. Returns the time to the next check.
    async fn step(&mut self) -> Result<Duration, StepError> {
        self.read_node_if_due().await?;
        if !self.object_applied {
            self.apply_object().await?;
        }
        let current = self.shared.status();
        match self.planner.plan(self.now(), &current) {
            Plan::Heartbeat => self.write_heartbeat(&current).await,
            Plan::Full(reason) => self.write_status(current, reason).await,
            Plan::Wait(d) => Ok(d),
        }
    }

    /// The planner's clock.
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Reads the Node: until it is found, once per minimum interval; then once per
    /// heartbeat, to pick up label and address changes and a re-created Node (new uid).
    async fn read_node_if_due(&mut self) -> Result<(), StepError> {
        let every = if self.owner.is_some() {
            self.planner.hysteresis().heartbeat
        } else {
            self.planner.hysteresis().min_interval
        };
        if self.node_read_at.is_some_and(|t| t.elapsed() < every) {
            return Ok(());
        }
        match self.writer.get_node(&self.node_name).await {
            Ok(Some(node)) => {
                self.health.reachable("publisher");
                self.node_read_at = Some(Instant::now());
                if self.missing_logged {
                    tracing::info!(node = %self.node_name, "Node object found");
                    self.missing_logged = false;
                }
                let owner = owner_reference(&node);
                if owner.is_some() && owner != self.owner {
                    // New owner (first found, or the Node was re-created): rewrite the
                    // object so the garbage collector follows the right Node.
                    self.owner = owner;
                    self.object_applied = false;
                }
                let entry = NodeEntry::from_node(&node);
                self.shared.lock_state().set_identity(NodeIdentity {
                    zone: entry.zone,
                    region: entry.region,
                    addresses: node_addresses(&node),
                });
                Ok(())
            }
            Ok(None) => {
                self.health.reachable("publisher");
                self.node_read_at = Some(Instant::now());
                if !self.missing_logged {
                    tracing::warn!(
                        node = %self.node_name,
                        "Node object not found; publishing without an ownerReference until it appears"
                    );
                    self.missing_logged = true;
                }
                Ok(())
            }
            Err(e) => {
                if self.health.record_error("publisher", &e) {
                    return Err(StepError::Outage);
                }
                // Forbidden or the like (RBAC answers 403 for a moment after an API
                // server restart): publishing goes on with what is known; the read is
                // retried next interval.
                self.node_read_at = Some(Instant::now());
                let text = format!("reading Node {}: {e}", self.node_name);
                if self.last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %text, "cannot read this node's Node object; retrying next interval");
                    self.last_error = Some(text);
                }
                Ok(())
            }
        }
    }

    fn metadata(&self) -> Value {
        let mut meta = json!({ "name": self.node_name });
        if let Some(owner) = &self.owner {
            meta["ownerReferences"] = json!([owner]);
        }
        meta
    }

    async fn apply_object(&mut self) -> Result<(), StepError> {
        // The spec is empty but required by the schema. The ownerReference is also
        // repeated in every status write (see write_status) so that this manager's
        // fields stay the same set on servers older than 1.22, which do not keep the
        // main resource's and the status's managed fields apart.
        let body = json!({
            "apiVersion": super::API_VERSION,
            "kind": "NodeTopology",
            "metadata": self.metadata(),
            "spec": {},
        });
        let bytes = serde_json::to_vec(&body).map(|b| b.len()).unwrap_or(0);
        match self.writer.apply_object(&self.node_name, &body).await {
            Ok(_) => {
                self.health.reachable("publisher");
                self.shared.metrics.count_publish(REASON_OBJECT, bytes);
                self.object_applied = true;
                self.last_error = None;
                tracing::info!(
                    node = %self.node_name,
                    owner = self.owner.is_some(),
                    "NodeTopology object applied"
                );
                Ok(())
            }
            Err(e) => Err(self.classify(e, "applying the NodeTopology object")),
        }
    }

    async fn write_status(
        &mut self,
        current: NodeTopologyStatus,
        reason: &'static str,
    ) -> Result<Duration, StepError> {
        let mut status = current.clone();
        status.published_at = Some(
            jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .unwrap_or_else(|_| jiff::Timestamp::now())
                .to_string(),
        );
        let body = json!({
            "apiVersion": super::API_VERSION,
            "kind": "NodeTopology",
            "metadata": self.metadata(),
            "status": status,
        });
        let bytes = serde_json::to_vec(&body).map(|b| b.len()).unwrap_or(0);
        match self.writer.apply_status(&self.node_name, &body).await {
            Ok(_) => {
                self.health.reachable("publisher");
                self.shared.metrics.count_publish(reason, bytes);
                let now = self.now();
                let was_stale = self.planner.wrote_full(now, current);
                self.last_error = None;
                // The first write and the one after an outage are news; the rest
                // are routine and counted in linkmeter_publish_writes_total.
                if was_stale || reason == "first" {
                    tracing::info!(reason, bytes, "NodeTopology status published");
                } else {
                    tracing::debug!(reason, bytes, "NodeTopology status published");
                }
                Ok(CHECK_PERIOD)
            }
            Err(e) => {
                if let ::kube::Error::Api(s) = &e
                    && s.is_not_found()
                {
                    // Someone deleted the object: create it again on the next try.
                    self.object_applied = false;
                }
                Err(self.classify(e, "writing the NodeTopology status"))
            }
        }
    }

    /// The light heartbeat: nothing moved beyond the thresholds, so only the times are
    /// refreshed. A JSON merge patch touches just those two fields; the next full
    /// (forced) apply takes their ownership back, so no field is ever orphaned.
    async fn write_heartbeat(
        &mut self,
        current: &NodeTopologyStatus,
    ) -> Result<Duration, StepError> {
        let now = jiff::Timestamp::now();
        let now = now.round(jiff::Unit::Second).unwrap_or(now).to_string();
        let body = json!({ "status": { "publishedAt": now, "observedAt": current.observed_at } });
        let bytes = serde_json::to_vec(&body).map(|b| b.len()).unwrap_or(0);
        match self.writer.merge_status(&self.node_name, &body).await {
            Ok(_) => {
                self.health.reachable("publisher");
                self.shared.metrics.count_publish("heartbeat", bytes);
                let now = self.now();
                self.planner.wrote_heartbeat(now);
                self.last_error = None;
                tracing::debug!(bytes, "NodeTopology heartbeat published");
                Ok(CHECK_PERIOD)
            }
            Err(e) => {
                if let ::kube::Error::Api(s) = &e
                    && s.is_not_found()
                {
                    self.object_applied = false;
                    // The object is gone: the next write must be a full one.
                    self.planner.mark_stale();
                }
                Err(self.classify(e, "writing the NodeTopology heartbeat"))
            }
        }
    }

    fn classify(&mut self, e: ::kube::Error, what: &str) -> StepError {
        if self.health.record_error("publisher", &e) {
            // The write is lost with the outage; say so once more on recovery.
            self.planner.mark_stale();
            StepError::Outage
        } else {
            StepError::Api(format!("{what}: {e}"))
        }
    }
}

/// `apiVersion: v1, kind: Node, name, uid` of `node`; `None` without a uid.
pub fn owner_reference(node: &Node) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.name_any(),
        uid: node.uid()?,
        controller: Some(false),
        block_owner_deletion: Some(false),
    })
}

/// The Node's `status.addresses` in the NodeTopology shape.
pub fn node_addresses(node: &Node) -> Vec<NodeAddress> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .map(|addrs| {
            addrs
                .iter()
                .map(|a| NodeAddress {
                    type_: a.type_.clone(),
                    address: a.address.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use linkmeter_aggregator::api::{Condition, Link, Nic, SystemSummary};

    /// A status as a node of a large cluster would write it: 32 links with every
    /// field set, EC2-style node names.
    fn realistic_status(links: usize) -> NodeTopologyStatus {
        let name = |i: usize| format!("ip-10-0-{}-{}.eu-west-1.compute.internal", i / 250, i % 250);
        let mut st = NodeTopologyStatus {
            observed_at: Some("2025-01-01T12:00:00Z".into()),
            published_at: Some("2025-01-01T12:00:03Z".into()),
            window_seconds: 600,
            zone: Some("eu-west-1a".into()),
            region: Some("eu-west-1".into()),
            addresses: vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: "10.0.200.1".into(),
                },
                NodeAddress {
                    type_: "Hostname".into(),
                    address: name(999),
                },
            ],
            nics: vec![Nic {
                name: "ens5".into(),
                speed_mbps: Some(25_000),
            }],
            system: Some(SystemSummary {
                cpu_count: 16,
                cpu_utilization_permille: Some(123),
                memory_total_bytes: 64 << 30,
                memory_used_bytes: 12 << 30,
                load1_milli: 1230,
                load5_milli: 1100,
                load15_milli: 990,
                kernel_version: Some("6.1.0-18-amd64".into()),
            }),
            conditions: vec![
                Condition::new("IcmpAvailable", true, "RawSocket", ""),
                Condition::new(
                    "NvmlAvailable",
                    false,
                    "LibraryNotFound",
                    "libnvidia-ml.so.1 not found",
                ),
                Condition::new("SystemAvailable", true, "Read", ""),
            ],
            links: (0..links)
                .map(|i| Link {
                    peer: name(i),
                    address: Some(format!("10.0.{}.{}", i / 250, i % 250)),
                    rtt_p50_us: Some(412),
                    rtt_p90_us: Some(587),
                    rtt_p99_us: Some(1230),
                    jitter_us: Some(41),
                    loss_ppm: 0,
                    samples: 180,
                    throughput_tx_kbps: Some(9_410_000),
                    throughput_rx_kbps: Some(9_380_000),
                    throughput_measured_at: Some("2025-01-01T11:31:07Z".into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        st.normalize();
        st
    }

    /// Prints the size of one write (the report quotes it); bounded so a schema change
    /// that bloats the object shows up here.
    #[test]
    fn a_status_with_32_links_is_a_few_kilobytes() {
        let status = realistic_status(32);
        let body = json!({
            "apiVersion": "linkmeter.dev/v1alpha1",
            "kind": "NodeTopology",
            "metadata": {"name": "ip-10-0-200-1.eu-west-1.compute.internal", "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": "ip-10-0-200-1.eu-west-1.compute.internal",
                "uid": "6f1c3f5e-8d2b-4c1e-9a57-0c2f1f3b9d11", "controller": false,
                "blockOwnerDeletion": false}]},
            "status": status,
        });
        let status_bytes = serde_json::to_vec(&status).expect("serialises").len();
        let body_bytes = serde_json::to_vec(&body).expect("serialises").len();
        println!(
            "NodeTopology with 32 links: status {status_bytes} bytes, apply body {body_bytes} bytes \
             ({} bytes per link)",
            (serde_json::to_vec(&realistic_status(33))
                .expect("serialises")
                .len()
                - status_bytes)
        );
        assert!(body_bytes < 16 * 1024, "{body_bytes} bytes");
    }

    /// A fake API server: records each request, answers as told.
    #[derive(Default)]
    struct FakeApi {
        /// `(request, body)` in order.
        log: std::sync::Mutex<Vec<(&'static str, Value)>>,
        /// Writes answer 503, as a server that lost etcd does; reads still work.
        writes_down: std::sync::atomic::AtomicBool,
        /// Status writes answer 404 until the object is applied again.
        gone: std::sync::atomic::AtomicBool,
    }

    fn api_error(code: u16, reason: &str) -> ::kube::Error {
        let status =
            serde_json::from_value(json!({"status": "Failure", "code": code, "reason": reason}))
                .expect("a Status");
        ::kube::Error::Api(Box::new(status))
    }

    impl FakeApi {
        fn answer(&self, what: &'static str, body: Value) -> Result<(), ::kube::Error> {
            use std::sync::atomic::Ordering::SeqCst;
            if what != "get_node" && self.writes_down.load(SeqCst) {
                return Err(api_error(503, "ServiceUnavailable"));
            }
            self.log.lock().expect("log").push((what, body));
            match what {
                "apply_object" => self.gone.store(false, SeqCst),
                "apply_status" | "merge_status" if self.gone.load(SeqCst) => {
                    return Err(api_error(404, "NotFound"));
                }
                _ => {}
            }
            Ok(())
        }

        /// The requests since the last call.
        fn take(&self) -> Vec<&'static str> {
            let mut log = self.log.lock().expect("log");
            log.drain(..).map(|(what, _)| what).collect()
        }
    }

    impl TopologyWriter for Arc<FakeApi> {
        async fn get_node(&self, name: &str) -> Result<Option<Node>, ::kube::Error> {
            self.answer("get_node", Value::Null)?;
            Ok(Some(Node {
                metadata: ObjectMeta {
                    name: Some(name.into()),
                    uid: Some("uid-1".into()),
                    ..Default::default()
                },
                ..Default::default()
            }))
        }
        async fn apply_object(&self, _: &str, body: &Value) -> Result<(), ::kube::Error> {
            self.answer("apply_object", body.clone())
        }
        async fn apply_status(&self, _: &str, body: &Value) -> Result<(), ::kube::Error> {
            self.answer("apply_status", body.clone())
        }
        async fn merge_status(&self, _: &str, body: &Value) -> Result<(), ::kube::Error> {
            self.answer("merge_status", body.clone())
        }
    }

    /// A publisher for node `n1` (minimum interval 1 s, heartbeat 10 s) on a fake API.
    fn publisher() -> (Publisher<Arc<FakeApi>>, Arc<FakeApi>) {
        use clap::Parser;
        #[derive(Parser)]
        struct Run {
            #[command(flatten)]
            args: crate::daemon::RunArgs,
        }
        let argv = [
            "run",
            "--node-name=n1",
            "--kube",
            "--publish-min-interval=1s",
            "--publish-heartbeat=10s",
        ];
        let args = Run::try_parse_from(argv).expect("parses").args;
        let config = crate::daemon::RunConfig::resolve(&args).expect("valid");
        let settings = config.kube.clone().expect("--kube");
        let api = Arc::new(FakeApi::default());
        let shared = Arc::new(Shared::new(config));
        let p = Publisher::new(shared, api.clone(), Arc::new(ApiHealth::new()), &settings);
        (p, api)
    }

    async fn step_ok(p: &mut Publisher<Arc<FakeApi>>) -> Duration {
        match p.step().await {
            Ok(wait) => wait,
            Err(StepError::Outage) => panic!("outage"),
            Err(StepError::Api(e)) => panic!("{e}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn first_write_then_quiet_then_light_heartbeats_then_a_full_refresh() {
        let (mut p, api) = publisher();
        step_ok(&mut p).await;
        assert_eq!(api.take(), ["get_node", "apply_object", "apply_status"]);
        step_ok(&mut p).await;
        assert!(api.take().is_empty(), "nothing changed: no write");
        for n in 1..FULL_REFRESH_EVERY {
            tokio::time::advance(Duration::from_secs(10)).await;
            step_ok(&mut p).await;
            let got = api.take();
            assert_eq!(got.last(), Some(&"merge_status"), "heartbeat {n}: {got:?}");
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        step_ok(&mut p).await;
        assert_eq!(
            api.take().last(),
            Some(&"apply_status"),
            "every {FULL_REFRESH_EVERY}th heartbeat is full"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_object_carries_the_node_as_owner() {
        let (mut p, api) = publisher();
        step_ok(&mut p).await;
        let log = api.log.lock().expect("log");
        let (_, object) = log
            .iter()
            .find(|(w, _)| *w == "apply_object")
            .expect("applied");
        assert_eq!(object["metadata"]["ownerReferences"][0]["uid"], "uid-1");
        assert_eq!(object["apiVersion"], super::super::API_VERSION);
        let (_, status) = log
            .iter()
            .find(|(w, _)| *w == "apply_status")
            .expect("written");
        assert!(status["status"]["publishedAt"].is_string(), "{status}");
    }

    #[tokio::test(start_paused = true)]
    async fn after_an_outage_the_next_write_is_a_full_one_at_once() {
        use std::sync::atomic::Ordering::SeqCst;
        let (mut p, api) = publisher();
        step_ok(&mut p).await;
        api.take();
        api.writes_down.store(true, SeqCst);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(matches!(p.step().await, Err(StepError::Outage)));
        assert!(
            p.planner.is_stale(),
            "the lost heartbeat makes the object stale"
        );
        api.writes_down.store(false, SeqCst);
        // Back within the heartbeat, with nothing changed: still a full write.
        tokio::time::advance(Duration::from_secs(2)).await;
        step_ok(&mut p).await;
        assert_eq!(api.take().last(), Some(&"apply_status"));
        assert!(!p.planner.is_stale());
    }

    #[tokio::test(start_paused = true)]
    async fn a_deleted_object_is_applied_again_before_its_status() {
        use std::sync::atomic::Ordering::SeqCst;
        let (mut p, api) = publisher();
        step_ok(&mut p).await;
        api.take();
        api.gone.store(true, SeqCst);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(
            matches!(p.step().await, Err(StepError::Api(_))),
            "the heartbeat meets a 404"
        );
        assert_eq!(api.take(), ["get_node", "merge_status"]);
        tokio::time::advance(Duration::from_secs(1)).await;
        step_ok(&mut p).await;
        assert_eq!(api.take(), ["apply_object", "apply_status"]);
    }

    #[test]
    fn owner_reference_names_the_node_and_blocks_nothing() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                uid: Some("1234".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let v = serde_json::to_value(owner_reference(&node)).expect("serialises");
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "1234",
                   "controller": false, "blockOwnerDeletion": false})
        );
        let no_uid = Node::default();
        assert!(owner_reference(&no_uid).is_none());
    }
}
