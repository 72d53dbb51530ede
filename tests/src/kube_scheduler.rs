//! A real kube-scheduler (1.20, built with kube-apiserver by `scripts/kube-env.sh
//! install`) against a [`KubeEnv`], and helpers for scheduling tests: Nodes that pods
//! fit on without a kubelet, pods for a named scheduler, waiting for a binding, and
//! the FailedScheduling events.
//!
//! [`KubeScheduler::start`] writes a `KubeSchedulerConfiguration`
//! (`kubescheduler.config.k8s.io/v1beta1`) into the environment's directory: one
//! profile under [`SchedulerConfig::scheduler_name`], leader election off, the admin
//! kubeconfig, and optionally one HTTP extender ([`ExtenderConfig`]). It starts the
//! binary with `--config FILE --secure-port=0`, and waits until the scheduler has
//! processed a probe pod, so a pod created afterwards is scheduled at once. Dropping the
//! [`KubeScheduler`] stops the process.
//!
//! What kube-scheduler 1.20 does with ports: with `--config`, `--port`/`--address` are
//! ignored and the insecure healthz/metrics server listens on the file's
//! `healthzBindAddress`/`metricsBindAddress`, whose port must be 1-65535 (so it cannot be
//! switched off); an empty address means `0.0.0.0:10251`. The harness therefore puts
//! both on `127.0.0.1` and a free port of its own ([`KubeScheduler::healthz_url`],
//! `/metrics` on the same port). `--secure-port=0` switches the HTTPS server off.
//!
//! There is no kubelet or controller-manager in the environment, so:
//! - [`create_node`] sets the Node's `status.allocatable`/`capacity` itself and removes
//!   the `node.kubernetes.io/not-ready:NoSchedule` taint that admission adds;
//! - no ServiceAccount exists (not even `default`) and none gets a token Secret, so pods
//!   need `automountServiceAccountToken: false` ([`pod_manifest`] sets it) and their
//!   ServiceAccount created first ([`create_pod`] does);
//! - a bound pod stays `Pending` with `PodScheduled=True` and `spec.nodeName` set.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use linkmeter_tests::kube_env::KubeEnv;
//! # use linkmeter_tests::kube_scheduler::*;
//! # fn main() -> anyhow::Result<()> {
//! let Some(kube) = KubeEnv::start_or_skip()? else { return Ok(()) };
//! create_node(&kube, "n1", &[], "4", "8Gi", "110")?;
//! let _scheduler = KubeScheduler::start(&kube, &SchedulerConfig::default())?;
//! let pod = pod_manifest("default", "p", DEFAULT_SCHEDULER_NAME, &[("cpu", "100m")]);
//! create_pod(&kube, &pod)?;
//! let node = wait_for_binding(&kube, "default", "p", Duration::from_secs(30))?;
//! # Ok(()) }
//! ```

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::BuildHasher as _;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

use crate::aggregator::admin_get;
use crate::kube_env::KubeEnv;

/// The profile name [`SchedulerConfig::default`] uses; pods opt in with
/// `spec.schedulerName`.
pub const DEFAULT_SCHEDULER_NAME: &str = "linkmeter-scheduler";
/// `httpTimeout` of the configured extender (kube-scheduler's own default, too).
pub const EXTENDER_HTTP_TIMEOUT: &str = "5s";
/// The taint the apiserver's TaintNodesByCondition admission puts on every new Node;
/// only the controller-manager would take it off.
pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
/// Namespace of the readiness probe pods.
const PROBE_NAMESPACE: &str = "default";
/// Label the probe pods select nodes by; no Node carries it, so they never bind.
const PROBE_LABEL: &str = "linkmeter.dev/scheduler-probe";
/// How often the helpers poll the API server.
const POLL: Duration = Duration::from_millis(50);
/// How long [`Drop`] waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Counter for file and probe names, unique within the process.
static INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// One HTTP extender in the scheduler's configuration. The scheduler POSTs to
/// `{url_prefix}/filter` and, when `weight > 0`, `{url_prefix}/prioritize`; see
/// DESIGN.md §9 for the wire format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtenderConfig {
    /// `urlPrefix`, e.g. `http://127.0.0.1:PORT/scheduler` (plain HTTP).
    pub url_prefix: String,
    /// `nodeCacheCapable`: true sends only `NodeNames`, false whole `Nodes`.
    pub node_cache_capable: bool,
    /// `weight` of the extender's scores. 0 configures no `prioritizeVerb` (filter
    /// only): kube-scheduler refuses a prioritize verb without a positive weight.
    pub weight: u32,
    /// `ignorable`: when true, an unreachable or failing extender is skipped instead of
    /// failing the scheduling attempt.
    pub ignorable: bool,
}

