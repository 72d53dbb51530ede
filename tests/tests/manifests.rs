//! The deployment manifests (`manifests/`) against a real kube-apiserver 1.20:
//!
//! - every YAML file is listed in its kustomization, and nothing listed is missing;
//! - the base renders and applies with server-side apply (which validates every field
//!   against the server's schema), and reading the objects back gives what was written;
//!   the DaemonSet's pod template passes pod admission (dry run);
//! - the agent's ServiceAccount can do exactly what the agent needs and no more, checked
//!   by real requests with its token and by `kubectl auth can-i` impersonation;
//! - the ServiceMonitor lives apart from the base and renders on its own.
//!
//! Cluster tests fail when the environment cannot start; `LINKMETER_SKIP_KUBE=1` skips
//! them (see `KubeEnv::start_or_skip`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use linkmeter_tests::kube_env::{self, KubeEnv, checked_output, curl};
use serde_json::{Value, json};

const NAMESPACE: &str = "linkmeter";
const AGENT: &str = "linkmeter-agent";
const SA_USER: &str = "system:serviceaccount:linkmeter:linkmeter-agent";
const IMAGE: &str = "ghcr.io/linkmeter/linkmeter-agent:0.1.0";
const FIELD_MANAGER: &str = "linkmeter-tests";

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests")
}

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
    ensure!(docs.len() == 1, "expected one object, got {}", docs.len());
    let sm = docs[0];
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
            "ns,sa,ds,svc,clusterrole,clusterrolebinding,crd",
            "-n",
            NAMESPACE,
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
    expect_eq(
        &crb,
        "/roleRef",
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": AGENT}),
    )?;
    expect_eq(
        &crb,
        "/subjects",
        json!([{"kind": "ServiceAccount", "name": AGENT, "namespace": NAMESPACE}]),
    )?;

    // ClusterRole: exactly these rules.
    let role = get_json(&kube, &["clusterrole", AGENT])?;
    expect_eq(
        &role,
        "/rules",
        json!([
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["linkmeter.dev"], "resources": ["nodetopologies"],
             "verbs": ["get", "create", "patch"]},
            {"apiGroups": ["linkmeter.dev"], "resources": ["nodetopologies/status"],
             "verbs": ["get", "patch"]},
        ]),
    )?;

    // DaemonSet.
    let ds = get_json(&kube, &["daemonset", AGENT, "-n", NAMESPACE])?;
    let labels =
        json!({"app.kubernetes.io/name": "linkmeter", "app.kubernetes.io/component": "agent"});
    expect_eq(&ds, "/metadata/labels", labels.clone())?;
    expect_eq(&ds, "/spec/selector/matchLabels", labels.clone())?;
    expect_eq(&ds, "/spec/template/metadata/labels", labels.clone())?;
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
    let containers = at(pod, "/containers")?.as_array().context("containers")?;
    ensure!(containers.len() == 1, "one container expected");
    let c = &containers[0];
    expect_eq(c, "/image", json!(IMAGE))?;
    expect_eq(c, "/args", json!(["run", "--kube"]))?;
    ensure!(
        c.get("command").is_none(),
        "the image's ENTRYPOINT is the binary"
    );
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
    expect_eq(c, "/livenessProbe/httpGet/path", json!("/healthz"))?;
    expect_eq(c, "/livenessProbe/httpGet/port", json!("metrics"))?;
    expect_eq(c, "/readinessProbe/httpGet/path", json!("/readyz"))?;
    expect_eq(c, "/readinessProbe/httpGet/port", json!("metrics"))?;
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
    let svc = get_json(&kube, &["service", AGENT, "-n", NAMESPACE])?;
    expect_eq(&svc, "/spec/clusterIP", json!("None"))?;
    expect_eq(&svc, "/spec/selector", labels)?;
    expect_eq(
        &svc,
        "/spec/ports",
        json!([{"name": "metrics", "port": 9477, "targetPort": "metrics", "protocol": "TCP"}]),
    )?;

    // CRD established and labelled (as part of linkmeter, not of the agent).
    let crd = get_json(&kube, &["crd", "nodetopologies.linkmeter.dev"])?;
    expect_eq(
        &crd,
        "/metadata/labels",
        json!({"app.kubernetes.io/name": "linkmeter"}),
    )?;

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
    ensure!(
        without_crd.len() + 1 == all_docs.len(),
        "expected exactly one CRD among {} objects",
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
    // There is no DaemonSet controller here, so make a Pod from the template by hand and
    // create it with a server-side dry run. automountServiceAccountToken is switched off
    // only because this server has no token controller, so the ServiceAccount admission
    // plugin would wait for a token Secret that never comes.
    let mut pod_spec = pod.clone();
    pod_spec["nodeName"] = json!("node-a");
    pod_spec["automountServiceAccountToken"] = json!(false);
    let test_pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "linkmeter-agent-dry-run", "namespace": NAMESPACE,
                     "labels": at(&ds, "/spec/template/metadata/labels")?},
        "spec": pod_spec,
    });
    let admitted: Value = serde_json::from_str(&kube.kubectl_stdin(
        &["create", "--dry-run=server", "-o", "json", "-f", "-"],
        &test_pod.to_string(),
    )?)?;
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

    // Applying again changes nothing and still succeeds (idempotent for upgrades).
    apply_base(&kube)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// RBAC
