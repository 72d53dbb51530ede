//! Integration tests of the Kubernetes test environment itself: the server
//! comes up, takes our CRD, authenticates ServiceAccount tokens while RBAC
//! denies them, and keeps its data across a kube-apiserver restart.
//! See `KubeEnv::start_or_skip` for skipping.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use linkmeter_tests::kube_env::{KubeEnv, checked_output, curl};

/// The committed CRD manifest.
fn crd_manifest() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/crds/linkmeter.dev.yaml")
}

/// Applies our CRD with server-side apply and waits until it is established.
fn apply_crd(kube: &KubeEnv) -> Result<()> {
    let manifest = crd_manifest();
    let manifest = manifest.to_str().context("manifest path is not UTF-8")?;
    kube.apply_and_wait_for_crd("linkmeter-tests", "-f", manifest)?;
    Ok(())
}

#[test]
fn server_starts_with_default_namespaces() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    println!(
        "server {} kubeconfig {}",
        kube.server_url(),
        kube.kubeconfig_path().display()
    );
    let out = kube.kubectl_ok(&["get", "ns", "default", "-o", "name"])?;
    ensure!(out.trim() == "namespace/default", "unexpected: {out:?}");
    kube.kubectl_ok(&["get", "ns", "kube-system"])?;
    // Namespaces can be created without a namespace controller.
    kube.kubectl_ok(&["create", "ns", "linkmeter-test"])?;
    let version = kube.curl_admin(&[], &format!("{}/version", kube.server_url()))?;
    ensure!(version.status == 200, "GET /version: {version:?}");
    println!("server version: {}", version.body);
    Ok(())
}

#[test]
fn crd_applies_and_custom_resources_round_trip() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    apply_crd(&kube)?;
    let established = kube.kubectl_ok(&[
        "get",
        "crd",
        "nodetopologies.linkmeter.dev",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ])?;
    ensure!(
        established == "True",
        "CRD not established: {established:?}"
    );

    // Decoding custom resources is what crashed kube-apiserver 1.20 built with
    // Go >= 1.18 and the old vendored reflect2, so exercise it: create one,
    // server-side apply its status, read both back.
    kube.kubectl_stdin(
        &["apply", "--server-side", "--field-manager=linkmeter-tests", "-f", "-"],
        "apiVersion: linkmeter.dev/v1alpha1\nkind: NodeTopology\nmetadata:\n  name: node-a\nspec: {}\n",
    )?;
    let status_patch = serde_json::json!({
        "apiVersion": "linkmeter.dev/v1alpha1",
        "kind": "NodeTopology",
        "metadata": { "name": "node-a" },
        "status": { "zone": "zone-1" },
    })
    .to_string();
    let resp = kube.curl_admin(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/apply-patch+yaml",
            "--data",
            &status_patch,
        ],
        &format!(
            "{}/apis/linkmeter.dev/v1alpha1/nodetopologies/node-a/status?fieldManager=linkmeter-tests",
            kube.server_url()
        ),
    )?;
    ensure!(resp.status == 200, "status apply: {resp:?}");
    let zone = kube.kubectl_ok(&[
        "get",
        "nodetopology",
        "node-a",
        "-o",
        "jsonpath={.status.zone}",
    ])?;
    ensure!(zone == "zone-1", "status not stored: {zone:?}");
    let table = kube.kubectl_ok(&["get", "nodetopologies"])?;
    println!("{table}");
    ensure!(
        table.contains("node-a") && table.contains("zone-1"),
        "printer columns: {table}"
    );
    // The server is still alive after all that decoding.
    kube.kubectl_ok(&["get", "ns", "default"])?;
    Ok(())
}

#[test]
fn kubectl_applies_a_kustomization() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    // kustomize only loads files under the kustomization's root, so copy the CRD in.
    let dir = tempfile::tempdir()?;
    std::fs::copy(crd_manifest(), dir.path().join("crd.yaml")).context("copying the CRD")?;
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- crd.yaml\n",
    )?;
    let path = dir.path().to_str().context("temp path is not UTF-8")?;
    kube.kubectl_ok(&["apply", "-k", path])?;
    kube.kubectl_ok(&["get", "crd", "nodetopologies.linkmeter.dev"])?;
    Ok(())
}

