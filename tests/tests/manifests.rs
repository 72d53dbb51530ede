//! The deployment manifests (`manifests/`) against a real kube-apiserver 1.20:
//!
//! - every YAML file is listed in its kustomization, and nothing listed is missing;
//! - the base renders and applies with server-side apply (which validates every field
//!   against the server's schema), and reading the objects back gives what was written;
//!   the DaemonSet's pod template passes pod admission (dry run);
//! - the agent's and the aggregator's ServiceAccounts can do exactly what each needs and
//!   no more, checked by real requests with their tokens and by `kubectl auth can-i`
//!   impersonation;
//! - the aggregator's Deployment runs under the restricted Pod Security profile, its pod
//!   template passes admission (dry run);
//! - the Diktyo NetworkTopology CRD is a component of its own, outside the base;
//! - the ServiceMonitor lives apart from the base and renders on its own.
//!
//! Cluster tests fail when the environment cannot start; `LINKMETER_SKIP_KUBE=1` skips
//! them (see `KubeEnv::start_or_skip`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use linkmeter_tests::aggregator::{expect_denied, manifests_dir, request};
use linkmeter_tests::kube_env::{self, KubeEnv, checked_output, curl};
use serde_json::{Value, json};

const NAMESPACE: &str = "linkmeter";
const AGENT: &str = "linkmeter-agent";
const SA_USER: &str = "system:serviceaccount:linkmeter:linkmeter-agent";
const IMAGE: &str = "ghcr.io/linkmeter/linkmeter-agent:0.1.0";
const AGGREGATOR: &str = "linkmeter-aggregator";
const AGGREGATOR_USER: &str = "system:serviceaccount:linkmeter:linkmeter-aggregator";
const AGGREGATOR_IMAGE: &str = "ghcr.io/linkmeter/linkmeter-aggregator:0.1.0";
/// The Diktyo CRD component (`kubectl apply -k manifests/components/diktyo-crd/`).
const DIKTYO_COMPONENT: &str = "components/diktyo-crd";
const DIKTYO_CRD: &str = "networktopologies.networktopology.diktyo.x-k8s.io";
/// Where the aggregator writes its NetworkTopology (the plugin's default namespace).
const NT_NAMESPACE: &str = "default";
const FIELD_MANAGER: &str = "linkmeter-tests";

fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))
}

// ---------------------------------------------------------------------------------------
// kustomization drift
// ---------------------------------------------------------------------------------------

/// The entries of the top-level `resources:` list of a kustomization file. A small
/// line parser (the test crate has no YAML library): entries are `  - path` lines,
/// comments and blank lines are skipped, and the list ends at the next top-level key.
fn kustomization_resources(text: &str) -> Result<Vec<String>> {
    let mut lines = text.lines();
    lines
        .by_ref()
        .find(|l| l.trim_end() == "resources:")
        .context("no top-level `resources:` key")?;
    let mut out = Vec::new();
    for line in lines {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') && !line.starts_with('-') {
            break; // the next top-level key
        }
        let entry = trimmed
            .strip_prefix("- ")
            .with_context(|| format!("unexpected line in resources: {line:?}"))?;
        let entry = entry.split(" #").next().unwrap_or(entry).trim();
        out.push(entry.trim_matches(|c| c == '"' || c == '\'').to_owned());
    }
    ensure!(!out.is_empty(), "`resources:` is empty");
    Ok(out)
}

/// YAML files under `dir`, relative to `root`, not descending into directories that
/// have a kustomization of their own (they are separate kustomizations).
fn yaml_files(root: &Path, dir: &Path, out: &mut BTreeSet<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            if !path.join("kustomization.yaml").exists() {
                yaml_files(root, &path, out)?;
            }
            continue;
        }
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        let name = path.file_name().and_then(|n| n.to_str());
        if is_yaml && name != Some("kustomization.yaml") {
            let rel = path.strip_prefix(root)?;
            out.insert(path_str(rel)?.to_owned());
        }
    }
    Ok(())
}

/// Checks that the kustomization in `dir` lists exactly the YAML files of its tree.
fn check_kustomization_lists_all(dir: &Path) -> Result<Vec<String>> {
    let file = dir.join("kustomization.yaml");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let listed = kustomization_resources(&text).with_context(|| file.display().to_string())?;
    let listed_set: BTreeSet<String> = listed.iter().cloned().collect();
    ensure!(
        listed_set.len() == listed.len(),
        "{} lists a resource twice: {listed:?}",
        file.display()
    );
    let mut on_disk = BTreeSet::new();
    yaml_files(dir, dir, &mut on_disk)?;
    let forgotten: Vec<_> = on_disk.difference(&listed_set).collect();
    let missing: Vec<_> = listed_set.difference(&on_disk).collect();
    ensure!(
        forgotten.is_empty(),
        "{} does not list {forgotten:?}; add them to resources",
        file.display()
    );
    ensure!(
        missing.is_empty(),
        "{} lists {missing:?}, which do not exist",
        file.display()
    );
    Ok(listed)
}

#[test]
fn kustomizations_list_every_manifest() -> Result<()> {
    let base = check_kustomization_lists_all(&manifests_dir())?;
    for required in [
        "crds/linkmeter.dev.yaml",
        "namespace.yaml",
        "agent/serviceaccount.yaml",
        "agent/clusterrole.yaml",
        "agent/clusterrolebinding.yaml",
        "agent/daemonset.yaml",
        "agent/service.yaml",
        "aggregator/serviceaccount.yaml",
        "aggregator/clusterrole.yaml",
        "aggregator/clusterrolebinding.yaml",
        "aggregator/role-networktopology.yaml",
        "aggregator/rolebinding-networktopology.yaml",
        "aggregator/role-leader-election.yaml",
        "aggregator/rolebinding-leader-election.yaml",
        "aggregator/deployment.yaml",
        "aggregator/service.yaml",
        "aggregator/service-extender.yaml",
    ] {
        ensure!(
            base.iter().any(|r| r == required),
            "base kustomization lacks {required}"
        );
    }
    // The ServiceMonitor must stay out of the base: a cluster without the
    // prometheus-operator CRDs could not apply it.
    ensure!(
        !base.iter().any(|r| r.starts_with("monitoring")),
        "the base includes monitoring/: {base:?}"
    );
    let monitoring = check_kustomization_lists_all(&manifests_dir().join("monitoring"))?;
    ensure!(
        monitoring == ["servicemonitor.yaml"],
        "monitoring kustomization: {monitoring:?}"
    );
    // The Diktyo CRD is a component: outside the base (clusters with scheduler-plugins
    // have it already), one generated file.
    ensure!(
        !base.iter().any(|r| r.contains("components")),
        "the base includes a component: {base:?}"
    );
    let component_dir = manifests_dir().join(DIKTYO_COMPONENT);
    let component = check_kustomization_lists_all(&component_dir)?;
    ensure!(
        component == ["networktopology.yaml"],
        "diktyo-crd component: {component:?}"
    );
    let text = std::fs::read_to_string(component_dir.join("kustomization.yaml"))?;
    ensure!(
        text.contains("\nkind: Component\n"),
        "{DIKTYO_COMPONENT}/kustomization.yaml is not a kustomize Component"
    );
    Ok(())
}

/// The extender entry of manifests/scheduler/config.yaml, as JSON.
fn scheduler_extender_entry() -> Result<Value> {
    let path = manifests_dir().join("scheduler/config.yaml");
    let cm: Value = serde_norway::from_str(&std::fs::read_to_string(&path)?)
        .with_context(|| format!("{} is not YAML", path.display()))?;
    let config: Value = serde_norway::from_str(
        cm.pointer("/data/config.yaml")
            .and_then(Value::as_str)
            .context("the ConfigMap has no data.config.yaml")?,
    )?;
    ensure!(
        config["apiVersion"] == "kubescheduler.config.k8s.io/v1beta1"
            && config["profiles"] == json!([{"schedulerName": "linkmeter-scheduler"}]),
        "not the v1beta1 linkmeter-scheduler profile: {config}"
    );
    Ok(config["extenders"][0].clone())
}

