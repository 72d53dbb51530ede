//! Scale bench (issue 10): `linkmeter-aggregator run` holding 5,000 NodeTopologies in its
//! watch cache, against the real test kube-apiserver. Ignored in the normal suite; run
//! it on purpose, from a release build:
//!
//! ```text
//! cargo build --release -p linkmeter-aggregator
//! cargo test -p linkmeter-tests --release --test kube_aggregator_scale -- --ignored --nocapture
//! ```
//!
//! `LINKMETER_SCALE_NODES` changes the node count (default 5,000). The cluster is
//! `cluster::synthetic::cluster(n, 32, 20, 1, now)`: 32 measured peers per node, 20
//! zones. Its Nodes and NodeTopologies (object, then status by server-side apply on
//! `/status`, as the agent writes it) are loaded with one `curl --parallel` process,
//! 32 requests in flight over multiplexed HTTP/2, before the aggregator starts, so its
//! first list holds all of them.
//!
//! Printed, not asserted: load time, the aggregator's VmRSS and VmHWM once it has
//! computed twice, compute duration, the ClusterTopology's size. Asserted: it became
//! ready, saw N nodes, wrote the ClusterTopology listing N nodes, and exited 0 on
//! SIGTERM.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use linkmeter_aggregator::api::{
    AGENT_FIELD_MANAGER, API_VERSION, ClusterTopology, NodeTopology, REGION_LABEL, ZONE_LABEL,
};
use linkmeter_aggregator::cluster::{NodeInfo, synthetic};
use linkmeter_tests::agent::{AgentProcess, free_port, http_get, sample, wait_for};
use linkmeter_tests::aggregator::{self as agg, CRDS};
use linkmeter_tests::bins;
use linkmeter_tests::kube_env::KubeEnv;
use serde_json::{Value, json};

/// Node count without `LINKMETER_SCALE_NODES`: the issue's scale target.
const DEFAULT_NODES: usize = 5_000;
/// Environment variable overriding the node count.
const NODES_ENV: &str = "LINKMETER_SCALE_NODES";
/// Measured peers per node: what an agent probes at most.
const PEERS: usize = 32;
/// Zones of the synthetic cluster.
const ZONES: usize = 20;
/// Seed of the synthetic topology, fixed so reruns load the same cluster.
const SEED: u64 = 1;
/// Requests in flight while loading.
const IN_FLIGHT: usize = 32;
/// Field manager of the test's own CRD apply.
const FIELD_MANAGER: &str = "linkmeter-tests";
/// The aggregator's `--interval`: short, so the second computation comes soon (with
/// nothing changing it comes after four intervals, 20 s).
const INTERVAL: &str = "5s";
/// Longest wait for readiness and for two computations; the first list of 5,000
/// NodeTopologies is tens of MB.
const AGGREGATOR_TIMEOUT: Duration = Duration::from_secs(300);