impl ExtenderConfig {
    /// An extender at `url_prefix` that is node-cache capable, has weight 1 and is not
    /// ignorable.
    pub fn new(url_prefix: impl Into<String>) -> Self {
        Self {
            url_prefix: url_prefix.into(),
            node_cache_capable: true,
            weight: 1,
            ignorable: false,
        }
    }

    /// The `extenders[]` entry of a v1beta1 `KubeSchedulerConfiguration`.
    pub fn to_json(&self) -> Value {
        let mut ext = json!({
            "urlPrefix": self.url_prefix,
            "filterVerb": "filter",
            "nodeCacheCapable": self.node_cache_capable,
            "ignorable": self.ignorable,
            "httpTimeout": EXTENDER_HTTP_TIMEOUT,
            "enableHTTPS": false,
        });
        if self.weight > 0 {
            ext["prioritizeVerb"] = json!("prioritize");
            ext["weight"] = json!(self.weight);
        }
        ext
    }
}

/// What [`KubeScheduler::start`] configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerConfig {
    /// The profile's `schedulerName` (default [`DEFAULT_SCHEDULER_NAME`]). Pods with
    /// another `spec.schedulerName` are left alone.
    pub scheduler_name: String,
    /// One HTTP extender, or none (default).
    pub extender: Option<ExtenderConfig>,
    /// klog verbosity, `-v` (default 2: bindings and scheduling failures are logged).
    pub verbosity: u8,
    /// How long start may take until the scheduler has handled the probe pod (default
    /// 60 s).
    pub start_timeout: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            scheduler_name: DEFAULT_SCHEDULER_NAME.to_owned(),
            extender: None,
            verbosity: 2,
            start_timeout: Duration::from_secs(60),
        }
    }
}

impl SchedulerConfig {
    /// The default configuration with `extender`.
    pub fn with_extender(extender: ExtenderConfig) -> Self {
        Self {
            extender: Some(extender),
            ..Self::default()
        }
    }

    /// The v1beta1 `KubeSchedulerConfiguration` for `kubeconfig`, with the insecure
    /// healthz/metrics server on `127.0.0.1:healthz_port`.
    pub fn to_json(&self, kubeconfig: &Path, healthz_port: u16) -> Result<Value> {
        let kubeconfig = kubeconfig
            .to_str()
            .context("kubeconfig path is not UTF-8")?;
        let bind = format!("127.0.0.1:{healthz_port}");
        let mut cfg = json!({
            "apiVersion": "kubescheduler.config.k8s.io/v1beta1",
            "kind": "KubeSchedulerConfiguration",
            "leaderElection": { "leaderElect": false },
            "clientConnection": { "kubeconfig": kubeconfig },
            "healthzBindAddress": bind,
            "metricsBindAddress": bind,
            "profiles": [ { "schedulerName": self.scheduler_name } ],
        });
        if let Some(ext) = &self.extender {
            cfg["extenders"] = json!([ext.to_json()]);
        }
        Ok(cfg)
    }
}

/// A running kube-scheduler. Its output goes to a log file in the environment's
/// directory ([`KubeScheduler::log_tail`]). Dropping it sends SIGTERM, then SIGKILL
/// after 10 s, and reaps it.
///
/// The process also gets SIGKILL when the thread that started it exits
/// (`PR_SET_PDEATHSIG`), so a test process that dies without dropping it leaves no
/// scheduler behind; keep the value on the thread that created it.
#[derive(Debug)]
pub struct KubeScheduler {
    child: Child,
    config_path: PathBuf,
    log_path: PathBuf,
    scheduler_name: String,
    healthz_port: u16,
}

