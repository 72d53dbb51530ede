//! The controller's Prometheus metrics (prefix `linkmeter_aggregator_`). Every label
//! value comes from a fixed set, or (skip reasons) is checked and capped, so a hostile
//! NodeTopology cannot grow the series count.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::api::ClusterTopologyStatus;

/// Labels of `writes_total`: kind and result, both from fixed sets.
type WriteLabels = [(&'static str, &'static str); 2];
/// Labels of `extender_requests_total`: verb and result, both from fixed sets.
type VerbLabels = [(&'static str, &'static str); 2];
/// One label with a value from a fixed set.
type StaticLabel = [(&'static str, &'static str); 1];
/// The `reason` label of `skipped_objects_total`.
type ReasonLabel = [(&'static str, String); 1];

/// Distinct skip reasons kept as their own series; later ones count as `other`.
const MAX_REASONS: usize = 32;

/// Every metric, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    nodes: Gauge,
    stale_nodes: Gauge,
    zones: Gauge,
    node_topologies: Gauge,
    malformed_objects: Gauge,
    compute_duration: Histogram,
    median_error: Gauge<f64, AtomicU64>,
    p90_error: Gauge<f64, AtomicU64>,
    writes: Family<WriteLabels, Counter>,
    skipped: Family<ReasonLabel, Counter>,
    reasons: Mutex<BTreeSet<String>>,
    is_leader: Gauge,
    computations: Counter,
    last_computation: Gauge<f64, AtomicU64>,
    watch_errors: Family<StaticLabel, Counter>,
    extender_requests: Family<VerbLabels, Counter>,
    extender_duration: Family<StaticLabel, Histogram, fn() -> Histogram>,
    placed_pods: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics at zero, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("linkmeter_aggregator");
        let nodes = Gauge::default();
        let stale_nodes = Gauge::default();
        let zones = Gauge::default();
        let node_topologies = Gauge::default();
        let malformed_objects = Gauge::default();
        // 5 ms … 20 s: a handful of nodes to well past 5,000.
        let compute_duration = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        let median_error = Gauge::<f64, AtomicU64>::default();
        let p90_error = Gauge::<f64, AtomicU64>::default();
        let writes = Family::<WriteLabels, Counter>::default();
        let skipped = Family::<ReasonLabel, Counter>::default();
        let is_leader = Gauge::default();
        let computations = Counter::default();
        let last_computation = Gauge::<f64, AtomicU64>::default();
        let watch_errors = Family::<StaticLabel, Counter>::default();
        // Every label value known in advance is served from the start, at 0: a query
        // then sees a flat line, not a missing series, and a rate() works from the
        // first scrape.
        for kind in ["ClusterTopology", "NetworkTopology"] {
            for result in ["ok", "error", "unchanged"] {
                let _ = writes.get_or_create(&[("kind", kind), ("result", result)]);
            }
        }
        for kind in ["NodeBandwidth", "NodeLabel"] {
            for result in ["ok", "error"] {
                let _ = writes.get_or_create(&[("kind", kind), ("result", result)]);
            }
        }
        let extender_requests = Family::<VerbLabels, Counter>::default();
        let extender_duration =
            Family::<StaticLabel, Histogram, fn() -> Histogram>::new_with_constructor(
                // 100 µs … 3.3 s: a three-node cluster to a 5,000-node request with whole Nodes.
                || Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            );
        for verb in ["filter", "prioritize"] {
            for result in ["ok", "error"] {
                let _ = extender_requests.get_or_create(&[("verb", verb), ("result", result)]);
            }
            let _ = extender_duration.get_or_create(&[("verb", verb)]);
        }
        let placed_pods = Gauge::default();
        for resource in ["Node", "NodeTopology", "Pod"] {
            let _ = watch_errors.get_or_create(&[("resource", resource)]);
        }
        let _ = skipped.get_or_create(&[("reason", "malformed".to_owned())]);
        registry.register("nodes", "Nodes in the last computed view", nodes.clone());
        registry.register(
            "stale_nodes",
            "Nodes without a fresh NodeTopology in the last computed view",
            stale_nodes.clone(),
        );
        registry.register("zones", "Zones in the last computed view", zones.clone());
        registry.register(
            "node_topologies",
            "NodeTopologies held in the watch cache",
            node_topologies.clone(),
        );
        registry.register(
            "malformed_objects",
            "NodeTopologies in the watch cache that could not be read",
            malformed_objects.clone(),
        );
        registry.register(
            "compute_duration_seconds",
            "Wall time of one computation of the cluster view",
            compute_duration.clone(),
        );
        registry.register(
            "model_median_error_ratio",
            "Median relative RTT error of the network coordinates on held-out measured pairs",
            median_error.clone(),
        );
        registry.register(
            "model_p90_error_ratio",
            "90th percentile relative RTT error of the network coordinates on held-out pairs",
            p90_error.clone(),
        );
        registry.register(
            "writes",
            "Writes of the ClusterTopology and NetworkTopology by result \
             (unchanged: content as last written, nothing sent)",
            writes.clone(),
        );
        registry.register(
            "skipped_objects",
            "Input skipped or clipped, by reason (malformed: counted once per object \
             version; other reasons: summed over computations)",
            skipped.clone(),
        );
        registry.register(
            "is_leader",
            "1 while this replica holds the Lease and writes",
            is_leader.clone(),
        );
        registry.register(
            "computations",
            "Computations of the cluster view",
            computations.clone(),
        );
        registry.register(
            "last_computation_timestamp_seconds",
            "Unix time of the last computation",
            last_computation.clone(),
        );
        registry.register(
            "watch_errors",
            "Errors of the Node and NodeTopology watches (each is retried with backoff)",
            watch_errors.clone(),
        );
        registry.register(
            "extender_requests",
            "kube-scheduler extender requests by verb and result (error: the request could \
             not be served and was answered with an error)",
            extender_requests.clone(),
        );
        registry.register(
            "extender_request_duration_seconds",
            "Time to answer one extender request, reading the body included",
            extender_duration.clone(),
        );
        registry.register(
            "placed_pods",
            "Pods bound to a node and not finished, in the watch cache",
            placed_pods.clone(),
        );
        Metrics {
            extender_requests,
            extender_duration,
            placed_pods,
            registry,
            nodes,
            stale_nodes,
            zones,
            node_topologies,
            malformed_objects,
            compute_duration,
            median_error,
            p90_error,
            writes,
            skipped,
            reasons: Mutex::new(BTreeSet::from(["malformed".to_owned()])),
            is_leader,
            computations,
            last_computation,
            watch_errors,
        }
    }

    /// The registry, for encoding.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// One computation finished: its figures, duration and skip counts.
    pub fn computed(&self, status: &ClusterTopologyStatus, seconds: f64, unix_time: f64) {
        self.computations.inc();
        self.compute_duration.observe(seconds);
        self.last_computation.set(unix_time);
        self.nodes.set(i64::from(status.node_count));
        self.stale_nodes.set(i64::from(status.stale_node_count));
        self.zones.set(i64::from(status.zone_count));
        let model = status.model.as_ref();
        let ratio = |p: Option<u32>| p.map_or(f64::NAN, |p| f64::from(p) / 1000.0);
        self.median_error
            .set(ratio(model.and_then(|m| m.median_error_permille)));
        self.p90_error
            .set(ratio(model.and_then(|m| m.p90_error_permille)));
        for s in &status.skipped {
            self.skip(&s.reason, s.count);
        }
    }

    /// `count` input items skipped for `reason`.
    pub fn skip(&self, reason: &str, count: u64) {
        let reason = self.bounded_reason(reason);
        self.skipped
            .get_or_create(&[("reason", reason)])
            .inc_by(count);
    }

    fn bounded_reason(&self, reason: &str) -> String {
        let plain = !reason.is_empty()
            && reason.len() <= 40
            && reason
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain {
            return "other".to_owned();
        }
        let mut seen = self.reasons.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(reason) || seen.len() < MAX_REASONS {
            seen.insert(reason.to_owned());
            reason.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// One extender request answered: `verb` is `filter` or `prioritize`.
    pub fn extender_request(&self, verb: &'static str, ok: bool, seconds: f64) {
        let result = if ok { "ok" } else { "error" };
        self.extender_requests
            .get_or_create(&[("verb", verb), ("result", result)])
            .inc();
        self.extender_duration
            .get_or_create(&[("verb", verb)])
            .observe(seconds);
    }

    /// Pods in the watch cache that are bound and not finished.
    pub fn set_placed_pods(&self, n: usize) {
        self.placed_pods.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// A write's result: `kind` is `ClusterTopology` or `NetworkTopology`, `result` one
    /// of `ok`, `error`, `unchanged`.
    pub fn write(&self, kind: &'static str, result: &'static str) {
        self.writes
            .get_or_create(&[("kind", kind), ("result", result)])
            .inc();
    }

    /// Computations so far.
    #[cfg(test)]
    pub fn computations(&self) -> u64 {
        self.computations.get()
    }

    /// Whether this replica writes.
    pub fn set_leader(&self, leader: bool) {
        self.is_leader.set(i64::from(leader));
    }

    /// The caches' sizes.
    pub fn cached(&self, topologies: usize, malformed: usize) {
        self.node_topologies
            .set(i64::try_from(topologies).unwrap_or(i64::MAX));
        self.malformed_objects
            .set(i64::try_from(malformed).unwrap_or(i64::MAX));
    }

    /// A watch failed (`resource` is `Node` or `NodeTopology`).
    pub fn watch_error(&self, resource: &'static str) {
        self.watch_errors
            .get_or_create(&[("resource", resource)])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use linkmeter_runtime::metrics_http::encode_text;

    use super::*;
    use crate::api::{ModelQuality, SkippedCount};

    #[test]
    fn a_computation_sets_the_figures() {
        let m = Metrics::new();
        let status = ClusterTopologyStatus {
            node_count: 4,
            stale_node_count: 1,
            zone_count: 3,
            model: Some(ModelQuality {
                median_error_permille: Some(42),
                p90_error_permille: Some(250),
                ..Default::default()
            }),
            skipped: vec![SkippedCount {
                reason: "unknownPeer".into(),
                count: 3,
            }],
            ..Default::default()
        };
        m.computed(&status, 0.02, 1.0e9);
        m.write("ClusterTopology", "ok");
        m.set_leader(true);
        m.skip("malformed", 1);
        let text = encode_text(m.registry()).expect("encodes");
        for want in [
            "linkmeter_aggregator_nodes 4",
            "linkmeter_aggregator_stale_nodes 1",
            "linkmeter_aggregator_zones 3",
            "linkmeter_aggregator_model_median_error_ratio 0.042",
            "linkmeter_aggregator_model_p90_error_ratio 0.25",
            "linkmeter_aggregator_computations_total 1",
            "linkmeter_aggregator_is_leader 1",
            "linkmeter_aggregator_writes_total{kind=\"ClusterTopology\",result=\"ok\"} 1",
            "linkmeter_aggregator_skipped_objects_total{reason=\"unknownPeer\"} 3",
            "linkmeter_aggregator_skipped_objects_total{reason=\"malformed\"} 1",
            "# TYPE linkmeter_aggregator_writes_total counter",
            "linkmeter_aggregator_compute_duration_seconds_count 1",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn skip_reasons_are_bounded() {
        let m = Metrics::new();
        m.skip("has space", 1);
        m.skip(&"x".repeat(41), 1);
        for i in 0..(MAX_REASONS + 5) {
            m.skip(&format!("r{i}"), 1);
        }
        let text = encode_text(m.registry()).expect("encodes");
        let series = text
            .lines()
            .filter(|l| l.starts_with("linkmeter_aggregator_skipped_objects_total{"))
            .count();
        // `malformed` (served from the start) is one of the MAX_REASONS.
        assert_eq!(series, MAX_REASONS + 1, "{text}");
        assert!(text.contains("reason=\"other\"} 8"), "{text}");
    }
}