#[test]
#[ignore = "scale bench: minutes of load on the API server; run with --ignored --release"]
fn run_holds_thousands_of_node_topologies() -> Result<()> {
    let n = node_count();
    let Some(kube) = KubeEnv::start_or_skip()? else {
        return Ok(());
    };
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/crds/linkmeter.dev.yaml");
    let crds = crds.to_str().context("CRD path is not UTF-8")?;
    kube.apply_and_wait_for_crd(FIELD_MANAGER, "-f", crds)?;
    // apply_and_wait_for_crd waits for NodeTopology only; the ClusterTopology is written.
    agg::wait_for_crds(&kube, &CRDS[..2])?;

    // The type of `now` is inferred from `cluster`'s parameter (jiff's Timestamp), which
    // keeps jiff out of this crate's dependencies.
    let now = SystemTime::now()
        .try_into()
        .context("the clock is outside jiff's range")?;
    let generated = Instant::now();
    let (infos, topologies) = synthetic::cluster(n, PEERS, ZONES, SEED, now);
    let links: usize = topologies
        .iter()
        .filter_map(|t| t.status.as_ref())
        .map(|s| s.links.len())
        .sum();
    println!(
        "synthetic cluster: {n} nodes, {links} links, generated in {:.2?}",
        generated.elapsed()
    );

    let loading = Instant::now();
    let loader = Loader::new(&kube)?;
    let create = loader.run(&create_requests(&infos, &topologies)?, "create")?;
    let status = loader.run(&status_requests(&topologies)?, "status")?;
    let load = loading.elapsed();
    println!(
        "load: {} creates in {create:.2?}, {} status applies in {status:.2?}; \
         {load:.2?} in all ({:.0} requests/s)",
        2 * n,
        n,
        (3 * n) as f64 / load.as_secs_f64()
    );

    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(bins::aggregator());
    cmd.arg("run")
        .arg("--kubeconfig")
        .arg(kube.kubeconfig_path())
        .args(["--leader-election=false", "--interval", INTERVAL])
        .args(["--no-network-topology", "--log-format", "text"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("RUST_LOG", "info")
        .env_remove("KUBECONFIG");
    let started = Instant::now();
    let mut proc = AgentProcess::spawn(cmd)?;
    let pid = proc.pid();
    let with_log = |what: String, proc: &AgentProcess| {
        let log = proc.log();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        anyhow::anyhow!("{what}\n---- aggregator log (tail) ----\n{tail}")
    };

    let mut rss_max_seen = 0;
    let ready = wait_for(AGGREGATOR_TIMEOUT, Duration::from_millis(200), || {
        rss_max_seen = rss_max_seen.max(memory(pid).map_or(0, |m| m.rss_kb));
        http_get(None, &format!("{base}/readyz"), None).ok()
    });
    if ready.is_none() {
        return Err(with_log(
            format!("not ready within {AGGREGATOR_TIMEOUT:?}"),
            &proc,
        ));
    }
    let ready_after = started.elapsed();
    let after_ready = memory(pid).unwrap_or_default();
    println!(
        "ready after {ready_after:.2?}: VmRSS {} MiB",
        after_ready.rss_kb / 1024
    );

    let metrics = wait_for(AGGREGATOR_TIMEOUT, Duration::from_millis(500), || {
        rss_max_seen = rss_max_seen.max(memory(pid).map_or(0, |m| m.rss_kb));
        let text = http_get(None, &format!("{base}/metrics"), None).ok()?;
        let done = sample(&text, "linkmeter_aggregator_computations_total", &[])?;
        (done >= 2.0).then_some(text)
    });
    let Some(metrics) = metrics else {
        return Err(with_log(
            format!("fewer than 2 computations within {AGGREGATOR_TIMEOUT:?}"),
            &proc,
        ));
    };
    let twice_after = started.elapsed();
    let mem = memory(pid).context("reading the aggregator's /proc/PID/status")?;

    let figure = |name: &str| sample(&metrics, name, &[]).unwrap_or(f64::NAN);
    let nodes_seen = figure("linkmeter_aggregator_nodes");
    let cached = figure("linkmeter_aggregator_node_topologies");
    let stale = figure("linkmeter_aggregator_stale_nodes");
    let computations = figure("linkmeter_aggregator_computations_total");
    let compute_sum = figure("linkmeter_aggregator_compute_duration_seconds_sum");
    let compute_count = figure("linkmeter_aggregator_compute_duration_seconds_count");
    let writes_ok = agg::sum_samples(
        &metrics,
        "linkmeter_aggregator_writes_total",
        &[("kind", "ClusterTopology"), ("result", "ok")],
    );

    let path = agg::cluster_topology_path(linkmeter_aggregator::api::CLUSTER_TOPOLOGY_NAME);
    let resp = kube.curl_admin(&[], &format!("{}{path}", kube.server_url()))?;
    ensure!(
        resp.status == 200,
        "GET {path}: HTTP {}: {}",
        resp.status,
        resp.body
    );
    let object: Value = serde_json::from_str(&resp.body).context("ClusterTopology JSON")?;
    let status_bytes = serde_json::to_string(&object["status"])?.len();
    let topology: ClusterTopology =
        serde_json::from_value(object).context("ClusterTopology does not parse")?;
    let ct_status = topology.status.unwrap_or_default();
    let listed: usize = ct_status.zones.iter().map(|z| z.nodes.len()).sum();

    println!("---- linkmeter-aggregator run, {n} nodes × {PEERS} links ----");
    println!("load time:               {load:.2?}");
    println!("ready after:             {ready_after:.2?}");
    println!("2 computations after:    {twice_after:.2?}");
    println!(
        "VmRSS:                   {} kB ({:.1} MiB)",
        mem.rss_kb,
        mem.rss_kb as f64 / 1024.0
    );
    println!(
        "VmHWM:                   {} kB ({:.1} MiB)",
        mem.hwm_kb,
        mem.hwm_kb as f64 / 1024.0
    );
    println!(
        "VmRSS at ready:          {} kB; highest sampled {} kB",
        after_ready.rss_kb, rss_max_seen
    );
    println!("nodes / cached / stale:  {nodes_seen} / {cached} / {stale}");
    println!(
        "compute duration:        sum {compute_sum:.3} s over {compute_count} \
         (mean {:.3} s); calculationMillis {}",
        compute_sum / compute_count,
        ct_status.calculation_millis
    );
    println!("computations:            {computations}; ClusterTopology writes ok {writes_ok}");
    println!(
        "ClusterTopology:         {} bytes as served (JSON), status {} bytes \
         ({:.1}% of 1 MiB)",
        resp.body.len(),
        status_bytes,
        resp.body.len() as f64 * 100.0 / (1024.0 * 1024.0)
    );

    let checks = (|| -> Result<()> {
        ensure!(
            nodes_seen == n as f64,
            "linkmeter_aggregator_nodes is {nodes_seen}, want {n}"
        );
        ensure!(
            cached == n as f64,
            "linkmeter_aggregator_node_topologies is {cached}, want {n}"
        );
        ensure!(writes_ok >= 1.0, "no successful ClusterTopology write");
        ensure!(
            ct_status.node_count as usize == n && listed == n,
            "ClusterTopology: nodeCount {}, {listed} nodes listed, want {n}",
            ct_status.node_count
        );
        Ok(())
    })();
    if let Err(e) = checks {
        return Err(with_log(format!("{e:#}"), &proc));
    }

    proc.signal(libc::SIGTERM)?;
    match proc.wait_timeout(Duration::from_secs(30))? {
        Some(s) if s.success() => Ok(()),
        Some(s) => Err(with_log(format!("exited {s} after SIGTERM"), &proc)),
        None => Err(with_log("still running 30 s after SIGTERM".into(), &proc)),
    }
    // `kube` drops here and stops kube-apiserver and etcd.
}

/// `LINKMETER_SCALE_NODES`, or [`DEFAULT_NODES`].
fn node_count() -> usize {
    match std::env::var(NODES_ENV) {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n >= 2)
            .unwrap_or_else(|| panic!("{NODES_ENV}={v:?}: want a whole number, at least 2")),
        Err(_) => DEFAULT_NODES,
    }
}

/// Resident and peak resident memory of a process, kB.
#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    rss_kb: u64,
    hwm_kb: u64,
}

