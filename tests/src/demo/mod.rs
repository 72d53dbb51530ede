//! `linkmeter-demo`: the whole product on one machine. A seed-like cluster in network
//! namespaces (a VPS behind 10 Mbit/s and 45 ms, two home PCs on a 1 Gbit/s LAN, a GPU),
//! a real API server and kube-scheduler, one agent per node and the aggregator; it shows
//! the measurements coming in, the matrix beside the truth, the NetworkTopology, where
//! three example pods go and why, and writes the matrix as a picture.
//!
//! `--check` (CI) also holds the matrix to ping and iperf3 on the same paths, the
//! placements to what the truth implies, and every Grafana dashboard panel to real data.

mod dashboard;
mod heatmap;
mod interrupt;
mod matrix;
mod pods;
mod progress;
mod stack;
mod truth;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::aggregator::{NT_NAME, NT_NAMESPACE, network_topology};
use linkmeter_aggregator::api::UPLINK_CLASS_LABEL;
use progress::Steps;
use stack::Stack;

/// How long the agents get to measure every link both ways.
const MEASURE_TIMEOUT: Duration = Duration::from_secs(150);
/// How long the dashboard's queries get to return data.
const DASHBOARD_TIMEOUT: Duration = Duration::from_secs(60);

/// What the demo does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Assert the matrix, the placements and the dashboard; fail with the reasons.
    pub check: bool,
    /// Leave everything running until Ctrl-C and print how to reach it.
    pub keep: bool,
    /// Measure ping and iperf3 on every path first, as the matrix's reference.
    pub reference: bool,
    /// Start Prometheus (and check the dashboard against it).
    pub prometheus: bool,
    /// Where the picture goes.
    pub out_dir: PathBuf,
}

/// Whether the run was stopped by Ctrl-C or SIGTERM.
pub fn interrupted() -> bool {
    interrupt::requested()
}

/// Whether Prometheus can be started here.
pub fn prometheus_installed() -> bool {
    stack::prometheus_installed()
}

/// Runs the demo. Everything it started is stopped before it returns, also on error
/// and on Ctrl-C (unless `keep`, which waits for Ctrl-C first).
pub fn run(opts: &Options) -> Result<()> {
    interrupt::install();
    let mut steps = Steps::new();
    // Fail before building anything when a binary is missing.
    for bin in [
        crate::bins::agent(),
        crate::bins::aggregator(),
        crate::lab::relay_binary()?,
    ] {
        if !bin.is_file() {
            bail!(
                "{} is missing: build with `cargo build --release --bins`",
                bin.display()
            );
        }
    }
    let parts = stack::lab(&mut steps)?;
    let references = if opts.reference {
        let r = matrix::measure_references(&parts.0, &parts.1)?;
        steps.done("reference: ping and iperf3 on every link, both directions");
        Some(r)
    } else {
        None
    };
    let stack = stack::start(&mut steps, parts, opts.prometheus)?;
    let result = body(&mut steps, &stack, references.as_ref(), opts);
    if let Err(e) = &result {
        if !interrupt::requested() {
            eprintln!("demo failed: {e:#}\n{}", stack.logs());
            match stack.save_logs(&opts.out_dir.join("logs")) {
                Ok(files) => {
                    for f in files {
                        eprintln!("whole log: {}", f.display());
                    }
                }
                Err(e) => eprintln!("saving the logs failed: {e:#}"),
            }
        }
    } else if opts.keep {
        keep(&stack)?;
    }
    drop(stack);
    steps.done("stopped: agents, aggregator, scheduler, Prometheus, API server, namespaces");
    result
}

