//! The `probe` and `serve` subcommands: arguments and entry points.
//!
//! The agent's CLI has `Probe(ProbeArgs)` and `Serve(ServeArgs)` subcommands that call
//! [`run_probe`] / [`run_serve`]. Values clap rejects never get here; bad values found
//! after parsing (an unparsable target, an unresolvable host) come back as
//! [`ThroughputError::Config`] inside the `anyhow::Error` (exit code 64 at the edge).

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::ThroughputError;
use super::allow::Cidr;
use super::client::{ClientConfig, Direction, DirectionReport, Progress, run_test};
use super::estimator::EstimatorConfig;
use super::protocol::DEFAULT_PORT;
use super::server::{Server, ServerConfig};
use crate::units::{parse_bytes, parse_duration};

/// `probe`: measure TCP throughput to an iperf3-compatible server, both directions.
#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    /// Server: HOST, HOST:PORT or [IPV6]:PORT (port 5201 when omitted).
    #[arg(value_name = "HOST[:PORT]")]
    pub target: String,
    /// Measure only sending (client to server).
    #[arg(long, conflicts_with = "reverse_only")]
    pub forward_only: bool,
    /// Measure only receiving (server to client, iperf3's -R).
    #[arg(long)]
    pub reverse_only: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Longest data phase per direction (e.g. 10s, 1500ms).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub max_duration: Duration,
    /// Most bytes per direction (e.g. 500M, 2G, 1GiB).
    #[arg(long, value_name = "BYTES", default_value = "10G", value_parser = parse_bytes)]
    pub max_bytes: u64,
    /// Parallel TCP streams.
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=128))]
    pub streams: u32,
    /// Deadline for connecting and for each control message.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub control_timeout: Duration,
}

/// `serve`: answer iperf3-protocol TCP tests (stock `iperf3 -c` works too).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; `[::]` also accepts IPv4 where the system is dual-stack.
    #[arg(long, value_name = "ADDR:PORT", default_value = "[::]:5201")]
    pub listen: SocketAddr,
    /// Longest test the server allows, whatever the client asks.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub max_duration: Duration,
    /// Most bytes one test may move, whatever the client asks.
    #[arg(long, value_name = "BYTES", default_value = "50G", value_parser = parse_bytes)]
    pub max_bytes: u64,
    /// Allow clients only from this network (repeatable); all when absent.
    #[arg(long = "allow", value_name = "CIDR")]
    pub allow: Vec<Cidr>,
    /// Deadline for each control-channel read and for data streams to connect.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub control_timeout: Duration,
    /// Most parallel streams per test (iperf3's own limit is 128).
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=128))]
    pub max_streams: u32,
}

/// Splits `HOST[:PORT]`, `[V6]:PORT` or a bare IPv6 address.
pub fn split_target(s: &str) -> Result<(String, u16), ThroughputError> {
    let bad = || ThroughputError::Config(format!("invalid target {s:?}: expected HOST[:PORT]"));
    if s.is_empty() {
        return Err(bad());
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        let port = match after {
            "" => DEFAULT_PORT,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .filter(|p| *p != 0)
                .ok_or_else(bad)?,
        };
        return Ok((host.to_owned(), port));
    }
    if s.parse::<IpAddr>().is_ok() {
        return Ok((s.to_owned(), DEFAULT_PORT));
    }
    match s.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            let port = port.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?;
            Ok((host.to_owned(), port))
        }
        Some(_) => Err(bad()),
        None => Ok((s.to_owned(), DEFAULT_PORT)),
    }
}

/// The JSON document `probe --json` prints.
#[derive(Debug, serde::Serialize)]
struct ProbeOutput<'a> {
    server: SocketAddr,
    results: &'a [DirectionReport],
}

