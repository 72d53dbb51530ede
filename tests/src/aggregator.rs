//! Driving `linkmeter-aggregator run` from tests, and reading back what it wrote: the
//! ClusterTopology, the Diktyo NetworkTopology and the leader-election Lease, all
//! through the admin's credentials (the aggregator's own are under test).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use linkmeter_aggregator::api::{ClusterTopology, CostInfo, NetworkTopology, NetworkTopologySpec};
use serde_json::Value;

use crate::kube_env::{HttpResponse, KubeEnv, curl};

/// Namespace of the aggregator's Deployment, ServiceAccount and Lease.
pub const NAMESPACE: &str = "linkmeter";
/// The aggregator's ServiceAccount (manifests/aggregator/serviceaccount.yaml).
pub const SERVICE_ACCOUNT: &str = "linkmeter-aggregator";
/// The Lease the replicas compete for (`run --lease-name` default).
pub const LEASE_NAME: &str = "linkmeter-aggregator";
/// Where the NetworkTopology goes by default.
pub const NT_NAMESPACE: &str = "default";
/// The NetworkTopology's default name.
pub const NT_NAME: &str = "nt-default";
/// Every CRD the aggregator reads or writes, as `kubectl wait` names them.
pub const CRDS: [&str; 3] = [
    "crd/nodetopologies.linkmeter.dev",
    "crd/clustertopologies.linkmeter.dev",
    "crd/networktopologies.networktopology.diktyo.x-k8s.io",
];

/// `manifests/` in this repository.
pub fn manifests_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

/// Admin server-side apply of the base (`-k manifests/`) and of the Diktyo CRD component,
/// then waits until every CRD in [`CRDS`] is established.
pub fn apply_manifests(kube: &KubeEnv, field_manager: &str) -> Result<String> {
    let base = manifests_dir();
    let component = base.join("components/diktyo-crd");
    let mut out = String::new();
    for dir in [&base, &component] {
        let dir = dir.to_str().context("manifests path is not UTF-8")?;
        out.push_str(&kube.kubectl_ok(&[
            "apply",
            "--server-side",
            &format!("--field-manager={field_manager}"),
            "-k",
            dir,
        ])?);
    }
    wait_for_crds(kube, &CRDS)?;
    Ok(out)
}

/// `kubectl wait --for=condition=Established` on each of `crds` (`crd/NAME`).
pub fn wait_for_crds(kube: &KubeEnv, crds: &[&str]) -> Result<()> {
    let mut args = vec!["wait", "--for=condition=Established", "--timeout=30s"];
    args.extend_from_slice(crds);
    kube.kubectl_ok(&args)?;
    Ok(())
}

/// `linkmeter-aggregator run` against the server in `kubeconfig`, as `identity`, serving
/// HTTP on `listen`, recomputing at most every `interval`. Lease and objects at their
/// defaults (Lease `linkmeter/linkmeter-aggregator`, `cluster`, `default/nt-default`).
pub fn run_command(
    kubeconfig: &Path,
    identity: &str,
    listen: SocketAddr,
    interval: Duration,
) -> Command {
    let mut cmd = Command::new(crate::bins::aggregator());
    cmd.arg("run")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--interval", &format!("{}ms", interval.as_millis())])
        .args(["--identity", identity])
        .args(["--lease-namespace", NAMESPACE])
        .args(["--listen", &listen.to_string()])
        .env("LINKMETER_AGGREGATOR_LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        // The flags say everything; keep the test's own environment out.
        .env_remove("KUBECONFIG")
        .env_remove("POD_NAME")
        .env_remove("POD_NAMESPACE");
    cmd
}

/// [`run_command`] with the extender on `extender`, without leader election and with
/// `--label-nodes`, started and waited for until `/readyz` answers on `listen`.
pub fn start_with_extender(
    kubeconfig: &Path,
    identity: &str,
    listen: SocketAddr,
    extender: SocketAddr,
    interval: Duration,
) -> Result<crate::agent::AgentProcess> {
    let mut cmd = run_command(kubeconfig, identity, listen, interval);
    cmd.args(["--leader-election", "false", "--label-nodes"])
        .args(["--extender-listen", &extender.to_string()]);
    let proc = crate::agent::AgentProcess::spawn(cmd)?;
    let ready = crate::agent::wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        crate::agent::http_get(None, &format!("http://{listen}/readyz"), None).ok()
    });
    if ready.is_none() {
        bail!("the aggregator never became ready:\n{}", proc.log());
    }
    Ok(proc)
}