impl KubeScheduler {
    /// Starts kube-scheduler against `env` with `config` and waits until it has
    /// handled a probe pod (created and deleted again in `default`, whose `default`
    /// ServiceAccount it creates when missing). Fails when the
    /// binary is missing (run `scripts/kube-env.sh install`), when the process exits, or
    /// when the probe is not handled within [`SchedulerConfig::start_timeout`]; the
    /// error carries the log's tail.
    ///
    /// Kubernetes tests skip through [`KubeEnv::start_or_skip`]; with an environment in
    /// hand there is nothing left to skip.
    pub fn start(env: &KubeEnv, config: &SchedulerConfig) -> Result<Self> {
        let binary = env.binaries().kube_scheduler.clone().with_context(|| {
            format!(
                "no kube-scheduler binary: run `scripts/kube-env.sh install` (it builds \
                 kube-scheduler next to kube-apiserver, unless LINKMETER_KUBE_COMPONENTS \
                 leaves it out; with KUBEBUILDER_ASSETS put one there), script: {}",
                crate::kube_env::script_path().display()
            )
        })?;
        // A healthz port picked here can be taken by someone else before the scheduler
        // binds it; then it exits at once, and a second try picks another.
        let mut last_err = None;
        for _ in 0..3 {
            match Self::start_once(env, config, &binary) {
                Ok(s) => return Ok(s),
                Err(e) if format!("{e:#}").contains("address already in use") => {
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("kube-scheduler did not start")))
    }

    fn start_once(env: &KubeEnv, config: &SchedulerConfig, binary: &Path) -> Result<Self> {
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let healthz_port = free_port()?;
        let config_path = env.dir().join(format!("kube-scheduler-{n}.json"));
        let log_path = env.dir().join(format!("kube-scheduler-{n}.log"));
        let text =
            serde_json::to_string_pretty(&config.to_json(env.kubeconfig_path(), healthz_port)?)
                .context("serialising the scheduler configuration")?;
        std::fs::write(&config_path, text)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;

        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(&config_path)
            // With --config, --port is ignored (see the module docs); this one counts.
            .arg("--secure-port=0")
            .arg(format!("-v={}", config.verbosity))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        kill_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        let mut sched = Self {
            child,
            config_path,
            log_path,
            scheduler_name: config.scheduler_name.clone(),
            healthz_port,
        };
        // On error `sched` is dropped here, which stops the process.
        sched.wait_ready(env, config.start_timeout, n)?;
        Ok(sched)
    }

    /// Waits until a probe pod for this scheduler's profile is marked unschedulable
    /// (it selects a node label nobody has), which shows the scheduler is connected, has
    /// synced its caches and runs its scheduling loop; then deletes the probe.
    fn wait_ready(&mut self, env: &KubeEnv, timeout: Duration, n: usize) -> Result<()> {
        let probe = format!("linkmeter-scheduler-probe-{}-{n}", std::process::id());
        let mut manifest = pod_manifest(PROBE_NAMESPACE, &probe, &self.scheduler_name, &[]);
        manifest["spec"]["nodeSelector"] = json!({ PROBE_LABEL: "none" });
        create_pod(env, &manifest)?;
        let deadline = Instant::now() + timeout;
        let outcome = loop {
            if let Some(status) = self.child.try_wait().context("checking kube-scheduler")? {
                break Err(self.startup_error(&format!("exited during startup ({status})")));
            }
            let cond = pod_condition(env, PROBE_NAMESPACE, &probe, "PodScheduled");
            match cond {
                Ok(Some(c)) if c.get("status").and_then(Value::as_str) == Some("False") => {
                    break Ok(());
                }
                Ok(_) => {}
                Err(e) => break Err(e.context("reading the probe pod")),
            }
            if Instant::now() >= deadline {
                break Err(self.startup_error(&format!(
                    "did not handle probe pod {PROBE_NAMESPACE}/{probe} within {timeout:?}"
                )));
            }
            std::thread::sleep(POLL);
        };
        let deleted = delete_pod(env, PROBE_NAMESPACE, &probe);
        outcome?;
        deleted
    }

    fn startup_error(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "kube-scheduler {what}; config {}, last lines of {}:\n{}",
            self.config_path.display(),
            self.log_path.display(),
            self.log_tail(40)
        )
    }

    /// The last `lines` lines of the scheduler's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The log file (klog output, stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The `KubeSchedulerConfiguration` file it runs with.
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The profile's `schedulerName`.
    pub fn scheduler_name(&self) -> &str {
        &self.scheduler_name
    }