/// Runs `probe`. Returns success when every requested direction was measured.
pub async fn run_probe(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let (host, port) = split_target(&args.target)?;
    let addr = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| ThroughputError::Config(format!("cannot resolve {host:?}: {e}")))?
        .next()
        .ok_or_else(|| ThroughputError::Config(format!("{host:?} has no address")))?;
    let mut cfg = ClientConfig::new(addr);
    cfg.streams = args.streams;
    cfg.control_timeout = args.control_timeout;
    cfg.estimator = EstimatorConfig {
        max_duration: args.max_duration,
        max_bytes: args.max_bytes,
        ..EstimatorConfig::default()
    };
    let directions: &[Direction] = match (args.forward_only, args.reverse_only) {
        (true, _) => &[Direction::Send],
        (_, true) => &[Direction::Receive],
        _ => &[Direction::Send, Direction::Receive],
    };
    let live = std::io::stderr().is_terminal();
    let mut reports = Vec::with_capacity(directions.len());
    for (i, dir) in directions.iter().enumerate() {
        let mut show = |p: &Progress| {
            if live {
                let mut e = std::io::stderr().lock();
                let _ = write!(
                    e,
                    "\r\x1b[2K{:<8} {:>10.2} Mbit/s  {:>5.1} s  {:>10}",
                    p.direction.to_string(),
                    p.bits_per_second / 1e6,
                    p.elapsed.as_secs_f64(),
                    human_bytes(p.bytes)
                );
                let _ = e.flush();
            }
        };
        // A stock iperf3 server re-opens its listener between tests and briefly
        // refuses, resets or reports busy: retry the setup of the second direction.
        cfg.setup_retry = if i == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs(2)
        };
        let result = run_test(&cfg, *dir, &mut show).await;
        if live {
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
        match result {
            Ok(r) => {
                if !args.json {
                    println!("{}", summary_line(&r));
                }
                reports.push(r);
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("{dir} test to {addr}"))),
        }
    }
    if args.json {
        let out = ProbeOutput {
            server: addr,
            results: &reports,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

fn summary_line(r: &DirectionReport) -> String {
    let how = if r.converged {
        "converged".to_owned()
    } else {
        format!("{:?}", r.stop).to_lowercase()
    };
    let mut s = format!(
        "{:<8} {:>10.2} Mbit/s  {} after {:.2} s, {} moved",
        r.direction.to_string(),
        r.bits_per_second / 1e6,
        how,
        r.duration.as_secs_f64(),
        human_bytes(r.app_bytes.max(r.peer_bytes.unwrap_or(0)))
    );
    if let Some(x) = r.retransmits {
        s.push_str(&format!(", {x} retransmits"));
    }
    if let Some(rtt) = r.rtt_us {
        s.push_str(&format!(", rtt {:.2} ms", f64::from(rtt) / 1000.0));
    }
    s
}

/// Runs `serve` until Ctrl-C or SIGTERM.
pub async fn run_serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = ServerConfig::new(args.listen);
    cfg.max_duration = args.max_duration;
    cfg.max_bytes = args.max_bytes;
    cfg.control_timeout = args.control_timeout;
    cfg.allow = args.allow;
    cfg.max_streams = args.max_streams;
    let server = match Server::bind(cfg.clone()).await {
        Ok(s) => s,
        // No IPv6 on this host: the default `[::]` falls back to IPv4.
        Err(ThroughputError::Io(e))
            if e.raw_os_error() == Some(libc::EAFNOSUPPORT)
                && args.listen.ip().is_unspecified() =>
        {
            cfg.listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), args.listen.port());
            Server::bind(cfg).await?
        }
        Err(e) => return Err(e.into()),
    };
    let shutdown = CancellationToken::new();
    linkmeter_runtime::shutdown::cancel_on_signals(shutdown.clone())?;
    server.run(shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let ok = |s: &str| split_target(s).expect(s);
        assert_eq!(ok("node-a"), ("node-a".into(), 5201));
        assert_eq!(ok("node-a:7000"), ("node-a".into(), 7000));
        assert_eq!(ok("10.0.0.1:5202"), ("10.0.0.1".into(), 5202));
        assert_eq!(ok("::1"), ("::1".into(), 5201));
        assert_eq!(ok("[::1]:6000"), ("::1".into(), 6000));
        assert_eq!(ok("[fe80::1]"), ("fe80::1".into(), 5201));
        for bad in [
            "",
            "host:",
            "host:0",
            "host:99999",
            "[::1",
            "[::1]x",
            ":5201",
            "a:b:c",
        ] {
            assert!(
                matches!(split_target(bad), Err(ThroughputError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn clap_args() {
        use clap::Parser;
        #[derive(Debug, Parser)]
        enum Cmd {
            Probe(ProbeArgs),
            Serve(ServeArgs),
        }
        let c = Cmd::try_parse_from([
            "x",
            "probe",
            "h:1",
            "--reverse-only",
            "--streams",
            "4",
            "--max-bytes",
            "1G",
        ])
        .expect("parses");
        let Cmd::Probe(p) = c else { panic!("probe") };
        assert!(p.reverse_only && !p.forward_only);
        assert_eq!((p.streams, p.max_bytes), (4, 1_000_000_000));
        assert!(
            Cmd::try_parse_from(["x", "probe", "h", "--forward-only", "--reverse-only"]).is_err()
        );
        assert!(Cmd::try_parse_from(["x", "probe", "h", "--streams", "0"]).is_err());
        let c = Cmd::try_parse_from(["x", "serve", "--allow", "10.0.0.0/8", "--allow", "::1"])
            .expect("parses");
        let Cmd::Serve(s) = c else { panic!("serve") };
        assert_eq!(s.allow.len(), 2);
        assert_eq!(s.listen.port(), 5201);
        assert!(Cmd::try_parse_from(["x", "serve", "--allow", "10.0.0.0/40"]).is_err());
    }
}