/// GET `path` (under the server URL) as admin: `Ok(None)` on 404, the JSON otherwise.
pub fn admin_get(kube: &KubeEnv, path: &str) -> Result<Option<Value>> {
    let resp = kube.curl_admin(&[], &format!("{}{path}", kube.server_url()))?;
    match resp.status {
        200 => Ok(Some(
            serde_json::from_str(&resp.body).with_context(|| format!("GET {path}: not JSON"))?,
        )),
        404 => Ok(None),
        other => bail!("GET {path}: HTTP {other}: {}", resp.body),
    }
}

/// `method path` (under the server URL) with `token`, and with a body of the given
/// content type when one is given.
pub fn request(
    kube: &KubeEnv,
    token: &str,
    method: &str,
    path: &str,
    body: Option<(&str, &Value)>,
) -> Result<HttpResponse> {
    let mut extra: Vec<String> = vec!["-X".into(), method.into()];
    if let Some((content_type, body)) = body {
        extra.extend([
            "-H".into(),
            format!("Content-Type: {content_type}"),
            "--data".into(),
            body.to_string(),
        ]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    curl(token, &extra, &format!("{}{path}", kube.server_url()))
}

/// [`request`] with `token`, which must be refused: HTTP 403 naming `user`.
pub fn expect_denied(
    kube: &KubeEnv,
    token: &str,
    user: &str,
    method: &str,
    path: &str,
    body: Option<(&str, &Value)>,
) -> Result<()> {
    let resp = request(kube, token, method, path, body)?;
    ensure!(
        resp.status == 403 && resp.body.contains(user),
        "{method} {path}: HTTP {}, want 403 for {user}: {}",
        resp.status,
        resp.body
    );
    println!("denied:  {method} {path}");
    Ok(())
}

/// Path of the leader-election Lease.
pub fn lease_path() -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{NAMESPACE}/leases/{LEASE_NAME}")
}

/// Path of the ClusterTopology `name`.
pub fn cluster_topology_path(name: &str) -> String {
    format!("/apis/linkmeter.dev/v1alpha1/clustertopologies/{name}")
}

/// Path of the NetworkTopology `ns/name`.
pub fn network_topology_path(ns: &str, name: &str) -> String {
    format!(
        "/apis/networktopology.diktyo.x-k8s.io/v1alpha1/namespaces/{ns}/networktopologies/{name}"
    )
}

/// The Lease's `spec.holderIdentity`, `None` when the Lease is missing or held by nobody.
pub fn lease_holder(kube: &KubeEnv) -> Result<Option<String>> {
    Ok(admin_get(kube, &lease_path())?.and_then(|l| {
        l.pointer("/spec/holderIdentity")
            .and_then(Value::as_str)
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
    }))
}

/// The ClusterTopology `name`, parsed, with its raw JSON.
pub fn cluster_topology(kube: &KubeEnv, name: &str) -> Result<Option<(ClusterTopology, Value)>> {
    admin_get(kube, &cluster_topology_path(name))?
        .map(|v| {
            let parsed = serde_json::from_value(v.clone())
                .with_context(|| format!("ClusterTopology {name} does not parse: {v}"))?;
            Ok((parsed, v))
        })
        .transpose()
}

/// The NetworkTopology `ns/name`, parsed, with its raw JSON.
pub fn network_topology(
    kube: &KubeEnv,
    ns: &str,
    name: &str,
) -> Result<Option<(NetworkTopology, Value)>> {
    admin_get(kube, &network_topology_path(ns, name))?
        .map(|v| {
            let parsed = serde_json::from_value(v.clone())
                .with_context(|| format!("NetworkTopology {ns}/{name} does not parse: {v}"))?;
            Ok((parsed, v))
        })
        .transpose()
}

/// The field managers recorded on an object (`metadata.managedFields[].manager`).
pub fn managers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["manager"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the ordering the NetworkOverhead plugin relies on (it binary-searches):
/// `topologyList` by `topologyKey`, every `originList` by `origin`, every `costList` by
/// `destination`, each strictly (no duplicates).
pub fn check_sorted(spec: &NetworkTopologySpec) -> Result<()> {
    fn strictly_sorted<'a>(what: &str, keys: impl Iterator<Item = &'a str>) -> Result<()> {
        let keys: Vec<&str> = keys.collect();
        ensure!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "{what} not strictly sorted: {keys:?}"
        );
        Ok(())
    }
    for w in &spec.weights {
        strictly_sorted(
            &format!("weights[{}].topologyList", w.name),
            w.topology_list.iter().map(|t| t.topology_key.as_str()),
        )?;
        for t in &w.topology_list {
            strictly_sorted(
                &format!("{}: originList", t.topology_key),
                t.origin_list.iter().map(|o| o.origin.as_str()),
            )?;
            for o in &t.origin_list {
                strictly_sorted(
                    &format!("{} {}: costList", t.topology_key, o.origin),
                    o.cost_list.iter().map(|c| c.destination.as_str()),
                )?;
            }
        }
    }
    Ok(())
}