#[test]
fn scheduler_profile_is_the_one_the_extender_test_runs() -> Result<()> {
    let listed = check_kustomization_lists_all(&manifests_dir().join("scheduler"))?;
    ensure!(
        listed
            == [
                "serviceaccount.yaml",
                "rbac.yaml",
                "config.yaml",
                "deployment.yaml"
            ],
        "scheduler kustomization: {listed:?}"
    );
    let labels = check_kustomization_lists_all(&manifests_dir().join("components/node-labels"))?;
    ensure!(
        labels == ["clusterrole.yaml", "clusterrolebinding.yaml"],
        "node-labels component: {labels:?}"
    );
    // tests/tests/kube_extender.rs runs kube-scheduler 1.20.2 with exactly these
    // settings, the URL apart.
    let mut entry = scheduler_extender_entry()?;
    ensure!(
        entry["urlPrefix"] == "http://linkmeter-extender.linkmeter.svc:9479",
        "urlPrefix: {entry}"
    );
    entry["urlPrefix"] = json!("http://test");
    let tested = linkmeter_tests::kube_scheduler::ExtenderConfig {
        url_prefix: "http://test".into(),
        node_cache_capable: true,
        weight: 5,
        ignorable: false,
    };
    ensure!(
        entry == tested.to_json(),
        "manifests/scheduler extender {entry} is not what the test runs: {}",
        tested.to_json()
    );
    Ok(())
}

#[test]
fn scheduler_and_node_labels_apply_to_a_real_apiserver() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    apply_base(&kube)?;
    let scheduler = manifests_dir().join("scheduler");
    kube.kubectl_ok(&["apply", "--server-side", "-k", path_str(&scheduler)?])?;
    let deploy = get_json(
        &kube,
        &["deployment", "linkmeter-scheduler", "-n", NAMESPACE],
    )?;
    expect_eq(
        &deploy,
        "/spec/template/spec/serviceAccountName",
        json!("linkmeter-scheduler"),
    )?;
    let cm = get_json(
        &kube,
        &["configmap", "linkmeter-scheduler-config", "-n", NAMESPACE],
    )?;
    let text = at(&cm, "/data/config.yaml")?.as_str().unwrap_or_default();
    ensure!(text.contains("nodeCacheCapable: true"), "{text}");
    // An overlay of the base with the node-labels component: --label-nodes, and the
    // patch right on Nodes for the aggregator only.
    let overlay = kube.dir().join("overlay");
    std::fs::create_dir_all(&overlay)?;
    // kustomize takes only relative paths: up to / from the overlay, then down.
    let up = "../".repeat(overlay.canonicalize()?.components().count() - 1);
    let base = manifests_dir().canonicalize()?;
    let base = format!("{up}{}", path_str(&base)?.trim_start_matches('/'));
    std::fs::write(
        overlay.join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
             resources:\n  - {base}\ncomponents:\n  - {base}/components/node-labels\n"
        ),
    )?;
    // The same field manager as the base's apply: the overlay takes its place.
    kube.kubectl_ok(&[
        "apply",
        "--server-side",
        &format!("--field-manager={FIELD_MANAGER}"),
        "-k",
        path_str(&overlay)?,
    ])?;
    let deploy = get_json(&kube, &["deployment", AGGREGATOR, "-n", NAMESPACE])?;
    expect_eq(
        &deploy,
        "/spec/template/spec/containers/0/args",
        json!(["run", "--extender-listen=0.0.0.0:9479", "--label-nodes"]),
    )?;
    ensure!(
        can_i_as(&kube, AGGREGATOR_USER, "patch", "nodes", &[])?,
        "the aggregator cannot patch Nodes with the component"
    );
    ensure!(
        !can_i_as(&kube, SA_USER, "patch", "nodes", &[])?,
        "the component lets the agent patch Nodes"
    );
    Ok(())
}

#[test]
fn kustomization_parser_reads_lists_and_stops_at_the_next_key() -> Result<()> {
    let text = "kind: Kustomization\nresources:\n  # why\n  - a.yaml\n\n  - \"b/c.yaml\" # note\n\
                labels:\n  - pairs: {}\n";
    assert_eq!(kustomization_resources(text)?, ["a.yaml", "b/c.yaml"]);
    assert!(kustomization_resources("kind: Kustomization\n").is_err());
    assert!(kustomization_resources("resources:\nimages: []\n").is_err());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// rendering (kubectl kustomize, no server)
// ---------------------------------------------------------------------------------------

/// The kubectl the Kubernetes environment uses, or `None` when Kubernetes tests are
/// skipped. `kubectl kustomize` needs no server.
fn kubectl_or_skip() -> Result<Option<PathBuf>> {
    if std::env::var(kube_env::SKIP_ENV).is_ok_and(|v| v == "1") {
        println!("SKIPPED: needs kubectl ({}=1)", kube_env::SKIP_ENV);
        return Ok(None);
    }
    Ok(Some(kube_env::install()?.kubectl))
}

fn kustomize(kubectl: &Path, dir: &Path) -> Result<String> {
    checked_output(Command::new(kubectl).arg("kustomize").arg(dir))
}

/// Splits a multi-document YAML stream.
fn documents(yaml: &str) -> Vec<&str> {
    yaml.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .filter(|d| !d.trim().is_empty())
        .collect()
}

#[test]
fn monitoring_renders_a_service_monitor_apart_from_the_base() -> Result<()> {
    let Some(kubectl) = kubectl_or_skip()? else {
        return Ok(());
    };
    let version = checked_output(Command::new(&kubectl).args(["version", "--client"]))?;
    println!("kubectl: {}", version.trim().replace('\n', "; "));

    let rendered = kustomize(&kubectl, &manifests_dir().join("monitoring"))?;
    println!("{rendered}");
    let docs = documents(&rendered);
    ensure!(docs.len() == 2, "expected two objects, got {}", docs.len());
    let sm = docs
        .iter()
        .find(|d| d.contains("kind: ServiceMonitor"))
        .context("no ServiceMonitor")?;
    // The dashboard's ConfigMap for Grafana's sidecar carries the committed JSON.
    let cm: serde_json::Value = docs
        .iter()
        .find(|d| d.contains("kind: ConfigMap"))
        .map(|d| serde_norway::from_str(d))
        .context("no dashboard ConfigMap")??;
    ensure!(
        cm["metadata"]["labels"]["grafana_dashboard"] == "1",
        "dashboard ConfigMap labels: {}",
        cm["metadata"]["labels"]
    );
    let embedded: serde_json::Value = serde_json::from_str(
        cm["data"]["linkmeter.json"]
            .as_str()
            .context("ConfigMap data linkmeter.json")?,
    )?;
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
        manifests_dir().join("monitoring/grafana-dashboard.json"),
    )?)?;
    ensure!(
        embedded == file,
        "the ConfigMap's dashboard differs from the file"
    );
    for needle in [
        "apiVersion: monitoring.coreos.com/v1",
        "kind: ServiceMonitor",
        "name: linkmeter-agent",
        "namespace: linkmeter",
        "port: metrics",
        "interval: 30s",
        "path: /metrics",
        "app.kubernetes.io/name: linkmeter",
        "app.kubernetes.io/component: agent",
        "- linkmeter", // namespaceSelector.matchNames
    ] {
        ensure!(sm.contains(needle), "ServiceMonitor lacks {needle:?}");
    }

    let base = kustomize(&kubectl, &manifests_dir())?;
    ensure!(
        !base.contains("monitoring.coreos.com"),
        "the base renders prometheus-operator objects"
    );
    ensure!(
        base.contains(&format!("image: {IMAGE}")),
        "base image is not {IMAGE}"
    );
    ensure!(
        base.contains(&format!("image: {AGGREGATOR_IMAGE}")),
        "base aggregator image is not {AGGREGATOR_IMAGE}"
    );
    ensure!(
        !base.contains(DIKTYO_CRD),
        "the base renders the Diktyo CRD (it belongs to the component)"
    );

    // The component renders the one CRD, labelled as installed by linkmeter, and,
    // included in an overlay, labels nothing else.
    let component = kustomize(&kubectl, &manifests_dir().join(DIKTYO_COMPONENT))?;
    let docs = documents(&component);
    ensure!(docs.len() == 1, "component: {} objects", docs.len());
    for needle in [
        "kind: CustomResourceDefinition",
        &format!("name: {DIKTYO_CRD}"),
        "app.kubernetes.io/component: diktyo-crd",
        "app.kubernetes.io/name: linkmeter",
        "scope: Namespaced",
    ] {
        ensure!(docs[0].contains(needle), "Diktyo CRD lacks {needle:?}");
    }
    // kustomize refuses absolute paths, so the overlay names the base relative to
    // itself: up to the root, then down.
    let overlay = tempfile::tempdir()?;
    let overlay_dir = std::fs::canonicalize(overlay.path())?;
    let base_dir = std::fs::canonicalize(manifests_dir())?;
    let up = "../".repeat(overlay_dir.components().count() - 1);
    let base_rel = format!("{up}{}", path_str(base_dir.strip_prefix("/")?)?);
    std::fs::write(
        overlay_dir.join("kustomization.yaml"),
        format!("resources:\n  - {base_rel}\ncomponents:\n  - {base_rel}/{DIKTYO_COMPONENT}\n"),
    )?;
    let with_component = kustomize(&kubectl, &overlay_dir)?;
    ensure!(
        with_component
            .matches("app.kubernetes.io/component: diktyo-crd")
            .count()
            == 1,
        "the component's label reached other objects"
    );
    ensure!(
        documents(&with_component).len() == documents(&base).len() + 1,
        "base + component is not the base plus one object"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// applying to a real API server
// ---------------------------------------------------------------------------------------

/// `kubectl apply --server-side -k manifests/` and wait for the CRD.
fn apply_base(kube: &KubeEnv) -> Result<String> {
    let dir = manifests_dir();
    kube.apply_and_wait_for_crd(FIELD_MANAGER, "-k", path_str(&dir)?)
}

fn get_json(kube: &KubeEnv, args: &[&str]) -> Result<Value> {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let text = kube.kubectl_ok(&full)?;
    serde_json::from_str(&text).with_context(|| format!("kubectl get {args:?} is not JSON"))
}

/// `value` at JSON pointer `ptr`, or an error naming what is missing.
fn at<'a>(value: &'a Value, ptr: &str) -> Result<&'a Value> {
    value
        .pointer(ptr)
        .with_context(|| format!("{ptr} missing in {value}"))
}