// ---------------------------------------------------------------------------------------

/// Runs kubectl with `kubeconfig` and expects a 403 naming the agent's identity.
fn expect_forbidden(kube: &KubeEnv, kubeconfig: &Path, args: &[&str]) -> Result<()> {
    let out = kube
        .kubectl_with(kubeconfig)
        .args(args)
        .output()
        .context("running kubectl")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success(),
        "`kubectl {}` was allowed for the agent: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout)
    );
    ensure!(
        stderr.contains("forbidden: User") && stderr.contains(SA_USER),
        "`kubectl {}` failed, but not with 403 for {SA_USER}: {stderr}",
        args.join(" ")
    );
    println!("denied:  kubectl {}", args.join(" "));
    Ok(())
}

fn allowed(kube: &KubeEnv, kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let out = checked_output(kube.kubectl_with(kubeconfig).args(args))
        .with_context(|| format!("as the agent: kubectl {}", args.join(" ")))?;
    println!("allowed: kubectl {}", args.join(" "));
    Ok(out)
}

/// Server-side apply of `body` to `path` (under the server URL) with `token`.
fn apply_patch(kube: &KubeEnv, token: &str, path: &str, body: &Value) -> Result<(u16, String)> {
    let resp = curl(
        token,
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/apply-patch+yaml",
            "--data",
            &body.to_string(),
        ],
        &format!(
            "{}{path}?fieldManager={AGENT}&force=true",
            kube.server_url()
        ),
    )?;
    Ok((resp.status, resp.body))
}

