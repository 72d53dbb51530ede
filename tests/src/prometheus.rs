//! A real Prometheus for tests and the demo: started on a free loopback port with the
//! scrape configuration given, in a temporary directory removed on drop.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::agent::{AgentProcess, free_port, http_get, wait_for};

/// A running Prometheus; stopped (and its data removed) on drop.
#[derive(Debug)]
pub struct Prometheus {
    process: AgentProcess,
    listen: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` with `config` (a prometheus.yml) and waits until `/-/ready`
    /// answers. Fails with its log when it does not come up within 30 s.
    pub fn start(config: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("linkmeter-prometheus-")
            .tempdir()?;
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, config)?;
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let mut cmd = Command::new("prometheus");
        cmd.arg(format!("--config.file={}", path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={listen}"));
        let process =
            AgentProcess::spawn(cmd).context("starting prometheus (apt-get install prometheus)")?;
        let ready = wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
            http_get(None, &format!("http://{listen}/-/ready"), None).ok()
        });
        if ready.is_none() {
            bail!("prometheus never became ready:\n{}", process.log());
        }
        Ok(Self {
            process,
            listen,
            _dir: dir,
        })
    }

    /// Where its HTTP API listens.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The URL of an instant query for `expr` (percent-encoded).
    pub fn query_url(&self, expr: &str) -> String {
        let q = percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC);
        format!("http://{}/api/v1/query?query={q}", self.listen)
    }
}