fn expect_eq(value: &Value, ptr: &str, want: Value) -> Result<()> {
    let got = at(value, ptr)?;
    ensure!(*got == want, "{ptr}: got {got}, want {want}");
    Ok(())
}

/// The env var `name` of a container, as JSON.
fn env_var<'a>(container: &'a Value, name: &str) -> Result<&'a Value> {
    at(container, "/env")?
        .as_array()
        .context("env is not a list")?
        .iter()
        .find(|e| e["name"] == name)
        .with_context(|| format!("no env var {name}"))
}

/// The ServiceAccount `name` of the linkmeter namespace as a binding's only subject.
fn subjects(name: &str) -> Value {
    json!([{"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}])
}

/// Checks that `binding` binds the `role_kind` `role` to ServiceAccount `name` alone.
fn expect_binding(binding: &Value, role_kind: &str, role: &str, name: &str) -> Result<()> {
    expect_eq(
        binding,
        "/roleRef",
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}),
    )?;
    expect_eq(binding, "/subjects", subjects(name))
}

/// Checks that `role` grants exactly `rules`, each `(apiGroup, resource, verbs)`, in
/// this order.
fn expect_rules(role: &Value, rules: &[(&str, &str, &[&str])]) -> Result<()> {
    let want = rules
        .iter()
        .map(|(group, resource, verbs)| {
            json!({"apiGroups": [group], "resources": [resource], "verbs": verbs})
        })
        .collect();
    expect_eq(role, "/rules", Value::Array(want))
}

/// Checks that a workload, its selector and its pod template all carry `labels`.
fn expect_workload_labels(workload: &Value, labels: &Value) -> Result<()> {
    for ptr in [
        "/metadata/labels",
        "/spec/selector/matchLabels",
        "/spec/template/metadata/labels",
    ] {
        expect_eq(workload, ptr, labels.clone())?;
    }
    Ok(())
}

/// The one container of `pod`, after checking its image and args and that it sets no
/// `command` (the image's ENTRYPOINT is the binary).
fn only_container<'a>(pod: &'a Value, image: &str, args: Value) -> Result<&'a Value> {
    let containers = at(pod, "/containers")?.as_array().context("containers")?;
    ensure!(containers.len() == 1, "one container expected");
    let c = &containers[0];
    expect_eq(c, "/image", json!(image))?;
    expect_eq(c, "/args", args)?;
    ensure!(
        c.get("command").is_none(),
        "the image's ENTRYPOINT is the binary"
    );
    Ok(c)
}

/// Checks that the container's liveness and readiness probes GET `/healthz` and
/// `/readyz` on its `metrics` port.
fn expect_probes(c: &Value) -> Result<()> {
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        expect_eq(c, &format!("/{probe}/httpGet/path"), json!(path))?;
        expect_eq(c, &format!("/{probe}/httpGet/port"), json!("metrics"))?;
    }
    Ok(())
}

/// Checks the headless Service `name`: it selects `selector` and serves `port` as
/// `metrics`.
fn check_metrics_service(kube: &KubeEnv, name: &str, selector: &Value, port: u16) -> Result<()> {
    let svc = get_json(kube, &["service", name, "-n", NAMESPACE])?;
    expect_eq(&svc, "/spec/clusterIP", json!("None"))?;
    expect_eq(&svc, "/spec/selector", selector.clone())?;
    expect_eq(
        &svc,
        "/spec/ports",
        json!([{"name": "metrics", "port": port, "targetPort": "metrics", "protocol": "TCP"}]),
    )
}

/// The CRD `name`, after checking it is labelled as part of linkmeter (not of the agent
/// or the aggregator).
fn linkmeter_crd(kube: &KubeEnv, name: &str) -> Result<Value> {
    let crd = get_json(kube, &["crd", name])?;
    expect_eq(
        &crd,
        "/metadata/labels",
        json!({"app.kubernetes.io/name": "linkmeter"}),
    )?;
    Ok(crd)
}

/// A Pod `name` made by hand from a pod template's `spec` (no controller runs here to
/// make one), created with a server-side dry run so that admission and validation see
/// it; what the server would store. automountServiceAccountToken is switched off only
/// because this server has no token controller, so the ServiceAccount admission plugin
/// would wait for a token Secret that never comes.
fn dry_run_pod(kube: &KubeEnv, name: &str, labels: &Value, spec: &Value) -> Result<Value> {
    let mut pod_spec = spec.clone();
    pod_spec["nodeName"] = json!("node-a");
    pod_spec["automountServiceAccountToken"] = json!(false);
    let test_pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": pod_spec,
    });
    let admitted = kube.kubectl_stdin(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        &test_pod.to_string(),
    )?;
    serde_json::from_str(&admitted).context("the dry-run Pod is not JSON")
}