    /// `http://127.0.0.1:PORT/healthz` (plain HTTP, no authentication); `/metrics` is
    /// served on the same port.
    pub fn healthz_url(&self) -> String {
        format!("http://127.0.0.1:{}/healthz", self.healthz_port)
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has ended, e.g. on a bad configuration.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.child.try_wait().context("checking kube-scheduler")
    }

    fn stop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) on the pid of our own child, not reaped yet (try_wait just
            // said it is running), so the pid cannot belong to anyone else.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "kube-scheduler ({}) ignored SIGTERM; killing it",
            self.child.id()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KubeScheduler {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Makes the child get SIGKILL when the spawning thread exits.
fn kill_with_parent(cmd: &mut Command) {
    let parent = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe functions (prctl, getppid); it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// A TCP port on 127.0.0.1 that is free now, from 20000-32767: below Linux's ephemeral
/// range, so an outgoing connection cannot take it meanwhile (as kube-env.sh does).
fn free_port() -> Result<u16> {
    let seed = RandomState::new().hash_one(std::process::id());
    for i in 0..200u64 {
        let port = u16::try_from(20000 + (seed.wrapping_add(i.wrapping_mul(7919))) % 12768)
            .context("port out of range")?;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port found in 20000-32767")
}

/// Creates Node `name` that pods fit on without a kubelet: `labels` (plus
/// `kubernetes.io/hostname: name` unless given), `status.capacity` and
/// `status.allocatable` of `cpu`, `memory` and `pods` (quantities, e.g. "4", "8Gi",
/// "110"; a missing pods count would mean 0). Status set on create sticks in 1.20;
/// should it not, it is patched through `/status`. Then removes the
/// [`NOT_READY_TAINT`] that admission added.
pub fn create_node(
    env: &KubeEnv,
    name: &str,
    labels: &[(&str, &str)],
    cpu: &str,
    memory: &str,
    pods: &str,
) -> Result<()> {
    create_node_at(env, name, labels, None, (cpu, memory, pods))
}

/// [`create_node`] with an `InternalIP` (where agents find the node, as a kubelet
/// registers it) when `internal_ip` is given; `resources` is (cpu, memory, pods).
pub fn create_node_at(
    env: &KubeEnv,
    name: &str,
    labels: &[(&str, &str)],
    internal_ip: Option<std::net::Ipv4Addr>,
    (cpu, memory, pods): (&str, &str, &str),
) -> Result<()> {
    let mut label_map = serde_json::Map::new();
    label_map.insert("kubernetes.io/hostname".into(), json!(name));
    for (k, v) in labels {
        label_map.insert((*k).into(), json!(v));
    }
    let resources = json!({ "cpu": cpu, "memory": memory, "pods": pods });
    let mut status = json!({ "capacity": resources, "allocatable": resources });
    if let Some(ip) = internal_ip {
        status["addresses"] = json!([
            {"type": "InternalIP", "address": ip.to_string()},
            {"type": "Hostname", "address": name},
        ]);
    }
    let node = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "labels": label_map },
        "status": status,
    });
    env.kubectl_stdin(&["create", "-f", "-"], &node.to_string())
        .with_context(|| format!("creating Node {name}"))?;

    let path = format!("/api/v1/nodes/{name}");
    let get = || -> Result<Value> {
        admin_get(env, &path)?.with_context(|| format!("Node {name} vanished after create"))
    };
    let has_pods = |n: &Value| n.pointer("/status/allocatable/pods").is_some();
    let mut current = get()?;
    if !has_pods(&current) {
        let resp = env.curl_admin(
            &[
                "-X",
                "PATCH",
                "-H",
                "Content-Type: application/merge-patch+json",
                "--data",
                &json!({ "status": status }).to_string(),
            ],
            &format!("{}{path}/status", env.server_url()),
        )?;
        ensure!(
            resp.status == 200,
            "PATCH {path}/status: HTTP {}: {}",
            resp.status,
            resp.body
        );
        current = get()?;
        ensure!(
            has_pods(&current),
            "Node {name} has no status.allocatable.pods even after PATCH /status: {current}"
        );
    }

    if node_taint_keys(&current)
        .iter()
        .any(|k| k == NOT_READY_TAINT)
    {
        env.kubectl_ok(&[
            "taint",
            "node",
            name,
            &format!("{NOT_READY_TAINT}:NoSchedule-"),
        ])
        .with_context(|| format!("removing the {NOT_READY_TAINT} taint from Node {name}"))?;
        let after = get()?;
        let left = node_taint_keys(&after);
        ensure!(
            !left.iter().any(|k| k == NOT_READY_TAINT),
            "Node {name} still has taints {left:?}"
        );
    }
    Ok(())
}

fn node_taint_keys(node: &Value) -> Vec<String> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t.get("key").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A Pod for scheduling tests: `schedulerName: scheduler_name`,
/// `automountServiceAccountToken: false`, `terminationGracePeriodSeconds: 0` (so even a
/// bound pod, with no kubelet to confirm, deletes at once) and one container (an image
/// that is never pulled) requesting `requests` (e.g. `[("cpu", "500m")]`). Add
/// annotations, node selectors and the like to the returned value before
/// [`create_pod`].
pub fn pod_manifest(
    namespace: &str,
    name: &str,
    scheduler_name: &str,
    requests: &[(&str, &str)],
) -> Value {
    let requests: serde_json::Map<String, Value> = requests
        .iter()
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace },
        "spec": {
            "schedulerName": scheduler_name,
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "main",
                "image": "registry.invalid/linkmeter/never-pulled:0",
                "resources": { "requests": requests },
            }],
        },
    })
}