/// VmRSS and VmHWM from `/proc/PID/status`; `None` once the process is gone.
fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        line[key.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kb: field("VmRSS:")?,
        hwm_kb: field("VmHWM:")?,
    })
}

/// One API request of a bulk load.
struct Request {
    method: &'static str,
    /// Path and query under the server URL.
    path: String,
    content_type: &'static str,
    body: String,
    /// The status that means it worked.
    want: u16,
}

/// Node and NodeTopology creates; they do not depend on each other, so one batch.
fn create_requests(infos: &[NodeInfo], topologies: &[NodeTopology]) -> Result<Vec<Request>> {
    let mut out = Vec::with_capacity(infos.len() + topologies.len());
    for info in infos {
        let mut labels = serde_json::Map::new();
        labels.insert("kubernetes.io/hostname".into(), json!(info.name));
        if let Some(z) = &info.zone {
            labels.insert(ZONE_LABEL.into(), json!(z));
        }
        if let Some(r) = &info.region {
            labels.insert(REGION_LABEL.into(), json!(r));
        }
        let node = json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": { "name": info.name, "labels": labels },
        });
        out.push(Request {
            method: "POST",
            path: "/api/v1/nodes".into(),
            content_type: "application/json",
            body: node.to_string(),
            want: 201,
        });
    }
    for t in topologies {
        let mut object = serde_json::to_value(t)?;
        // The server drops status on create (it is a subresource); do not send it twice.
        if let Some(map) = object.as_object_mut() {
            map.remove("status");
        }
        out.push(Request {
            method: "POST",
            path: "/apis/linkmeter.dev/v1alpha1/nodetopologies".into(),
            content_type: "application/json",
            body: object.to_string(),
            want: 201,
        });
    }
    Ok(out)
}