#[test]
fn base_applies_server_side_and_reads_back_as_written() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    let applied = apply_base(&kube)?;
    println!("{applied}");
    for obj in [
        "namespace/linkmeter",
        "customresourcedefinition.apiextensions.k8s.io/nodetopologies.linkmeter.dev",
        "serviceaccount/linkmeter-agent",
        "clusterrole.rbac.authorization.k8s.io/linkmeter-agent",
        "clusterrolebinding.rbac.authorization.k8s.io/linkmeter-agent",
        "daemonset.apps/linkmeter-agent",
        "service/linkmeter-agent",
        "customresourcedefinition.apiextensions.k8s.io/clustertopologies.linkmeter.dev",
        "serviceaccount/linkmeter-aggregator",
        "clusterrole.rbac.authorization.k8s.io/linkmeter-aggregator",
        "clusterrolebinding.rbac.authorization.k8s.io/linkmeter-aggregator",
        "role.rbac.authorization.k8s.io/linkmeter-aggregator-networktopology",
        "rolebinding.rbac.authorization.k8s.io/linkmeter-aggregator-networktopology",
        "role.rbac.authorization.k8s.io/linkmeter-aggregator-leader-election",
        "rolebinding.rbac.authorization.k8s.io/linkmeter-aggregator-leader-election",
        "deployment.apps/linkmeter-aggregator",
        "service/linkmeter-aggregator",
        "service/linkmeter-extender",
    ] {
        ensure!(
            applied.contains(obj),
            "apply did not report {obj}: {applied}"
        );
    }
    println!(
        "{}",
        kube.kubectl_ok(&[
            "get",
            "ns,sa,ds,deploy,svc,role,rolebinding,clusterrole,clusterrolebinding,crd",
            "-A",
            "-l",
            "app.kubernetes.io/name=linkmeter",
            "-o",
            "wide",
        ])?
    );

    // Namespace: Pod Security level for hostNetwork/hostPath/NET_RAW.
    let ns = get_json(&kube, &["namespace", NAMESPACE])?;
    expect_eq(
        &ns,
        "/metadata/labels/pod-security.kubernetes.io~1enforce",
        json!("privileged"),
    )?;
    expect_eq(
        &ns,
        "/metadata/labels/app.kubernetes.io~1name",
        json!("linkmeter"),
    )?;

    // ServiceAccount and binding.
    let sa = get_json(&kube, &["serviceaccount", AGENT, "-n", NAMESPACE])?;
    expect_eq(
        &sa,
        "/metadata/labels/app.kubernetes.io~1component",
        json!("agent"),
    )?;
    let crb = get_json(&kube, &["clusterrolebinding", AGENT])?;
    expect_binding(&crb, "ClusterRole", AGENT, AGENT)?;

    // ClusterRole: exactly these rules.
    let role = get_json(&kube, &["clusterrole", AGENT])?;
    expect_rules(
        &role,
        &[
            ("", "nodes", &["get", "list", "watch"]),
            (
                "linkmeter.dev",
                "nodetopologies",
                &["get", "create", "patch"],
            ),
            ("linkmeter.dev", "nodetopologies/status", &["get", "patch"]),
        ],
    )?;

    // DaemonSet.
    let ds = get_json(&kube, &["daemonset", AGENT, "-n", NAMESPACE])?;
    let labels =
        json!({"app.kubernetes.io/name": "linkmeter", "app.kubernetes.io/component": "agent"});
    expect_workload_labels(&ds, &labels)?;
    expect_eq(
        &ds,
        "/spec/updateStrategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}}),
    )?;
    let pod = at(&ds, "/spec/template/spec")?;
    expect_eq(pod, "/hostNetwork", json!(true))?;
    expect_eq(pod, "/dnsPolicy", json!("ClusterFirstWithHostNet"))?;
    expect_eq(pod, "/serviceAccountName", json!(AGENT))?;
    expect_eq(pod, "/priorityClassName", json!("system-node-critical"))?;
    expect_eq(pod, "/tolerations", json!([{"operator": "Exists"}]))?;
    expect_eq(pod, "/terminationGracePeriodSeconds", json!(10))?;
    expect_eq(pod, "/nodeSelector", json!({"kubernetes.io/os": "linux"}))?;
    ensure!(
        pod.get("runtimeClassName").is_none(),
        "runtimeClassName must stay commented out"
    );
    let c = only_container(pod, IMAGE, json!(["run", "--kube"]))?;
    expect_eq(
        c,
        "/terminationMessagePolicy",
        json!("FallbackToLogsOnError"),
    )?;
    expect_eq(
        c,
        "/securityContext",
        json!({
            "runAsUser": 0,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"], "add": ["NET_RAW"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }),
    )?;
    ensure!(
        pod.pointer("/securityContext/privileged").is_none()
            && c.pointer("/securityContext/privileged").is_none(),
        "the agent must not be privileged"
    );
    expect_eq(
        c,
        "/resources",
        json!({"requests": {"cpu": "10m", "memory": "24Mi"},
               "limits": {"cpu": "500m", "memory": "96Mi"}}),
    )?;
    // With hostNetwork the server defaults hostPort to containerPort.
    expect_eq(
        c,
        "/ports",
        json!([
            {"name": "metrics", "containerPort": 9477, "hostPort": 9477, "protocol": "TCP"},
            {"name": "throughput", "containerPort": 5201, "hostPort": 5201, "protocol": "TCP"},
        ]),
    )?;
    expect_probes(c)?;
    expect_eq(
        env_var(c, "NODE_NAME")?,
        "/valueFrom/fieldRef/fieldPath",
        json!("spec.nodeName"),
    )?;
    for (name, value) in [
        ("LINKMETER_HOST_PROC", "/host/proc"),
        ("LINKMETER_HOST_SYS", "/host/sys"),
        ("LINKMETER_HOST_ROOT", "/host/root"),
        ("LINKMETER_LOG_FORMAT", "json"),
        ("NVIDIA_VISIBLE_DEVICES", "all"),
        ("NVIDIA_DRIVER_CAPABILITIES", "utility"),
    ] {
        expect_eq(env_var(c, name)?, "/value", json!(value))?;
    }
    expect_eq(
        c,
        "/volumeMounts",
        json!([
            {"name": "host-proc", "mountPath": "/host/proc", "readOnly": true},
            {"name": "host-sys", "mountPath": "/host/sys", "readOnly": true},
            {"name": "host-root", "mountPath": "/host/root", "readOnly": true,
             "mountPropagation": "HostToContainer"},
        ]),
    )?;
    expect_eq(
        pod,
        "/volumes",
        json!([
            {"name": "host-proc", "hostPath": {"path": "/proc", "type": "Directory"}},
            {"name": "host-sys", "hostPath": {"path": "/sys", "type": "Directory"}},
            {"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}},
        ]),
    )?;

    // Service: headless, selects the DaemonSet's pods.
    check_metrics_service(&kube, AGENT, &labels, 9477)?;

    // CRD established and labelled (as part of linkmeter, not of the agent).
    linkmeter_crd(&kube, "nodetopologies.linkmeter.dev")?;

    // Nothing drifts between what the files say and what the server stores: a server-side
    // dry-run apply of the rendering equals the live objects. The CRD is left out of this
    // one: `kubectl diff` prints its schema properties in a different key order on each
    // side (a formatting artefact, not a change); the CRD has its own drift test.
    let rendered = checked_output(
        kube.kubectl()
            .arg("kustomize")
            .arg(path_str(&manifests_dir())?),
    )?;
    let all_docs = documents(&rendered);
    let without_crd: Vec<&str> = all_docs
        .iter()
        .copied()
        .filter(|d| !d.contains("\nkind: CustomResourceDefinition\n"))
        .collect();
    let crd_file = std::fs::read_to_string(manifests_dir().join("crds/linkmeter.dev.yaml"))?;
    let crds = documents(&crd_file).len();
    ensure!(
        without_crd.len() + crds == all_docs.len(),
        "expected exactly the {crds} CRDs of crds/linkmeter.dev.yaml among {} objects",
        all_docs.len()
    );
    let file = kube.dir().join("rendered-without-crd.yaml");
    std::fs::write(&file, without_crd.join("\n---\n"))?;
    let diff = kube
        .kubectl()
        .args([
            "diff",
            "--server-side",
            &format!("--field-manager={FIELD_MANAGER}"),
            "-f",
            path_str(&file)?,
        ])
        .output()
        .context("kubectl diff")?;
    ensure!(
        diff.status.success(),
        "live objects differ from the manifests ({}):\n{}{}",
        diff.status,
        String::from_utf8_lossy(&diff.stdout),
        String::from_utf8_lossy(&diff.stderr)
    );

    // The pod template passes pod admission and validation (Priority admission with
    // system-node-critical outside kube-system, mount propagation, security context).
    let admitted = dry_run_pod(
        &kube,
        "linkmeter-agent-dry-run",
        at(&ds, "/spec/template/metadata/labels")?,
        pod,
    )?;
    expect_eq(&admitted, "/spec/priority", json!(2_000_001_000))?;
    expect_eq(
        &admitted,
        "/spec/containers/0/securityContext/capabilities/add",
        json!(["NET_RAW"]),
    )?;

    // The ServiceMonitor is apart because this is what a cluster without the
    // prometheus-operator CRDs says to it.
    let sm = kube
        .kubectl()
        .args([
            "apply",
            "-k",
            path_str(&manifests_dir().join("monitoring"))?,
        ])
        .output()?;
    let stderr = String::from_utf8_lossy(&sm.stderr);
    ensure!(
        !sm.status.success() && stderr.contains("ServiceMonitor"),
        "applying monitoring/ without the CRD: {} {stderr}",
        sm.status
    );

    // The aggregator's objects.
    check_aggregator_objects(&kube)?;

    // Applying again changes nothing and still succeeds (idempotent for upgrades).
    apply_base(&kube)?;
    Ok(())
}

/// The aggregator's objects as the server stores them: labels, RBAC rules, the
/// Deployment's replicas, anti-affinity, security context, probes and environment, the
/// metrics Service; and its pod template passes admission (dry run).
fn check_aggregator_objects(kube: &KubeEnv) -> Result<()> {
    let labels =
        json!({"app.kubernetes.io/name": "linkmeter", "app.kubernetes.io/component": "aggregator"});
    let sa = get_json(kube, &["serviceaccount", AGGREGATOR, "-n", NAMESPACE])?;
    expect_eq(&sa, "/metadata/labels", labels.clone())?;

    // Cluster-wide: read Nodes and NodeTopologies, write the ClusterTopology.
    let crb = get_json(kube, &["clusterrolebinding", AGGREGATOR])?;
    expect_binding(&crb, "ClusterRole", AGGREGATOR, AGGREGATOR)?;
    let role = get_json(kube, &["clusterrole", AGGREGATOR])?;
    expect_eq(&role, "/metadata/labels", labels.clone())?;
    expect_rules(
        &role,
        &[
            ("", "nodes", &["get", "list", "watch"]),
            ("linkmeter.dev", "nodetopologies", &["get", "list", "watch"]),
            (
                "linkmeter.dev",
                "clustertopologies",
                &["get", "create", "patch"],
            ),
            ("linkmeter.dev", "clustertopologies/status", &["patch"]),
            ("", "pods", &["get", "list", "watch"]),
            (
                "linkmeter.dev",
                "nodebandwidths",
                &["get", "create", "patch"],
            ),
            ("linkmeter.dev", "nodebandwidths/status", &["patch"]),
        ],
    )?;
    // Namespaced: NetworkTopologies in `default`, Leases in `linkmeter`, each a Role
    // bound in its own namespace.
    for (name, ns, group, resource) in [
        (
            "linkmeter-aggregator-networktopology",
            NT_NAMESPACE,
            "networktopology.diktyo.x-k8s.io",
            "networktopologies",
        ),
        (
            "linkmeter-aggregator-leader-election",
            NAMESPACE,
            "coordination.k8s.io",
            "leases",
        ),
    ] {
        let role = get_json(kube, &["role", name, "-n", ns])?;
        expect_eq(&role, "/metadata/labels", labels.clone())?;
        expect_rules(&role, &[(group, resource, &["get", "create", "patch"])])?;
        let rb = get_json(kube, &["rolebinding", name, "-n", ns])?;
        expect_binding(&rb, "Role", name, AGGREGATOR)?;
    }

    // Deployment.
    let deploy = get_json(kube, &["deployment", AGGREGATOR, "-n", NAMESPACE])?;
    expect_workload_labels(&deploy, &labels)?;
    expect_eq(&deploy, "/spec/replicas", json!(2))?;
    expect_eq(
        &deploy,
        "/spec/strategy",
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
    )?;
    let pod = at(&deploy, "/spec/template/spec")?;
    expect_eq(pod, "/serviceAccountName", json!(AGGREGATOR))?;
    expect_eq(pod, "/enableServiceLinks", json!(false))?;
    expect_eq(pod, "/nodeSelector", json!({"kubernetes.io/os": "linux"}))?;
    expect_eq(
        pod,
        "/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution",
        json!([{"topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": labels.clone()}}]),
    )?;
    expect_eq(
        pod,
        "/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution",
        json!([{"weight": 100, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone",
                "labelSelector": {"matchLabels": labels.clone()}}}]),
    )?;
    ensure!(
        pod.get("hostNetwork").is_none() && pod.get("tolerations").is_none(),
        "the aggregator needs neither the host network nor tolerations"
    );
    // The restricted Pod Security profile.
    expect_eq(
        pod,
        "/securityContext",
        json!({"runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532,
               "seccompProfile": {"type": "RuntimeDefault"}}),
    )?;
    let c = only_container(
        pod,
        AGGREGATOR_IMAGE,
        json!(["run", "--extender-listen=0.0.0.0:9479"]),
    )?;
    expect_eq(
        c,
        "/securityContext",
        json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
               "capabilities": {"drop": ["ALL"]}}),
    )?;
    expect_eq(
        c,
        "/ports",
        json!([{"name": "metrics", "containerPort": 9478, "protocol": "TCP"},
               {"name": "extender", "containerPort": 9479, "protocol": "TCP"}]),
    )?;
    expect_probes(c)?;
    for (name, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        expect_eq(
            env_var(c, name)?,
            "/valueFrom/fieldRef/fieldPath",
            json!(field),
        )?;
    }
    expect_eq(
        c,
        "/resources",
        json!({"requests": {"cpu": "20m", "memory": "64Mi"},
               "limits": {"cpu": "1", "memory": "256Mi"}}),
    )?;

    // Service: headless, selects the Deployment's pods.
    check_metrics_service(kube, AGGREGATOR, &labels, 9478)?;
    // The extender's Service: load-balanced over every replica.
    let svc = get_json(kube, &["service", "linkmeter-extender", "-n", NAMESPACE])?;
    expect_eq(&svc, "/spec/selector", labels.clone())?;
    expect_eq(
        &svc,
        "/spec/ports",
        json!([{"name": "extender", "port": 9479, "targetPort": "extender", "protocol": "TCP"}]),
    )?;

    // The ClusterTopology CRD, labelled as part of linkmeter like NodeTopology's.
    let crd = linkmeter_crd(kube, "clustertopologies.linkmeter.dev")?;
    expect_eq(&crd, "/spec/scope", json!("Cluster"))?;

    // The pod template passes admission and validation.
    let admitted = dry_run_pod(kube, "linkmeter-aggregator-dry-run", &labels, pod)?;
    expect_eq(&admitted, "/spec/securityContext/runAsNonRoot", json!(true))?;
    expect_eq(
        &admitted,
        "/spec/containers/0/securityContext/capabilities/drop",
        json!(["ALL"]),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// RBAC
// ---------------------------------------------------------------------------------------

/// Runs kubectl with `kubeconfig` and expects a 403 naming the agent's identity.
fn expect_forbidden(kube: &KubeEnv, kubeconfig: &Path, args: &[&str]) -> Result<()> {
    expect_forbidden_as(kube, kubeconfig, SA_USER, args)
}

/// Runs kubectl with `kubeconfig` and expects a 403 naming `user`.
fn expect_forbidden_as(kube: &KubeEnv, kubeconfig: &Path, user: &str, args: &[&str]) -> Result<()> {
    let out = kube
        .kubectl_with(kubeconfig)
        .args(args)
        .output()
        .context("running kubectl")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "`kubectl {}` was allowed for {user}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    ensure!(
        stderr.contains("forbidden: User") && stderr.contains(user),
        "`kubectl {}` failed, but not with 403 for {user}: {stderr}",
        args.join(" ")
    );
    println!("denied:  kubectl {}", args.join(" "));
    Ok(())
}