/// `(origin, destination) → networkCost` for `topology_key` in the weights named
/// `weights_name`; empty when either is absent.
pub fn costs(
    spec: &NetworkTopologySpec,
    weights_name: &str,
    topology_key: &str,
) -> BTreeMap<(String, String), i64> {
    cost_entries(spec, weights_name, topology_key, |c| Some(c.network_cost))
}

/// `(origin, destination) → bandwidthCapacity` for `topology_key`, where written.
pub fn bandwidths(
    spec: &NetworkTopologySpec,
    weights_name: &str,
    topology_key: &str,
) -> BTreeMap<(String, String), String> {
    cost_entries(spec, weights_name, topology_key, |c| {
        c.bandwidth_capacity.clone()
    })
}

/// `(origin, destination) → pick(entry)` over the `costList` entries of `topology_key`
/// in the weights named `weights_name`, leaving out entries `pick` has nothing for.
fn cost_entries<T>(
    spec: &NetworkTopologySpec,
    weights_name: &str,
    topology_key: &str,
    pick: impl Fn(&CostInfo) -> Option<T>,
) -> BTreeMap<(String, String), T> {
    spec.weights
        .iter()
        .filter(|w| w.name == weights_name)
        .flat_map(|w| &w.topology_list)
        .filter(|t| t.topology_key == topology_key)
        .flat_map(|t| &t.origin_list)
        .flat_map(|o| {
            o.cost_list
                .iter()
                .filter_map(|c| Some(((o.origin.clone(), c.destination.clone()), pick(c)?)))
        })
        .collect()
}

/// A Quantity as the aggregator writes bandwidths (`38100k`, or a plain integer), in
/// bits per second; `None` for any other form.
pub fn quantity_bps(q: &str) -> Option<u64> {
    let (digits, scale) = match q.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match q.strip_suffix('M') {
            Some(d) => (d, 1_000_000),
            None => (q, 1),
        },
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// Sum of every sample of `name` whose labels include all of `labels` (a counter split
/// by other labels, e.g. by object), from a Prometheus text scrape.
pub fn sum_samples(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    crate::agent::samples(text, name, labels)
        // From +0.0: an empty f64 sum is -0.0, which prints oddly.
        .fold(0.0, |acc, v| acc + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_the_aggregator_form_parse() {
        for (q, want) in [
            ("38100k", Some(38_100_000)),
            ("12M", Some(12_000_000)),
            ("999", Some(999)),
            ("1.5G", None),
        ] {
            assert_eq!(quantity_bps(q), want, "{q}");
        }
    }

    #[test]
    fn sums_a_counter_over_its_other_labels() {
        let t = "# HELP w W.\nw{object=\"a\",result=\"ok\"} 2\nw{object=\"b\",result=\"ok\"} 3\n\
                 w{object=\"a\",result=\"error\"} 7\n";
        assert_eq!(sum_samples(t, "w", &[("result", "ok")]), 5.0);
        assert_eq!(sum_samples(t, "w", &[]), 12.0);
        assert_eq!(sum_samples(t, "x", &[]), 0.0);
    }

    #[test]
    fn unsorted_lists_are_refused() {
        use linkmeter_aggregator::api::{OriginInfo, TopologyInfo, WeightInfo};
        let cost = |d: &str| CostInfo {
            destination: d.to_owned(),
            network_cost: 1,
            ..CostInfo::default()
        };
        let mut spec = NetworkTopologySpec {
            configmap_name: "x".to_owned(),
            weights: vec![WeightInfo {
                name: "UserDefined".to_owned(),
                topology_list: vec![TopologyInfo {
                    topology_key: "k".to_owned(),
                    origin_list: vec![OriginInfo {
                        origin: "a".to_owned(),
                        cost_list: vec![cost("b"), cost("c")],
                    }],
                }],
            }],
        };
        assert!(check_sorted(&spec).is_ok());
        spec.weights[0].topology_list[0].origin_list[0]
            .cost_list
            .reverse();
        assert!(check_sorted(&spec).is_err());
        assert_eq!(costs(&spec, "UserDefined", "k").len(), 2);
        assert!(costs(&spec, "Other", "k").is_empty());
    }
}
