//! Everything the demo starts, in the order it starts it: the lab (namespaces, links),
//! etcd and kube-apiserver, the manifests and Node objects, one agent per node, the
//! aggregator with its extender, the linkmeter kube-scheduler profile and Prometheus.
//! Dropping a [`Stack`] stops it all in the reverse order.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use super::progress::Steps;
use super::truth::{GPU_MEMORY, GPU_NAME, GPU_USED, LINKS, NODES, NodeTruth};
use crate::agent::{AgentProcess, LAB_HTTP_PORT, free_port};
use crate::aggregator as agg;
use crate::fake_nvml::{FakeGpu, FakeNvml, FakeNvmlConfig, Variant};
use crate::kube_env::KubeEnv;
use crate::kube_scheduler::{
    DEFAULT_SCHEDULER_NAME, ExtenderConfig, KubeScheduler, SchedulerConfig, create_node_at,
};
use crate::lab::{DelaySpec, Lab, Node, VethSpec};
use crate::prometheus::Prometheus;

/// Where the API server listens: an address of the root namespace that every lab node
/// reaches over its own veth (see `Lab::host_address`).
pub const API_ADDR: Ipv4Addr = Ipv4Addr::new(10, 76, 255, 1);
/// The scheduler profile pods ask for.
pub const SCHEDULER_NAME: &str = DEFAULT_SCHEDULER_NAME;
/// Field manager of what the demo applies.
const FIELD_MANAGER: &str = "linkmeter-demo";
/// How often Prometheus scrapes.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(5);

/// The running demo cluster. Fields drop in declaration order: processes first, then
/// the API server, the fake GPU's files and last the lab's namespaces.
pub struct Stack {
    /// Prometheus scraping the agents and the aggregator, when installed.
    pub prometheus: Option<Prometheus>,
    /// kube-scheduler with the `linkmeter-scheduler` profile and the extender.
    pub scheduler: KubeScheduler,
    /// `linkmeter-aggregator run`.
    pub aggregator: AgentProcess,
    /// The aggregator's /metrics address.
    pub aggregator_listen: SocketAddr,
    /// One `linkmeter-agent run --kube` per node, by node name.
    pub agents: BTreeMap<String, AgentProcess>,
    /// etcd + kube-apiserver.
    pub kube: KubeEnv,
    /// home-1's fake libnvidia-ml.so and its settings (held until the agents are gone).
    _nvml: FakeNvml,
    /// Each node's address on its veth to the root namespace, where its agent's HTTP
    /// port is reached from here.
    pub host_side: BTreeMap<String, Ipv4Addr>,
    /// The namespaces and links (held: dropping deletes them).
    _lab: Lab,
}

impl Stack {
    /// Writes every process's whole log under `dir` (for a failed run) and returns the
    /// files written.
    pub fn save_logs(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut written = Vec::new();
        let mut save = |name: &str, text: String| -> Result<()> {
            let path = dir.join(format!("{name}.log"));
            std::fs::write(&path, text)?;
            written.push(path);
            Ok(())
        };
        for (name, agent) in &self.agents {
            save(&format!("agent-{name}"), agent.log())?;
        }
        save("aggregator", self.aggregator.log())?;
        save("kube-scheduler", self.scheduler.log_tail(usize::MAX))?;
        Ok(written)
    }

    /// Every process's log, for a failure report.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (name, agent) in &self.agents {
            out.push_str(&format!("---- agent {name}\n{}\n", tail(&agent.log(), 40)));
        }
        out.push_str(&format!(
            "---- aggregator\n{}\n",
            tail(&self.aggregator.log(), 40)
        ));
        out.push_str(&format!(
            "---- kube-scheduler\n{}\n",
            self.scheduler.log_tail(40)
        ));
        out
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The lab, its nodes in [`NODES`] order, and each node's address on its veth to the
/// root namespace.
pub type LabParts = (Lab, Vec<Node>, BTreeMap<String, Ipv4Addr>);

