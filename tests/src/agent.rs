//! Driving `linkmeter-agent run` processes from tests: ports, scrapes, sample lookup,
//! and lab agents against the Kubernetes test environment (their Nodes, their command).

use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use linkmeter_aggregator::api::{REGION_LABEL, ZONE_LABEL};

use crate::kube_env::{self, KubeEnv};
use crate::lab::{Lab, Node};

/// A port that was free a moment ago on 127.0.0.1 (the OS picked it).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("bind an ephemeral port")?;
    Ok(l.local_addr()?.port())
}

/// GET `url` with curl, optionally inside network namespace `netns`; the body on 2xx.
pub fn http_get(netns: Option<&str>, url: &str, accept: Option<&str>) -> Result<String> {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "curl"]);
            c
        }
        None => Command::new("curl"),
    };
    cmd.args(["-sS", "--fail", "--max-time", "5"]);
    if let Some(a) = accept {
        cmd.args(["-H", &format!("Accept: {a}")]);
    }
    let out = cmd.arg(url).output().context("run curl")?;
    if !out.status.success() {
        bail!("GET {url}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Port lab agents serve HTTP on, at their node address.
pub const LAB_HTTP_PORT: u16 = 9477;

/// The agent's `/metrics` scrape on lab node `node` (port [`LAB_HTTP_PORT`]).
pub fn lab_metrics(node: &crate::lab::Node) -> Option<String> {
    let url = format!("http://{}:{LAB_HTTP_PORT}/metrics", node.addr());
    http_get(Some(node.netns()), &url, None).ok()
}

/// The agent's `/report` on lab node `node`, parsed.
pub fn lab_report(
    node: &crate::lab::Node,
) -> Option<linkmeter_aggregator::api::NodeTopologyStatus> {
    let url = format!("http://{}:{LAB_HTTP_PORT}/report", node.addr());
    serde_json::from_str(&http_get(Some(node.netns()), &url, None).ok()?).ok()
}

/// The values of every sample `name{labels…}` in a Prometheus text scrape whose labels
/// include all of `labels` (others may be present), in scrape order.
pub fn samples(text: &str, name: &str, labels: &[(&str, &str)]) -> impl Iterator<Item = f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, r)) => (m, r.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
            if all { value.parse().ok() } else { None }
        })
}

/// The value of the sample `name{labels…}` in a Prometheus text scrape, matching the
/// given labels (others may be present).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text, name, labels).next()
}

/// Polls `f` every `every` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(
    timeout: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// A running agent; killed on drop if still running. Its stderr goes to a file that
/// failing tests print.
#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    log: tempfile::NamedTempFile,
}

impl AgentProcess {
    /// Starts `cmd` with stderr captured to a file.
    pub fn spawn(mut cmd: Command) -> Result<Self> {
        let log = tempfile::NamedTempFile::new().context("agent log file")?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().context("reopen log")?)
            .spawn()
            .context("spawn agent")?;
        Ok(AgentProcess { child, log })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the agent logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    pub fn signal(&self, signal: i32) -> Result<()> {
        let pid = i32::try_from(self.child.id()).context("pid")?;
        // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
        let rc = unsafe { libc::kill(pid, signal) };
        if rc != 0 {
            bail!("kill({pid}, {signal}): {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` for exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok(Some(s));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The Kubernetes test environment with its API server on `addr` (a lab-only address the
/// lab's nodes reach), or `None`, after a skip line, when `LINKMETER_SKIP_KUBE=1`.
pub fn start_kube_at(addr: Ipv4Addr) -> Result<Option<KubeEnv>> {
    if std::env::var(kube_env::SKIP_ENV).is_ok_and(|v| v == "1") {
        println!("SKIPPED: Kubernetes test ({}=1)", kube_env::SKIP_ENV);
        return Ok(None);
    }
    KubeEnv::start_bound(Some(addr)).map(Some)
}

/// Creates Node `name` as a kubelet would register a lab node: InternalIP `addr` (where
/// the agents probe it), its hostname, and the zone and region labels. No kubelet runs
/// here, so the Node takes its status on create.
pub fn create_node(
    kube: &KubeEnv,
    name: &str,
    addr: Ipv4Addr,
    zone: &str,
    region: &str,
) -> Result<()> {
    let node = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                ZONE_LABEL: zone,
                REGION_LABEL: region,
                "kubernetes.io/hostname": name,
            },
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": addr.to_string()},
                {"type": "Hostname", "address": name},
            ],
        },
    });
    kube.kubectl_stdin(&["create", "-f", "-"], &node.to_string())
        .with_context(|| format!("creating Node {name}"))?;
    Ok(())
}

/// `linkmeter-agent run --kube` on lab node `node` as the DaemonSet runs it, with the
/// server in `kubeconfig` and test-sized intervals: ICMP every second over a 20 s window,
/// no GPUs, publishing at most every 5 s with a 20 s heartbeat, HTTP on the node's
/// address at [`LAB_HTTP_PORT`]. Callers add what their test varies (throughput).
pub fn kube_agent_command(lab: &Lab, node: &Node, kubeconfig: &Path) -> Command {
    let mut cmd = lab.command(node, crate::bins::agent());
    cmd.args(["run", "--kube", "--node-name", node.name()])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--listen", &format!("{}:{LAB_HTTP_PORT}", node.addr())])
        .args(["--no-gpu", "--system-interval", "5s"])
        .args(["--ping-interval", "1s", "--ping-count", "3"])
        .args(["--ping-spacing", "50ms", "--ping-timeout", "500ms"])
        .args(["--window", "20s"])
        .args(["--publish-min-interval", "5s", "--publish-heartbeat", "20s"])
        .env("LINKMETER_LOG_LEVEL", "info")
        // The flag wins anyway; keep the test's own environment out of the agent.
        .env_remove("KUBECONFIG");
    cmd
}

#[cfg(test)]
mod tests {
    use super::sample;

    #[test]
    fn finds_samples_by_name_and_labels() {
        let t = "# HELP x X.\nx{peer=\"a\",direction=\"tx\"} 1.5\nx{peer=\"b\",direction=\"tx\"} 2\ny 3\n";
        assert_eq!(sample(t, "x", &[("peer", "b")]), Some(2.0));
        assert_eq!(
            sample(t, "x", &[("direction", "tx"), ("peer", "a")]),
            Some(1.5)
        );
        assert_eq!(sample(t, "y", &[]), Some(3.0));
        assert_eq!(sample(t, "x", &[("peer", "c")]), None);
    }
}