/// Each NodeTopology's status, by server-side apply on `/status` as the agent does it.
fn status_requests(topologies: &[NodeTopology]) -> Result<Vec<Request>> {
    topologies
        .iter()
        .map(|t| {
            let name = t
                .metadata
                .name
                .as_deref()
                .context("NodeTopology without name")?;
            let patch = json!({
                "apiVersion": API_VERSION,
                "kind": "NodeTopology",
                "metadata": { "name": name },
                "status": t.status,
            });
            Ok(Request {
                method: "PATCH",
                path: format!(
                    "/apis/linkmeter.dev/v1alpha1/nodetopologies/{name}/status\
                     ?fieldManager={AGENT_FIELD_MANAGER}&force=true"
                ),
                content_type: "application/apply-patch+yaml",
                body: patch.to_string(),
                want: 200,
            })
        })
        .collect()
}

/// Runs batches of requests through one `curl --parallel` process: a process per
/// request would cost more than the requests on a small machine.
struct Loader<'a> {
    kube: &'a KubeEnv,
    dir: tempfile::TempDir,
}

impl<'a> Loader<'a> {
    fn new(kube: &'a KubeEnv) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("linkmeter-scale-")
            .tempdir()
            .context("temporary directory for request bodies")?;
        Ok(Loader { kube, dir })
    }

    /// Sends every request (in any order, [`IN_FLIGHT`] at a time); fails naming the
    /// first that did not get its wanted status, with the server's answer. Returns how
    /// long it took.
    fn run(&self, requests: &[Request], label: &str) -> Result<Duration> {
        let dir = self.dir.path().join(label);
        std::fs::create_dir_all(&dir)?;
        let mut config = String::new();
        for (i, r) in requests.iter().enumerate() {
            let body = dir.join(format!("req-{i}"));
            std::fs::write(&body, &r.body)?;
            // Each block is one transfer; `next` starts the next one (a trailing `next`
            // would be an empty transfer, which fails the whole parallel run), and
            // per-transfer options do not carry over, so every block repeats them. The
            // response file name identifies the request in the write-out line.
            if i > 0 {
                config.push_str("next\n");
            }
            let _ = write!(
                config,
                "url = \"{}{}\"\nrequest = \"{}\"\ninsecure\nmax-time = 120\n\
                 header = \"Authorization: Bearer {}\"\nheader = \"Content-Type: {}\"\n\
                 data-binary = \"@{}\"\noutput = \"{}\"\n\
                 write-out = \"%{{http_code}} %{{filename_effective}}\\n\"\n",
                self.kube.server_url(),
                r.path,
                r.method,
                self.kube.admin_token(),
                r.content_type,
                body.display(),
                dir.join(format!("resp-{i}")).display(),
            );
        }
        let config_path = dir.join("curl.config");
        std::fs::write(&config_path, config)?;
        let started = Instant::now();
        let out = Command::new("curl")
            // -s does not silence the parallel progress meter in curl 7.88; this does.
            .args(["-S", "--no-progress-meter", "--parallel", "--parallel-max"])
            .arg(IN_FLIGHT.to_string())
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .output()
            .context("running curl")?;
        let took = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mut done = vec![None; requests.len()];
        for line in stdout.lines() {
            let Some((code, file)) = line.split_once(' ') else {
                continue;
            };
            let index = file
                .rsplit_once("resp-")
                .and_then(|(_, i)| i.parse::<usize>().ok());
            if let Some(i) = index.filter(|i| *i < done.len()) {
                done[i] = code.parse::<u16>().ok();
            }
        }
        for (i, (r, code)) in requests.iter().zip(&done).enumerate() {
            if *code != Some(r.want) {
                let answer =
                    std::fs::read_to_string(dir.join(format!("resp-{i}"))).unwrap_or_default();
                let stderr = String::from_utf8_lossy(&out.stderr);
                let first = stderr.lines().next().unwrap_or("");
                bail!(
                    "{label}: {} {} answered {code:?}, want {}: {}\ncurl: {}: {first}",
                    r.method,
                    r.path,
                    r.want,
                    answer.trim(),
                    out.status,
                );
            }
        }
        // Free the disk at once: the bodies of the next batch come next.
        let _ = std::fs::remove_dir_all(&dir);
        Ok(took)
    }
}