/// Creates the pod in `manifest` (e.g. a [`pod_manifest`]) with `kubectl apply`, after
/// making sure its ServiceAccount exists ([`ensure_service_account`]; the ServiceAccount
/// admission refuses pods whose account is missing, and without a controller-manager not
/// even `default` exists). Namespace and account default to `default`.
pub fn create_pod(env: &KubeEnv, manifest: &Value) -> Result<()> {
    let ns = manifest
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let account = manifest
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("default");
    ensure_service_account(env, ns, account)?;
    env.kubectl_stdin(&["apply", "-f", "-"], &manifest.to_string())
        .context("creating the pod (kubectl apply)")?;
    Ok(())
}

/// Creates ServiceAccount `ns/name` unless it exists. It gets no token Secret (no
/// controller-manager), which is fine for pods with `automountServiceAccountToken:
/// false`.
pub fn ensure_service_account(env: &KubeEnv, ns: &str, name: &str) -> Result<()> {
    let path = format!("/api/v1/namespaces/{ns}/serviceaccounts");
    let body = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": name, "namespace": ns },
    });
    let resp = env.curl_admin(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data",
            &body.to_string(),
        ],
        &format!("{}{path}", env.server_url()),
    )?;
    // 409: it exists already.
    ensure!(
        resp.status == 201 || resp.status == 409,
        "POST {path} ({name}): HTTP {}: {}",
        resp.status,
        resp.body
    );
    Ok(())
}

/// Deletes pod `ns/name` at once (grace period 0); a missing pod is fine.
pub fn delete_pod(env: &KubeEnv, ns: &str, name: &str) -> Result<()> {
    env.kubectl_ok(&[
        "delete",
        "pod",
        "-n",
        ns,
        name,
        "--grace-period=0",
        "--force",
        "--ignore-not-found",
        "--wait=false",
    ])
    .with_context(|| format!("deleting pod {ns}/{name}"))?;
    Ok(())
}

/// Pod `ns/name` as JSON, `None` when it does not exist.
pub fn get_pod(env: &KubeEnv, ns: &str, name: &str) -> Result<Option<Value>> {
    admin_get(env, &format!("/api/v1/namespaces/{ns}/pods/{name}"))
}

/// The pod's `status.conditions[]` entry of type `kind` (e.g. `PodScheduled`).
pub fn pod_condition(env: &KubeEnv, ns: &str, name: &str, kind: &str) -> Result<Option<Value>> {
    let Some(pod) = get_pod(env, ns, name)? else {
        return Ok(None);
    };
    Ok(pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
                .cloned()
        }))
}