fn allowed(kube: &KubeEnv, kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = checked_output(kube.kubectl_with(kubeconfig).args(args))
        .with_context(|| format!("kubectl {} with {}", args.join(" "), kubeconfig.display()))?;
    println!("allowed: kubectl {}", args.join(" "));
    Ok(out)
}

/// Server-side apply of `body` to `path` (under the server URL) with `token`, as the
/// agent's field manager.
fn apply_patch(kube: &KubeEnv, token: &str, path: &str, body: &Value) -> Result<(u16, String)> {
    apply_patch_as(kube, token, AGENT, path, body)
}

/// Server-side apply of `body` to `path` with `token` and field manager `manager`.
fn apply_patch_as(
    kube: &KubeEnv,
    token: &str,
    manager: &str,
    path: &str,
    body: &Value,
) -> Result<(u16, String)> {
    let resp = request(
        kube,
        token,
        "PATCH",
        &format!("{path}?fieldManager={manager}&force=true"),
        Some(("application/apply-patch+yaml", body)),
    )?;
    Ok((resp.status, resp.body))
}

/// `kubectl auth can-i` as ServiceAccount `user` of the linkmeter namespace.
fn can_i_as(
    kube: &KubeEnv,
    user: &str,
    verb: &str,
    resource: &str,
    extra: &[&str],
) -> Result<bool> {
    let out = kube
        .kubectl()
        .args(["auth", "can-i", verb, resource])
        .args(extra)
        .args([
            &format!("--as={user}"),
            "--as-group=system:serviceaccounts",
            "--as-group=system:serviceaccounts:linkmeter",
            "--as-group=system:authenticated",
        ])
        .output()
        .context("kubectl auth can-i")?;
    match String::from_utf8_lossy(&out.stdout).trim() {
        "yes" => Ok(true),
        "no" => Ok(false),
        other => bail!(
            "kubectl auth can-i {verb} {resource}: {other:?} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// One row of an RBAC matrix: verbs, a resource, extra `kubectl auth can-i` arguments,
/// and whether each verb must be allowed.
type CanI<'a> = (&'a [&'a str], &'a str, &'a [&'a str], bool);

const NODE_TOPOLOGIES: &str = "nodetopologies.linkmeter.dev";
const CLUSTER_TOPOLOGIES: &str = "clustertopologies.linkmeter.dev";
const LEASES: &str = "leases.coordination.k8s.io";
/// `kubectl auth can-i` arguments for the status subresource.
const STATUS: &[&str] = &["--subresource=status"];
/// `kubectl auth can-i` arguments for the linkmeter namespace.
const OWN_NS: &[&str] = &["-n", NAMESPACE];
/// `kubectl auth can-i` arguments for ServiceAccount tokens in the linkmeter namespace.
const TOKEN_IN_OWN_NS: &[&str] = &["--subresource=token", "-n", NAMESPACE];

/// RBAC rows that hold for both ServiceAccounts: they read Nodes without changing them,
/// and get no Secrets, Events, tokens or wildcard (and write no Pods).
const CAN_I_BOTH: &[CanI] = &[
    (&["get", "list", "watch"], "nodes", &[], true),
    (&["patch", "delete"], "nodes", &[], false),
    (&["get"], "secrets", &["-A"], false),
    (&["list"], "secrets", OWN_NS, false),
    (&["create", "patch", "delete"], "pods", &["-A"], false),
    (&["create"], "events", OWN_NS, false),
    (&["create"], "serviceaccounts", TOKEN_IN_OWN_NS, false),
    (&["*"], "*", &[], false),
];

/// Asks `kubectl auth can-i` each verb of every row of `matrix` as `user`; fails listing
/// every answer that differs.
fn check_can_i(kube: &KubeEnv, user: &str, matrix: &[CanI]) -> Result<()> {
    let mut wrong = Vec::new();
    for (verbs, resource, extra, want) in matrix {
        for verb in *verbs {
            let got = can_i_as(kube, user, verb, resource, extra)?;
            println!(
                "can-i {verb:<7} {resource} {}: {}",
                extra.join(" "),
                if got { "yes" } else { "no" }
            );
            if got != *want {
                wrong.push(format!("{verb} {resource} {extra:?}: {got}, want {want}"));
            }
        }
    }
    ensure!(wrong.is_empty(), "RBAC differs: {wrong:#?}");
    Ok(())
}

/// A watch of `path` with `token`: the server holds it open for a second and answers
/// 200 with `want` in what it streamed.
fn expect_watch(kube: &KubeEnv, token: &str, path: &str, want: &str) -> Result<()> {
    let watch = curl(
        token,
        &[],
        &format!("{}{path}?watch=1&timeoutSeconds=1", kube.server_url()),
    )?;
    ensure!(
        watch.status == 200 && watch.body.contains(want),
        "watch {path}: {watch:?}"
    );
    println!("allowed: GET {path}?watch=1");
    Ok(())
}

/// Node `node-a` in zone `zone-a`, for the ServiceAccounts to read (no kubelet
/// registers one here).
fn create_node_a(kube: &KubeEnv) -> Result<()> {
    kube.kubectl_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-a",
                             "labels": {"topology.kubernetes.io/zone": "zone-a"}}})
        .to_string(),
    )?;
    Ok(())
}