fn body(
    steps: &mut Steps,
    stack: &Stack,
    references: Option<&matrix::References>,
    opts: &Options,
) -> Result<()> {
    let measured = progress::wait_for_measurements(steps, &stack.kube, MEASURE_TIMEOUT)?;
    steps.done("every node published RTT and throughput for every peer");
    println!("\nMeasured matrix (what each node published in its NodeTopology):");
    print!("{}", matrix::table(&measured, references));

    let nt = wait_for_network_topology(stack)?;
    steps.done("the aggregator wrote the NetworkTopology");
    println!("\nNetworkTopology {NT_NAMESPACE}/{NT_NAME} (what the NetworkOverhead plugin reads):");
    print!("{nt}");

    println!("\nPlacements by the linkmeter-scheduler profile (kube-scheduler + extender):");
    let placed = pods::place_all(&stack.kube)?;
    for (ex, p) in pods::examples().iter().zip(&placed) {
        match (&p.node, &p.event) {
            (Some(node), _) => println!(
                "\n{} — {}\n  → bound to {node} in {:.1}s",
                ex.name,
                ex.about,
                p.took.as_secs_f64()
            ),
            (None, event) => println!(
                "\n{} — {}\n  → Pending; FailedScheduling: {}",
                ex.name,
                ex.about,
                event.as_deref().unwrap_or("-")
            ),
        }
        for line in p.explain.lines() {
            println!("    {line}");
        }
    }
    steps.done("placed the example pods");

    let labels = wait_for_uplink_labels(stack)?;
    println!(
        "\nNode labels for the stock scheduler (--label-nodes): {}",
        labels
            .iter()
            .map(|(n, c)| format!("{n} {UPLINK_CLASS_LABEL}={}", c.as_deref().unwrap_or("-")))
            .collect::<Vec<_>>()
            .join(", ")
    );

    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("creating {}", opts.out_dir.display()))?;
    let picture = opts.out_dir.join("linkmeter-matrix.svg");
    let names: Vec<&str> = truth::NODES.iter().map(|n| n.name).collect();
    let latest = progress::read_measured(&stack.kube).unwrap_or(measured.clone());
    let caption = "linkmeter demo: vps 10 Mbit/s, 22.5 ms each way to home-1/home-2; \
                   home LAN 1 Gbit/s, 0.5 ms each way";
    std::fs::write(&picture, heatmap::svg(&latest, &names, caption))
        .with_context(|| format!("writing {}", picture.display()))?;
    println!(
        "\nPicture of the matrix (RTT and throughput heatmaps): {}",
        picture.display()
    );

    let mut problems = Vec::new();
    if let Some(prom) = &stack.prometheus {
        let (lines, dash_problems) = dashboard::check(prom, DASHBOARD_TIMEOUT)?;
        println!(
            "\nGrafana dashboard {} against Prometheus:",
            dashboard::path().display()
        );
        for l in &lines {
            println!("  {l}");
        }
        for p in &dash_problems {
            println!("  MISSING {p}");
        }
        problems.extend(dash_problems);
        steps.done("every dashboard query checked against Prometheus");
    } else if opts.check {
        problems.push("prometheus is not installed: the dashboard cannot be checked".into());
    }
    if opts.check {
        match references {
            Some(r) => problems.extend(matrix::check(&latest, r)),
            None => problems.push("--check needs the ping/iperf3 references".into()),
        }
        problems.extend(pods::check(&placed));
        for (node, class) in &labels {
            let want = if node == "vps" { "slow" } else { "fast" };
            if class.as_deref() != Some(want) {
                problems.push(format!(
                    "Node {node}: {UPLINK_CLASS_LABEL}={class:?}, want {want}"
                ));
            }
        }
        if !problems.is_empty() {
            bail!("check failed:\n  {}", problems.join("\n  "));
        }
        steps.done("check passed: matrix within tolerance of ping/iperf3 and the truth, placements as expected, dashboard has data");
    }
    Ok(())
}

/// The NetworkTopology once it carries a bandwidth for every zone pair, as text.
fn wait_for_network_topology(stack: &Stack) -> Result<String> {
    let end = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        interrupt::check()?;
        if let Some((nt, _)) = network_topology(&stack.kube, NT_NAMESPACE, NT_NAME)? {
            let mut text = String::new();
            let mut with_bandwidth = 0;
            let mut entries = 0;
            for w in &nt.spec.weights {
                for t in &w.topology_list {
                    let _ = writeln!(text, "  weights {} / {}:", w.name, t.topology_key);
                    for o in &t.origin_list {
                        for c in &o.cost_list {
                            entries += 1;
                            with_bandwidth += usize::from(c.bandwidth_capacity.is_some());
                            let _ = writeln!(
                                text,
                                "    {} → {}: networkCost {}, bandwidthCapacity {}",
                                o.origin,
                                c.destination,
                                c.network_cost,
                                c.bandwidth_capacity.as_deref().unwrap_or("-")
                            );
                        }
                    }
                }
            }
            if entries > 0 && with_bandwidth == entries {
                return Ok(text);
            }
            if std::time::Instant::now() >= end {
                return Ok(text);
            }
        } else if std::time::Instant::now() >= end {
            bail!("no NetworkTopology {NT_NAMESPACE}/{NT_NAME} within 30 s");
        }
        interrupt::sleep(Duration::from_millis(500))?;
    }
}

/// Each demo Node's uplink-class label, once all three have one (or after 20 s).
fn wait_for_uplink_labels(stack: &Stack) -> Result<Vec<(String, Option<String>)>> {
    let end = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        interrupt::check()?;
        let mut labels = Vec::new();
        for n in &truth::NODES {
            let node =
                crate::aggregator::admin_get(&stack.kube, &format!("/api/v1/nodes/{}", n.name))?;
            let class = node
                .as_ref()
                .and_then(|v| v["metadata"]["labels"][UPLINK_CLASS_LABEL].as_str())
                .map(str::to_owned);
            labels.push((n.name.to_owned(), class));
        }
        if labels.iter().all(|(_, c)| c.is_some()) || std::time::Instant::now() >= end {
            return Ok(labels);
        }
        interrupt::sleep(Duration::from_millis(500))?;
    }
}

/// `--keep`: says how to look around, then waits for Ctrl-C.
fn keep(stack: &Stack) -> Result<()> {
    println!("\nLeft running (Ctrl-C stops everything):");
    println!(
        "  export KUBECONFIG={}",
        stack.kube.kubeconfig_path().display()
    );
    println!("  kubectl get nodetopologies,clustertopologies,nodebandwidths");
    println!("  kubectl get networktopology -n {NT_NAMESPACE} {NT_NAME} -o yaml");
    println!("  kubectl get pods -n {} -o wide", pods::NAMESPACE);
    println!(
        "  kubectl binary: {}",
        stack.kube.binaries().kubectl.display()
    );
    if let Some(p) = &stack.prometheus {
        println!("  Prometheus: http://{}", p.listen());
    }
    println!(
        "  aggregator metrics: http://{}/metrics",
        stack.aggregator_listen
    );
    for (node, addr) in &stack.host_side {
        println!(
            "  agent {node}: http://{addr}:{}/metrics",
            crate::agent::LAB_HTTP_PORT
        );
    }
    while !interrupt::requested() {
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