/// Builds the lab: one namespace per node, the links of [`LINKS`] and a veth from every
/// node to the root namespace for the API server.
pub fn lab(steps: &mut Steps) -> Result<LabParts> {
    let lab = Lab::new()?;
    let nodes: Vec<Node> = NODES
        .iter()
        .map(|n| lab.add_node(n.name))
        .collect::<Result<_>>()?;
    let find = |name: &str| -> Result<&Node> {
        nodes
            .iter()
            .find(|n| n.name() == name)
            .with_context(|| format!("no node {name}"))
    };
    for l in &LINKS {
        let (a, b) = (find(l.a)?, find(l.b)?);
        if l.one_way.is_zero() {
            lab.link(a, b, VethSpec::shaped(l.rate_mbit))?;
        } else {
            lab.link(a, b, DelaySpec::new(l.one_way).rate_mbit(l.rate_mbit))?;
        }
    }
    lab.host_address(API_ADDR)?;
    let mut host_side = BTreeMap::new();
    for n in &nodes {
        host_side.insert(n.name().to_owned(), lab.link_to_host(n, API_ADDR)?);
    }
    steps.done(&format!(
        "lab: {} nodes in network namespaces, {} links (lab-relay for delay and rate)",
        nodes.len(),
        LINKS.len()
    ));
    Ok((lab, nodes, host_side))
}

/// Starts the rest on `lab`: API server, objects, agents, aggregator, scheduler and,
/// when `with_prometheus`, Prometheus.
pub fn start(
    steps: &mut Steps,
    (lab, nodes, host_side): LabParts,
    with_prometheus: bool,
) -> Result<Stack> {
    let kube = KubeEnv::start_bound(Some(API_ADDR))?;
    steps.done(&format!(
        "etcd + kube-apiserver 1.20 on {}",
        kube.server_url()
    ));

    agg::apply_manifests(&kube, FIELD_MANAGER)?;
    // The node-labels component's RBAC, for the aggregator's --label-nodes.
    let labels = agg::manifests_dir().join("components/node-labels");
    for file in ["clusterrole.yaml", "clusterrolebinding.yaml"] {
        let path = labels.join(file);
        let path = path.to_str().context("manifests path is not UTF-8")?;
        kube.kubectl_ok(&[
            "apply",
            "--server-side",
            &format!("--field-manager={FIELD_MANAGER}"),
            "-f",
            path,
        ])?;
    }
    for (n, truth) in nodes.iter().zip(NODES) {
        create_node_at(
            &kube,
            n.name(),
            &[
                (linkmeter_aggregator::api::ZONE_LABEL, truth.zone),
                (linkmeter_aggregator::api::REGION_LABEL, truth.region),
            ],
            Some(n.addr()),
            ("8", "32Gi", "110"),
        )?;
    }
    steps.done(
        "manifests applied (CRDs, RBAC, namespace, the node-labels component); Nodes vps, \
         home-1, home-2 created",
    );

    let nvml = FakeNvml::new(
        Variant::Full,
        &FakeNvmlConfig {
            driver_version: Some("550.54.14".into()),
            gpus: vec![FakeGpu {
                name: Some(GPU_NAME.into()),
                uuid: Some("GPU-4090demo-0000-0000-0000-000000000001".into()),
                mem_total: Some(GPU_MEMORY),
                mem_used: Some(GPU_USED),
                util_gpu: Some(7),
                util_mem: Some(3),
                temp: Some(41),
                power: Some(35_000),
                power_limit: Some(450_000),
                ..FakeGpu::default()
            }],
            ..FakeNvmlConfig::default()
        },
    )
    .context("writing the fake NVML library for home-1")?;
    let agent_token = kube.service_account_token("linkmeter", "linkmeter-agent", 3600)?;
    let agent_kubeconfig = kube.kubeconfig_for_token(&agent_token)?;
    let mut agents = BTreeMap::new();
    for (n, truth) in nodes.iter().zip(NODES) {
        let cmd = agent_command(&lab, n, &truth, &agent_kubeconfig, &nvml);
        agents.insert(n.name().to_owned(), AgentProcess::spawn(cmd)?);
    }
    steps.done(
        "agents: linkmeter-agent run --kube on every node (home-1 with a fake-NVML RTX 4090)",
    );

    let agg_token = kube.service_account_token(agg::NAMESPACE, agg::SERVICE_ACCOUNT, 3600)?;
    let agg_kubeconfig = kube.kubeconfig_for_token(&agg_token)?;
    let aggregator_listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let extender = SocketAddr::from(([127, 0, 0, 1], free_port()?));
    let aggregator = agg::start_with_extender(
        &agg_kubeconfig,
        "demo",
        aggregator_listen,
        extender,
        Duration::from_secs(2),
    )?;
    steps.done(&format!(
        "aggregator: linkmeter-aggregator run --extender-listen {extender}"
    ));

    let scheduler = KubeScheduler::start(
        &kube,
        &SchedulerConfig {
            scheduler_name: SCHEDULER_NAME.into(),
            ..SchedulerConfig::with_extender(ExtenderConfig {
                url_prefix: format!("http://{extender}"),
                node_cache_capable: true,
                weight: 5,
                ignorable: false,
            })
        },
    )?;
    steps.done(&format!(
        "kube-scheduler 1.20 with profile {SCHEDULER_NAME} and the extender"
    ));

    let prometheus = if with_prometheus {
        let p = prometheus(&host_side, aggregator_listen)?;
        steps.done(&format!(
            "prometheus on http://{} scraping the 3 agents and the aggregator every {}s",
            p.listen(),
            SCRAPE_INTERVAL.as_secs()
        ));
        Some(p)
    } else {
        None
    };
    Ok(Stack {
        prometheus,
        scheduler,
        aggregator,
        aggregator_listen,
        agents,
        kube,
        _nvml: nvml,
        host_side,
        _lab: lab,
    })
}