/// `kubectl auth can-i VERB RESOURCE` as the agent, through impersonation by the admin
/// (system:masters may impersonate). The groups are those a real token carries.
fn can_i(kube: &KubeEnv, verb: &str, resource: &str, extra: &[&str]) -> Result<bool> {
    let out = kube
        .kubectl()
        .args(["auth", "can-i", verb, resource])
        .args(extra)
        .args([
            &format!("--as={SA_USER}"),
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

const NT_PATH: &str = "/apis/linkmeter.dev/v1alpha1/nodetopologies";

#[test]
fn agent_service_account_can_do_its_job_and_nothing_more() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    apply_base(&kube)?;
    // A Node to discover and to own the NodeTopology (no kubelet registers one here).
    kube.kubectl_stdin(
        &["create", "-f", "-"],
        &json!({"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": "node-a",
                             "labels": {"topology.kubernetes.io/zone": "zone-a"}}})
        .to_string(),
    )?;
    let token = kube.service_account_token(NAMESPACE, AGENT, 3600)?;
    let agent = kube.kubeconfig_for_token(&token)?;
    let who = allowed(&kube, &agent, &["auth", "can-i", "--list"])?;
    println!("{who}");

    // --- allowed: discovery -----------------------------------------------------------
    let nodes = allowed(&kube, &agent, &["get", "nodes", "-o", "name"])?;
    ensure!(nodes.contains("node/node-a"), "list nodes: {nodes}");
    let uid = allowed(
        &kube,
        &agent,
        &["get", "node", "node-a", "-o", "jsonpath={.metadata.uid}"],
    )?;
    ensure!(!uid.is_empty(), "node has no uid");
    // A watch: the server holds it open until timeoutSeconds and answers 200.
    let watch = curl(
        &token,
        &[],
        &format!(
            "{}/api/v1/nodes?watch=1&timeoutSeconds=1",
            kube.server_url()
        ),
    )?;
    ensure!(
        watch.status == 200 && watch.body.contains("node-a"),
        "watch nodes: {watch:?}"
    );
    println!("allowed: GET /api/v1/nodes?watch=1");

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
    let zone = allowed(
        &kube,
        &agent,
        &[
            "get",
            "nodetopology",
            "node-a",
            "-o",
            "jsonpath={.status.zone}",
        ],
    )?;
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
    expect_forbidden(&kube, &agent, &["get", "secrets", "-A"])?;
    expect_forbidden(&kube, &agent, &["get", "secret", "x", "-n", NAMESPACE])?;
    expect_forbidden(&kube, &agent, &["get", "pods", "-A"])?;
    expect_forbidden(&kube, &agent, &["get", "configmaps", "-n", NAMESPACE])?;
    expect_forbidden(&kube, &agent, &["delete", "node", "node-a"])?;
    expect_forbidden(
        &kube,
        &agent,
        &["label", "node", "node-a", "linkmeter.dev/x=y"],
    )?;
    expect_forbidden(&kube, &agent, &["delete", "nodetopology", "node-a"])?;
    expect_forbidden(&kube, &agent, &["replace", "-f", path_str(&file)?])?;
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
    expect_forbidden(
        &kube,
        &agent,
        &["create", "serviceaccount", "x", "-n", NAMESPACE],
    )?;
    // Still there after the attempts.
    kube.kubectl_ok(&["get", "node", "node-a"])?;
    kube.kubectl_ok(&["get", "nodetopology", "node-a"])?;

    // --- the same, as `kubectl auth can-i` with impersonation ----------------------------
    let matrix: &[(&str, &str, &[&str], bool)] = &[
        ("get", "nodes", &[], true),
        ("list", "nodes", &[], true),
        ("watch", "nodes", &[], true),
        ("get", "nodetopologies.linkmeter.dev", &[], true),
        ("create", "nodetopologies.linkmeter.dev", &[], true),
        ("patch", "nodetopologies.linkmeter.dev", &[], true),
        (
            "patch",
            "nodetopologies.linkmeter.dev",
            &["--subresource=status"],
            true,
        ),
        (
            "get",
            "nodetopologies.linkmeter.dev",
            &["--subresource=status"],
            true,
        ),
        ("update", "nodetopologies.linkmeter.dev", &[], false),
        ("delete", "nodetopologies.linkmeter.dev", &[], false),
        ("list", "nodetopologies.linkmeter.dev", &[], false),
        (
            "update",
            "nodetopologies.linkmeter.dev",
            &["--subresource=status"],
            false,
        ),
        ("patch", "nodes", &[], false),
        ("update", "nodes", &["--subresource=finalizers"], false),
        ("delete", "nodes", &[], false),
        ("get", "secrets", &["-A"], false),
        ("list", "secrets", &["-n", NAMESPACE], false),
        ("list", "pods", &["-A"], false),
        ("create", "pods", &["-n", NAMESPACE], false),
        ("create", "events", &["-n", NAMESPACE], false),
        ("get", "configmaps", &["-n", NAMESPACE], false),
        (
            "create",
            "serviceaccounts",
            &["--subresource=token", "-n", NAMESPACE],
            false,
        ),
        ("*", "*", &[], false),
    ];
    let mut wrong = Vec::new();
    for (verb, resource, extra, want) in matrix {
        let got = can_i(&kube, verb, resource, extra)?;
        println!(
            "can-i {verb:<7} {resource} {}: {}",
            extra.join(" "),
            if got { "yes" } else { "no" }
        );
        if got != *want {
            wrong.push(format!("{verb} {resource} {extra:?}: {got}, want {want}"));
        }
    }
    ensure!(wrong.is_empty(), "RBAC differs: {wrong:#?}");
    Ok(())
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