/// `kubectl get` of each of `objects` (`kind/name`) as admin: still there.
fn still_there(kube: &KubeEnv, objects: &[&str]) -> Result<()> {
    for object in objects {
        kube.kubectl_ok(&["get", object])?;
    }
    Ok(())
}

/// `jsonpath` of `object` (`kind name [-n ns]`), read with `kubeconfig`.
fn field(kube: &KubeEnv, kubeconfig: &Path, object: &[&str], jsonpath: &str) -> Result<String> {
    let mut args = vec!["get"];
    args.extend_from_slice(object);
    let jsonpath = format!("jsonpath={jsonpath}");
    args.extend(["-o", &jsonpath]);
    allowed(kube, kubeconfig, &args)
}

const NT_PATH: &str = "/apis/linkmeter.dev/v1alpha1/nodetopologies";

/// `kubectl` commands neither ServiceAccount may run (on the `node-a` objects the RBAC
/// tests create).
const DENIED_TO_BOTH: &[&[&str]] = &[
    &["get", "secrets", "-A"],
    &["get", "secret", "x", "-n", NAMESPACE],
    &["delete", "node", "node-a"],
    &["label", "node", "node-a", "linkmeter.dev/x=y"],
    &["delete", "nodetopology", "node-a"],
    &["create", "serviceaccount", "x", "-n", NAMESPACE],
];