/// `linkmeter-agent run --kube` on `node` as the DaemonSet runs it, with demo-sized
/// intervals: ICMP every second over a 30 s window, a throughput test per peer every
/// 40 s (the planner spreads a node's tests over the period: one every 20 s with two
/// peers), publishing at most every 5 s.
fn agent_command(
    lab: &Lab,
    node: &Node,
    truth: &NodeTruth,
    kubeconfig: &Path,
    nvml: &FakeNvml,
) -> Command {
    let mut cmd = lab.command(node, crate::bins::agent());
    cmd.args(["run", "--kube", "--node-name", node.name()])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        // Every address: lab peers reach it on the node address, this host's Prometheus
        // over the node's veth to the root namespace.
        .args(["--listen", &format!("0.0.0.0:{LAB_HTTP_PORT}")])
        .args(["--system-interval", "5s", "--gpu-interval", "5s"])
        .args(["--ping-interval", "1s", "--ping-count", "3"])
        .args(["--ping-spacing", "50ms", "--ping-timeout", "500ms"])
        .args(["--window", "30s"])
        .args([
            "--throughput-period",
            "40s",
            "--throughput-max-duration",
            "4s",
        ])
        .args(["--throughput-max-bytes", "256MiB"])
        .args(["--publish-min-interval", "5s", "--publish-heartbeat", "30s"])
        // LINKMETER_DEMO_AGENT_LOG=debug shows, e.g., every busy answer.
        .env(
            "LINKMETER_LOG_LEVEL",
            std::env::var("LINKMETER_DEMO_AGENT_LOG").unwrap_or_else(|_| "info".into()),
        )
        .env_remove("KUBECONFIG");
    if truth.gpu {
        nvml.env().apply(&mut cmd);
    } else {
        cmd.arg("--no-gpu");
    }
    cmd
}

/// Starts Prometheus with a scrape job per agent (labelled with its node, as the
/// ServiceMonitor's relabelling does) and one for the aggregator.
fn prometheus(
    host_side: &BTreeMap<String, Ipv4Addr>,
    aggregator: SocketAddr,
) -> Result<Prometheus> {
    let mut config = format!(
        "global:\n  scrape_interval: {s}s\n  evaluation_interval: {s}s\nscrape_configs:\n  \
         - job_name: linkmeter-agent\n    static_configs:\n",
        s = SCRAPE_INTERVAL.as_secs()
    );
    for (node, addr) in host_side {
        config.push_str(&format!(
            "      - targets: ['{addr}:{LAB_HTTP_PORT}']\n        labels: {{node: '{node}'}}\n"
        ));
    }
    config.push_str(&format!(
        "  - job_name: linkmeter-aggregator\n    static_configs:\n      - targets: ['{aggregator}']\n"
    ));
    Prometheus::start(&config)
}

/// Whether `prometheus` runs here (`prometheus --version` succeeds).
pub fn prometheus_installed() -> bool {
    Command::new("prometheus")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
