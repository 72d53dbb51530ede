//! A [`TopologyWriter`] that records what it is asked to write, for unit tests.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::api::{ClusterTopology, NetworkTopology};

use super::args::Targets;
use super::writer::TopologyWriter;

/// Records every write; fails the ones queued in `failures` (kind, HTTP code).
#[derive(Debug, Default)]
pub(crate) struct FakeWriter {
    /// Every write: the kind constant and the body.
    pub calls: Mutex<Vec<(&'static str, Value)>>,
    /// Failures to inject: the next write of that kind fails with that HTTP code.
    pub failures: Mutex<Vec<(&'static str, u16)>>,
}

impl FakeWriter {
    /// Makes the next write of `kind` fail with `code`.
    pub fn fail_next(&self, kind: &'static str, code: u16) {
        self.failures.lock().expect("lock").push((kind, code));
    }

    /// The kinds written, in order.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.calls
            .lock()
            .expect("lock")
            .iter()
            .map(|c| c.0)
            .collect()
    }

    /// The last body written of `kind`.
    pub fn last(&self, kind: &str) -> Option<Value> {
        let calls = self.calls.lock().expect("lock");
        calls
            .iter()
            .rev()
            .find(|c| c.0 == kind)
            .map(|c| c.1.clone())
    }

    fn record(&self, kind: &'static str, body: Value) -> Result<(), kube::Error> {
        self.calls.lock().expect("lock").push((kind, body));
        let mut failures = self.failures.lock().expect("lock");
        if let Some(i) = failures.iter().position(|f| f.0 == kind) {
            let (_, code) = failures.remove(i);
            return Err(kube::Error::Api(
                kube::core::Status::failure("injected", "Injected")
                    .with_code(code)
                    .boxed(),
            ));
        }
        Ok(())
    }
}

/// The ClusterTopology object apply.
pub(crate) const OBJECT: &str = "cluster-object";
/// The ClusterTopology status apply.
pub(crate) const STATUS: &str = "cluster-status";
/// The NetworkTopology apply.
pub(crate) const NETWORK: &str = "network";

impl TopologyWriter for Arc<FakeWriter> {
    async fn apply_cluster_topology(&self, obj: &ClusterTopology) -> Result<(), kube::Error> {
        self.record(OBJECT, serde_json::to_value(obj).expect("serialises"))
    }
    async fn apply_cluster_topology_status(
        &self,
        obj: &ClusterTopology,
    ) -> Result<(), kube::Error> {
        self.record(STATUS, serde_json::to_value(obj).expect("serialises"))
    }
    async fn apply_network_topology(&self, obj: &NetworkTopology) -> Result<(), kube::Error> {
        self.record(NETWORK, serde_json::to_value(obj).expect("serialises"))
    }
}

/// The default object names, with or without the NetworkTopology.
pub(crate) fn targets(network: bool) -> Targets {
    Targets {
        cluster_topology: "cluster".into(),
        network_topology: network.then(|| ("default".to_owned(), "nt-default".to_owned())),
        weights_name: "UserDefined".into(),
        configmap_name: "linkmeter-aggregator".into(),
    }
}