#[test]
fn agent_service_account_can_do_its_job_and_nothing_more() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    apply_base(&kube)?;
    // A Node to discover and to own the NodeTopology.
    create_node_a(&kube)?;
    let token = kube.service_account_token(NAMESPACE, AGENT, 3600)?;
    let agent = kube.kubeconfig_for_token(&token)?;
    let who = allowed(&kube, &agent, &["auth", "can-i", "--list"])?;
    println!("{who}");

    // --- allowed: discovery -----------------------------------------------------------
    let nodes = allowed(&kube, &agent, &["get", "nodes", "-o", "name"])?;
    ensure!(nodes.contains("node/node-a"), "list nodes: {nodes}");
    let uid = field(&kube, &agent, &["node", "node-a"], "{.metadata.uid}")?;
    ensure!(!uid.is_empty(), "node has no uid");
    expect_watch(&kube, &token, "/api/v1/nodes", "node-a")?;

    // --- allowed: publishing its NodeTopology ------------------------------------------
    // The object, as the agent applies it: owned by its Node (no blockOwnerDeletion,
    // which would need update on nodes/finalizers where that admission plugin is on).
    let object = json!({
        "apiVersion": "linkmeter.dev/v1alpha1",
        "kind": "NodeTopology",
        "metadata": {
            "name": "node-a",
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-a",
                                 "uid": uid}],
        },
        "spec": {},
    });
    let file = kube.dir().join("nodetopology-node-a.json");
    std::fs::write(&file, object.to_string())?;
    allowed(
        &kube,
        &agent,
        &[
            "apply",
            "--server-side",
            &format!("--field-manager={AGENT}"),
            "-f",
            path_str(&file)?,
        ],
    )?;
    // Its status, through the subresource: first as the agent does it (an apply PATCH to
    // .../status), then with kubectl's --subresource where this kubectl has it (1.27+).
    let (status, body) = apply_patch(
        &kube,
        &token,
        &format!("{NT_PATH}/node-a/status"),
        &json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
                "metadata": {"name": "node-a"}, "status": {"zone": "zone-a"}}),
    )?;
    ensure!(status == 200, "status apply: HTTP {status}: {body}");
    println!("allowed: PATCH (apply) {NT_PATH}/node-a/status");
    let kubectl_has_subresource =
        checked_output(kube.kubectl().args(["apply", "--help"]))?.contains("--subresource");
    let status_doc = json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
                            "metadata": {"name": "node-a"}, "spec": {},
                            "status": {"zone": "zone-b"}});
    // (spec only because kubectl validates the document against the CRD, which
    // requires it; the apply to .../status ignores everything but status.)
    if kubectl_has_subresource {
        let status_file = kube.dir().join("nodetopology-node-a-status.json");
        std::fs::write(&status_file, status_doc.to_string())?;
        allowed(
            &kube,
            &agent,
            &[
                "apply",
                "--server-side",
                "--subresource=status",
                &format!("--field-manager={AGENT}"),
                "-f",
                path_str(&status_file)?,
            ],
        )?;
    } else {
        let (status, body) = apply_patch(
            &kube,
            &token,
            &format!("{NT_PATH}/node-a/status"),
            &status_doc,
        )?;
        ensure!(status == 200, "status apply: HTTP {status}: {body}");
    }
    let zone = field(&kube, &agent, &["nodetopology", "node-a"], "{.status.zone}")?;
    ensure!(zone == "zone-b", "status not stored: {zone:?}");
    let status_get = curl(
        &token,
        &[],
        &format!("{}{NT_PATH}/node-a/status", kube.server_url()),
    )?;
    ensure!(status_get.status == 200, "get status: {status_get:?}");
    println!("allowed: GET {NT_PATH}/node-a/status");
    let owner = kube.kubectl_ok(&[
        "get",
        "nodetopology",
        "node-a",
        "-o",
        "jsonpath={.metadata.ownerReferences[0].uid}",
    ])?;
    ensure!(owner == uid, "ownerReference not stored: {owner:?}");
    // A plain create (POST) works too.
    let other = kube.dir().join("nodetopology-node-b.json");
    std::fs::write(
        &other,
        json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
               "metadata": {"name": "node-b"}, "spec": {}})
        .to_string(),
    )?;
    allowed(&kube, &agent, &["create", "-f", path_str(&other)?])?;

    // --- denied ------------------------------------------------------------------------
    let file = path_str(&file)?;
    let own: [&[&str]; 3] = [
        &["get", "configmaps", "-n", NAMESPACE],
        &["replace", "-f", file],
        &["get", "pods", "-A"],
    ];
    for args in DENIED_TO_BOTH.iter().copied().chain(own) {
        expect_forbidden(&kube, &agent, args)?;
    }
    // The aggregator's object is not the agent's business (403 even before that CRD
    // exists: authorization comes first).
    let cluster_topology = curl(
        &token,
        &[],
        &format!(
            "{}/apis/linkmeter.dev/v1alpha1/clustertopologies",
            kube.server_url()
        ),
    )?;
    ensure!(
        cluster_topology.status == 403,
        "list clustertopologies: {cluster_topology:?}"
    );
    // Still there after the attempts.
    still_there(&kube, &["node/node-a", "nodetopology/node-a"])?;

    // --- the same, as `kubectl auth can-i` with impersonation ----------------------------
    let matrix: &[CanI] = &[
        (&["update"], "nodes", &["--subresource=finalizers"], false),
        (&["get", "create", "patch"], NODE_TOPOLOGIES, &[], true),
        (&["update", "delete", "list"], NODE_TOPOLOGIES, &[], false),
        (&["patch", "get"], NODE_TOPOLOGIES, STATUS, true),
        (&["update"], NODE_TOPOLOGIES, STATUS, false),
        (&["create"], "pods", OWN_NS, false),
        (&["list"], "pods", &["-A"], false),
        (&["get"], "configmaps", OWN_NS, false),
    ];
    check_can_i(&kube, SA_USER, &[CAN_I_BOTH, matrix].concat())
}

