//! Measuring lab links with ping and iperf3.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::{Lab, Node};

/// The result of one `ping` run.
#[derive(Debug, Clone, PartialEq)]
pub struct PingStats {
    /// Echo requests sent.
    pub transmitted: u32,
    /// Echo replies received.
    pub received: u32,
    /// Round-trip time of each reply, in milliseconds, in arrival order.
    pub rtts_ms: Vec<f64>,
}

impl PingStats {
    /// Fraction of requests without a reply (0.0–1.0).
    pub fn loss(&self) -> f64 {
        if self.transmitted == 0 {
            return 0.0;
        }
        1.0 - f64::from(self.received) / f64::from(self.transmitted)
    }

    /// Median RTT in milliseconds, or `None` without replies.
    pub fn median_ms(&self) -> Option<f64> {
        super::median(&self.rtts_ms)
    }

    /// Smallest RTT in milliseconds, or `None` without replies.
    pub fn min_ms(&self) -> Option<f64> {
        self.rtts_ms.iter().copied().min_by(f64::total_cmp)
    }
}

/// Parses iputils `ping` output: every `time=X ms` and the
/// `N packets transmitted, M received` summary.
pub fn parse_ping(output: &str) -> Result<PingStats> {
    let rtts_ms = output
        .lines()
        .filter_map(|line| line.split_once("time=")?.1.split_whitespace().next())
        .map(|t| {
            t.parse::<f64>()
                .with_context(|| format!("bad ping time {t:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let summary = output
        .lines()
        .find(|line| line.contains("packets transmitted"))
        .context("ping printed no summary")?;
    let count = |word: &str| -> Result<u32> {
        summary
            .split(',')
            .find(|part| part.contains(word))
            .and_then(|part| part.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no {word:?} count in {summary:?}"))
    };
    Ok(PingStats {
        transmitted: count("transmitted")?,
        received: count("received")?,
        rtts_ms,
    })
}

impl Lab {
    /// Pings `to` from `from` `count` times, `interval` apart, using
    /// `from`'s node address as source. Lost echoes are not an error.
    pub fn ping(
        &self,
        from: &Node,
        to: Ipv4Addr,
        count: u32,
        interval: Duration,
    ) -> Result<PingStats> {
        let output = self
            .command(from, "ping")
            .args(["-n", "-c", &count.to_string()])
            .args(["-i", &format!("{:.3}", interval.as_secs_f64())])
            .args(["-W", "2", "-I", &from.addr().to_string(), &to.to_string()])
            .output()
            .context("starting ping")?;
        // iputils ping exits 1 when replies are missing, 2 on errors.
        if output.status.code() == Some(2) || output.status.code().is_none() {
            bail!(
                "ping {to} from {} failed: {}",
                from.name(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        parse_ping(&String::from_utf8_lossy(&output.stdout))
    }

    /// The median RTT of a `ping` run, in microseconds: the reference that timing
    /// tests compare linkmeter with. An error when no echo came back.
    pub fn ping_median_us(
        &self,
        from: &Node,
        to: Ipv4Addr,
        count: u32,
        interval: Duration,
    ) -> Result<f64> {
        let stats = self.ping(from, to, count, interval)?;
        let ms = stats
            .median_ms()
            .with_context(|| format!("no ping replies from {to}: {stats:?}"))?;
        Ok(ms * 1000.0)
    }

    /// Runs an iperf3 TCP test of `seconds` from `client` to `server`'s
    /// node address and returns the goodput the server received, in bit/s.
    pub fn iperf3(&self, server: &Node, client: &Node, seconds: u32) -> Result<f64> {
        self.iperf3_omitting(server, client, seconds, 0)
    }

    /// Like [`Lab::iperf3`], but leaves the first `omit` seconds (slow start) out of
    /// the figure (`iperf3 -O`), as linkmeter's adaptive probe does: the reference for
    /// a short test on a link with a deep queue.
    pub fn iperf3_omitting(
        &self,
        server: &Node,
        client: &Node,
        seconds: u32,
        omit: u32,
    ) -> Result<f64> {
        let addr = server.addr().to_string();
        let guard = self.spawn(
            self.command(server, "iperf3")
                .args(["-s", "-1", "--forceflush", "-B", &addr])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        )?;
        // Wait until the server listens, so the client cannot race it.
        let stdout = guard.take_stdout().context("iperf3 stdout not piped")?;
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .context("iperf3 server exited before listening")??;
            if line.contains("listening") {
                break;
            }
        }
        // Keep draining: a closed pipe would kill the server with SIGPIPE at
        // its next report. The thread ends when the server exits.
        std::thread::spawn(move || lines.for_each(drop));
        let output = self
            .command(client, "iperf3")
            .args(["-c", &addr, "-B", &client.addr().to_string()])
            .args(["-t", &seconds.to_string(), "-O", &omit.to_string(), "-J"])
            .output()
            .context("starting iperf3 client")?;
        let report: serde_json::Value = serde_json::from_slice(&output.stdout)
            .with_context(|| format!("iperf3 client ({}) printed no JSON", output.status))?;
        if let Some(error) = report.get("error") {
            bail!("iperf3 client: {error}");
        }
        report["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .context("iperf3 JSON has no end.sum_received.bits_per_second")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
PING 10.77.0.2 (10.77.0.2) from 10.77.0.1 : 56(84) bytes of data.
64 bytes from 10.77.0.2: icmp_seq=1 ttl=64 time=14.1 ms
64 bytes from 10.77.0.2: icmp_seq=3 ttl=64 time=14.3 ms
64 bytes from 10.77.0.2: icmp_seq=4 ttl=64 time=14.2 ms

--- 10.77.0.2 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 150ms
rtt min/avg/max/mdev = 14.100/14.200/14.300/0.081 ms
";

    #[test]
    fn parses_times_and_loss() -> Result<()> {
        let stats = parse_ping(SAMPLE)?;
        assert_eq!((stats.transmitted, stats.received), (4, 3));
        assert_eq!(stats.rtts_ms, vec![14.1, 14.3, 14.2]);
        assert_eq!(stats.median_ms(), Some(14.2));
        assert_eq!(stats.min_ms(), Some(14.1));
        assert!((stats.loss() - 0.25).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn missing_summary_is_an_error() {
        assert!(parse_ping("ping: connect: Network is unreachable\n").is_err());
    }
}