#[test]
fn service_account_token_authenticates_and_rbac_decides() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    kube.kubectl_ok(&["create", "serviceaccount", "probe", "-n", "default"])?;
    let token = kube.service_account_token("default", "probe", 600)?;
    ensure!(token.split('.').count() == 3, "not a JWT: {token}");

    // Authenticated but not authorised: 403 naming the ServiceAccount.
    let url = format!("{}/api/v1/nodes", kube.server_url());
    let resp = curl(&token, &[], &url)?;
    ensure!(resp.status == 403, "want 403 Forbidden, got {resp:?}");
    ensure!(
        resp.body.contains("system:serviceaccount:default:probe"),
        "403 does not name the ServiceAccount: {}",
        resp.body
    );
    // A made-up token is not authenticated at all: 401.
    let bogus = curl("not-a-token", &[], &url)?;
    ensure!(bogus.status == 401, "want 401 Unauthorized, got {bogus:?}");

    // The same through kubectl with a kubeconfig for the token.
    let kubeconfig = kube.kubeconfig_for_token(&token)?;
    let denied = kube
        .kubectl_with(&kubeconfig)
        .args(["get", "nodes"])
        .output()?;
    let stderr = String::from_utf8_lossy(&denied.stderr);
    ensure!(
        !denied.status.success() && stderr.contains("Forbidden"),
        "kubectl get nodes as the ServiceAccount: {stderr}"
    );
    let rules = checked_output(
        kube.kubectl_with(&kubeconfig)
            .args(["auth", "can-i", "--list"]),
    )?;
    println!("{rules}");

    // RBAC grants take effect. (Not with the bootstrap `view`/`edit`/`admin`
    // roles: they are aggregated, and without kube-controller-manager nothing
    // fills in their rules.) The authorizer reads RBAC objects through an
    // informer, so the grant shows after a moment.
    kube.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "-n",
        "default",
        "--verb=get,list",
        "--resource=pods",
    ])?;
    kube.kubectl_ok(&[
        "create",
        "rolebinding",
        "probe-pod-reader",
        "-n",
        "default",
        "--role=pod-reader",
        "--serviceaccount=default:probe",
    ])?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = checked_output(
            kube.kubectl_with(&kubeconfig)
                .args(["get", "pods", "-n", "default"]),
        );
        match listed {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => return Err(e.context("grant never took effect")),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    Ok(())
}

#[test]
fn apiserver_restart_keeps_data_and_port() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    kube.kubectl_ok(&[
        "create",
        "configmap",
        "survivor",
        "-n",
        "default",
        "--from-literal=k=v",
    ])?;
    let url_before = kube.server_url().to_owned();

    kube.stop_apiserver()?;
    let down = kube
        .kubectl()
        .args(["get", "ns", "default", "--request-timeout=3s"])
        .output()?;
    ensure!(
        !down.status.success(),
        "kube-apiserver still answers after stop"
    );

    let started = Instant::now();
    kube.start_apiserver()?;
    println!("kube-apiserver restarted in {:?}", started.elapsed());
    ensure!(kube.server_url() == url_before);

    let value = kube.kubectl_ok(&[
        "get",
        "configmap",
        "survivor",
        "-n",
        "default",
        "-o",
        "jsonpath={.data.k}",
    ])?;
    ensure!(value == "v", "configmap lost across restart: {value:?}");
    Ok(())
}

#[test]
fn dropping_stops_the_processes() -> Result<()> {
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    let env = std::fs::read_to_string(kube.dir().join("env"))?;
    let pids: Vec<u32> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, v)| k.ends_with("_PID") && !v.is_empty())
        .map(|(_, v)| v.parse())
        .collect::<Result<_, _>>()?;
    ensure!(
        pids.len() >= 2,
        "expected etcd and kube-apiserver pids in {env}"
    );
    let dir = kube.dir().to_owned();
    drop(kube);
    let deadline = Instant::now() + Duration::from_secs(15);
    for pid in pids {
        // A process gone, or one that is no longer ours (empty cmdline of a zombie).
        while std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty()) {
            if Instant::now() > deadline {
                bail!("pid {pid} still running after drop");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    ensure!(!dir.exists(), "{} not removed", dir.display());
    Ok(())
}