/// The node `pod` is bound to (its non-empty `spec.nodeName`).
pub fn bound_node(pod: &Value) -> Option<&str> {
    pod.pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

/// Polls pod `ns/name` until it has a `spec.nodeName` and returns it. On timeout the
/// error shows the pod's PodScheduled condition and its FailedScheduling events.
pub fn wait_for_binding(env: &KubeEnv, ns: &str, name: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let pod = get_pod(env, ns, name)?;
        if let Some(node) = pod.as_ref().and_then(bound_node) {
            return Ok(node.to_owned());
        }
        if Instant::now() >= deadline {
            let condition = pod
                .as_ref()
                .and_then(|p| p.pointer("/status/conditions"))
                .map_or_else(|| "none".to_owned(), Value::to_string);
            let events = failed_scheduling_events(env, ns, name).unwrap_or_default();
            bail!(
                "pod {ns}/{name} not bound within {timeout:?} (exists: {}); conditions: \
                 {condition}; FailedScheduling events: {events:?}",
                pod.is_some()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Messages of the events with reason `FailedScheduling` about pod `ns/name`, oldest
/// first. The scheduler counts repeats in one event, so each distinct message
/// appears about once.
pub fn failed_scheduling_events(env: &KubeEnv, ns: &str, name: &str) -> Result<Vec<String>> {
    let path = format!(
        "/api/v1/namespaces/{ns}/events?fieldSelector=involvedObject.kind=Pod,\
         involvedObject.name={name},reason=FailedScheduling"
    );
    let list = admin_get(env, &path)?.with_context(|| format!("GET {path}: 404"))?;
    let mut events: Vec<(String, String)> = list
        .get("items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|e| {
                    let msg = e.get("message").and_then(Value::as_str)?;
                    // Events from the events.k8s.io API carry eventTime; legacy ones
                    // firstTimestamp. Both are RFC 3339 and sort as text.
                    let at = ["eventTime", "firstTimestamp"]
                        .iter()
                        .find_map(|k| e.get(*k).and_then(Value::as_str))
                        .unwrap_or_default();
                    Some((at.to_owned(), msg.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    events.sort();
    Ok(events.into_iter().map(|(_, msg)| msg).collect())
}

/// Polls [`failed_scheduling_events`] until there is at least one and returns them.
pub fn wait_for_failed_scheduling(
    env: &KubeEnv,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + timeout;
    loop {
        let events = failed_scheduling_events(env, ns, name)?;
        if !events.is_empty() {
            return Ok(events);
        }
        if Instant::now() >= deadline {
            let condition = pod_condition(env, ns, name, "PodScheduled")?;
            bail!(
                "no FailedScheduling event for pod {ns}/{name} within {timeout:?}; \
                 PodScheduled: {condition:?}"
            );
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_profile_and_extender() {
        let cfg = SchedulerConfig::with_extender(ExtenderConfig {
            url_prefix: "http://127.0.0.1:1/x".into(),
            node_cache_capable: false,
            weight: 3,
            ignorable: true,
        });
        let v = cfg
            .to_json(Path::new("/tmp/kc"), 23456)
            .expect("UTF-8 path");
        assert_eq!(v["profiles"][0]["schedulerName"], DEFAULT_SCHEDULER_NAME);
        assert_eq!(v["leaderElection"]["leaderElect"], false);
        assert_eq!(v["clientConnection"]["kubeconfig"], "/tmp/kc");
        assert_eq!(v["healthzBindAddress"], "127.0.0.1:23456");
        let ext = &v["extenders"][0];
        assert_eq!(ext["urlPrefix"], "http://127.0.0.1:1/x");
        assert_eq!(ext["prioritizeVerb"], "prioritize");
        assert_eq!(ext["weight"], 3);
        assert_eq!(ext["nodeCacheCapable"], false);
        assert_eq!(ext["ignorable"], true);
    }

    #[test]
    fn zero_weight_means_filter_only() {
        let ext = ExtenderConfig {
            weight: 0,
            ..ExtenderConfig::new("http://x")
        }
        .to_json();
        assert_eq!(ext["filterVerb"], "filter");
        assert!(ext.get("prioritizeVerb").is_none());
        assert!(ext.get("weight").is_none());
        let none = SchedulerConfig::default()
            .to_json(Path::new("/k"), 30000)
            .expect("UTF-8 path");
        assert!(none.get("extenders").is_none());
    }
}