/// Why `create` is in the ClusterRole: the API server authorizes a server-side apply that
/// creates the object as `create`, so `patch` alone cannot publish the first time.
#[test]
fn server_side_apply_of_a_new_object_needs_create() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    apply_base(&kube)?;
    kube.kubectl_ok(&["create", "serviceaccount", "patch-only", "-n", NAMESPACE])?;
    kube.kubectl_ok(&[
        "create",
        "clusterrole",
        "nodetopology-patch-only",
        "--verb=patch",
        "--resource=nodetopologies.linkmeter.dev",
    ])?;
    kube.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "nodetopology-patch-only",
        "--clusterrole=nodetopology-patch-only",
        &format!("--serviceaccount={NAMESPACE}:patch-only"),
    ])?;
    let token = kube.service_account_token(NAMESPACE, "patch-only", 600)?;
    let object = json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
                        "metadata": {"name": "node-a"}, "spec": {}});
    let (status, body) = apply_patch(&kube, &token, &format!("{NT_PATH}/node-a"), &object)?;
    ensure!(
        status == 403,
        "apply-create with patch only: HTTP {status}: {body}"
    );
    // Once the object exists, patch alone is enough.
    kube.kubectl_stdin(&["create", "-f", "-"], &object.to_string())?;
    let (status, body) = apply_patch(&kube, &token, &format!("{NT_PATH}/node-a"), &object)?;
    ensure!(
        status == 200,
        "apply to an existing object with patch: HTTP {status}: {body}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// the aggregator's RBAC
// ---------------------------------------------------------------------------------------

const CT_PATH: &str = "/apis/linkmeter.dev/v1alpha1/clustertopologies";
const DIKTYO_NT: &str = "networktopologies.networktopology.diktyo.x-k8s.io";

fn diktyo_nt_path(ns: &str) -> String {
    format!("/apis/networktopology.diktyo.x-k8s.io/v1alpha1/namespaces/{ns}/networktopologies")
}

fn lease_path(ns: &str) -> String {
    format!("/apis/coordination.k8s.io/v1/namespaces/{ns}/leases")
}

#[test]
fn aggregator_service_account_can_do_its_job_and_nothing_more() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    // The base and the Diktyo CRD component, as a cluster without scheduler-plugins
    // installs them.
    linkmeter_tests::aggregator::apply_manifests(&kube, FIELD_MANAGER)?;
    let crd = get_json(&kube, &["crd", DIKTYO_CRD])?;
    expect_eq(
        &crd,
        "/metadata/labels",
        json!({"app.kubernetes.io/name": "linkmeter", "app.kubernetes.io/component": "diktyo-crd"}),
    )?;
    expect_eq(&crd, "/spec/scope", json!("Namespaced"))?;
    // What the aggregator reads: a Node and its NodeTopology (written here by the admin).
    create_node_a(&kube)?;
    kube.kubectl_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "NodeTopology",
                "metadata": {"name": "node-a"}, "spec": {}})
        .to_string(),
    )?;
    let token = kube.service_account_token(NAMESPACE, AGGREGATOR, 3600)?;
    let me = kube.kubeconfig_for_token(&token)?;
    println!("{}", allowed(&kube, &me, &["auth", "can-i", "--list"])?);

    // --- allowed: its inputs, read and watched ---------------------------------------
    let nodes = allowed(&kube, &me, &["get", "nodes", "-o", "name"])?;
    ensure!(nodes.contains("node/node-a"), "list nodes: {nodes}");
    allowed(&kube, &me, &["get", "node", "node-a"])?;
    let nts = allowed(&kube, &me, &["get", "nodetopologies", "-o", "name"])?;
    ensure!(nts.contains("node-a"), "list nodetopologies: {nts}");
    allowed(&kube, &me, &["get", "nodetopology", "node-a"])?;
    for path in ["/api/v1/nodes", NT_PATH] {
        expect_watch(&kube, &token, path, "node-a")?;
    }

    // --- allowed: the ClusterTopology, created and status-applied ----------------------
    let ct = json!({"apiVersion": "linkmeter.dev/v1alpha1", "kind": "ClusterTopology",
                    "metadata": {"name": "cluster"}, "spec": {}});
    let (status, body) = apply_patch_as(
        &kube,
        &token,
        AGGREGATOR,
        &format!("{CT_PATH}/cluster"),
        &ct,
    )?;
    ensure!(
        status == 201,
        "ClusterTopology apply-create: HTTP {status}: {body}"
    );
    println!("allowed: PATCH (apply, creating) {CT_PATH}/cluster");
    let mut ct_status = ct.clone();
    ct_status["status"] = json!({"nodeCount": 1});
    let (status, body) = apply_patch_as(
        &kube,
        &token,
        AGGREGATOR,
        &format!("{CT_PATH}/cluster/status"),
        &ct_status,
    )?;
    ensure!(
        status == 200,
        "ClusterTopology status apply: HTTP {status}: {body}"
    );
    println!("allowed: PATCH (apply) {CT_PATH}/cluster/status");
    let count = field(
        &kube,
        &me,
        &["clustertopology", "cluster"],
        "{.status.nodeCount}",
    )?;
    ensure!(count == "1", "status not stored: {count:?}");

    // --- allowed: the NetworkTopology in `default` -------------------------------------
    let nt = json!({"apiVersion": "networktopology.diktyo.x-k8s.io/v1alpha1",
                    "kind": "NetworkTopology",
                    "metadata": {"name": "nt-default", "namespace": NT_NAMESPACE},
                    "spec": {"configmapName": "linkmeter-aggregator",
                             "weights": [{"name": "UserDefined", "topologyList": []}]},
                    "status": {"nodeCount": 1}});
    let nt_path = format!("{}/nt-default", diktyo_nt_path(NT_NAMESPACE));
    let (status, body) = apply_patch_as(&kube, &token, AGGREGATOR, &nt_path, &nt)?;
    ensure!(
        status == 201,
        "NetworkTopology apply-create: HTTP {status}: {body}"
    );
    println!("allowed: PATCH (apply, creating) {nt_path}");
    // No status subresource in this CRD: the status came with the object.
    let count = field(
        &kube,
        &me,
        &[DIKTYO_NT, "nt-default", "-n", NT_NAMESPACE],
        "{.status.nodeCount}",
    )?;
    ensure!(count == "1", "NetworkTopology status not stored: {count:?}");

    // --- allowed: its Lease in `linkmeter` ---------------------------------------------
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": AGGREGATOR},
                       "spec": {"holderIdentity": "replica-a", "leaseDurationSeconds": 15}});
    let created = request(
        &kube,
        &token,
        "POST",
        &lease_path(NAMESPACE),
        Some(("application/json", &lease)),
    )?;
    ensure!(created.status == 201, "create Lease: {created:?}");
    let patched = request(
        &kube,
        &token,
        "PATCH",
        &format!("{}/{AGGREGATOR}", lease_path(NAMESPACE)),
        Some((
            "application/merge-patch+json",
            &json!({"spec": {"holderIdentity": "replica-b"}}),
        )),
    )?;
    ensure!(patched.status == 200, "patch Lease: {patched:?}");
    let holder = field(
        &kube,
        &me,
        &["lease", AGGREGATOR, "-n", NAMESPACE],
        "{.spec.holderIdentity}",
    )?;
    ensure!(holder == "replica-b", "Lease holder {holder:?}");
    println!(
        "allowed: POST, PATCH, GET {}/{AGGREGATOR}",
        lease_path(NAMESPACE)
    );

    // --- denied ------------------------------------------------------------------------
    // No PUT (the `replace`): every write it makes is an apply.
    let ct_file = kube.dir().join("clustertopology.json");
    std::fs::write(&ct_file, ct.to_string())?;
    let ct_file = path_str(&ct_file)?;
    let own: [&[&str]; 9] = [
        &["get", "configmaps", "-n", NT_NAMESPACE],
        &["label", "nodetopology", "node-a", "linkmeter.dev/x=y"],
        &["delete", "clustertopology", "cluster"],
        &["delete", DIKTYO_NT, "nt-default", "-n", NT_NAMESPACE],
        &["get", DIKTYO_NT, "-n", NT_NAMESPACE],
        &["get", DIKTYO_NT, "-n", "kube-system"],
        &["get", "leases", "-n", "kube-system"],
        &["delete", "lease", AGGREGATOR, "-n", NAMESPACE],
        &["replace", "-f", ct_file],
    ];
    for args in DENIED_TO_BOTH.iter().copied().chain(own) {
        expect_forbidden_as(&kube, &me, AGGREGATOR_USER, args)?;
    }
    // Writes outside its namespaces, as real requests: a NetworkTopology in another
    // namespace, a Lease in `default`, and the agents' NodeTopology status.
    let mut elsewhere = nt.clone();
    elsewhere["metadata"]["namespace"] = json!("kube-system");
    for (method, content_type, path, body) in [
        (
            "PATCH",
            "application/apply-patch+yaml",
            format!(
                "{}/nt-default?fieldManager={AGGREGATOR}",
                diktyo_nt_path("kube-system")
            ),
            elsewhere,
        ),
        (
            "POST",
            "application/json",
            lease_path("default"),
            lease.clone(),
        ),
        (
            "PATCH",
            "application/merge-patch+json",
            format!("{NT_PATH}/node-a/status"),
            json!({"status": {"zone": "elsewhere"}}),
        ),
    ] {
        let body = Some((content_type, &body));
        expect_denied(&kube, &token, AGGREGATOR_USER, method, &path, body)?;
    }
    // Still there after the attempts.
    still_there(
        &kube,
        &[
            "node/node-a",
            "nodetopology/node-a",
            "clustertopology/cluster",
        ],
    )?;

    // --- the same, as `kubectl auth can-i` with impersonation ----------------------------
    let ns_default: &[&str] = &["-n", NT_NAMESPACE];
    let ns_system: &[&str] = &["-n", "kube-system"];
    let matrix: &[CanI] = &[
        (&["get", "list", "watch"], NODE_TOPOLOGIES, &[], true),
        (&["create", "patch", "delete"], NODE_TOPOLOGIES, &[], false),
        (&["patch"], NODE_TOPOLOGIES, STATUS, false),
        (&["get", "create", "patch"], CLUSTER_TOPOLOGIES, &[], true),
        (
            &["update", "list", "delete"],
            CLUSTER_TOPOLOGIES,
            &[],
            false,
        ),
        (&["patch"], CLUSTER_TOPOLOGIES, STATUS, true),
        (&["update", "get"], CLUSTER_TOPOLOGIES, STATUS, false),
        (&["get", "create", "patch"], DIKTYO_NT, ns_default, true),
        (&["update", "list", "delete"], DIKTYO_NT, ns_default, false),
        (&["create"], DIKTYO_NT, ns_system, false),
        (&["patch"], DIKTYO_NT, OWN_NS, false),
        (&["get", "create", "patch"], LEASES, OWN_NS, true),
        (&["update", "delete", "list"], LEASES, OWN_NS, false),
        (&["create"], LEASES, ns_default, false),
        (&["patch"], LEASES, ns_system, false),
        (&["get"], "configmaps", ns_default, false),
        (&["get", "list", "watch"], "pods", &["-A"], true),
        (&["get", "create", "patch"], "nodebandwidths", &[], true),
        (&["update", "delete"], "nodebandwidths", &[], false),
        (&["patch"], "nodebandwidths", STATUS, true),
    ];
    check_can_i(&kube, AGGREGATOR_USER, &[CAN_I_BOTH, matrix].concat())
}
