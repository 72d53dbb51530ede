//! Starting and stopping `lab-relay` processes (the delay links).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::link::{DelaySpec, DropDirection};

/// Environment variable naming the relay binary, for callers whose test
/// executable does not sit in cargo's target directory.
pub const RELAY_ENV: &str = "LINKMETER_LAB_RELAY";

/// How long a relay gets to exit after its stdin closes.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Finds the `lab-relay` binary: `$LINKMETER_LAB_RELAY`, else next to the
/// running test executable. Cargo puts integration tests in
/// `target/<profile>/deps/` and binaries in `target/<profile>/`, and builds
/// the package's binaries before running its integration tests.
pub fn relay_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(RELAY_ENV) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    let candidates: Vec<PathBuf> = exe
        .ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("lab-relay"))
        .collect();
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .with_context(|| {
            format!(
                "lab-relay binary not found (looked at {candidates:?}); build it with \
                 `cargo build -p linkmeter-tests --bin lab-relay` or set {RELAY_ENV}"
            )
        })
}

/// A running relay. The harness keeps its stdin open; closing it is the
/// signal to exit.
#[derive(Debug)]
pub(crate) struct Relay {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Root-namespace names of its two TUN devices (ends a and b).
    pub(crate) tun_a: String,
    pub(crate) tun_b: String,
}

impl Relay {
    /// Starts a relay for `spec` and waits for its ready line.
    pub(crate) fn start(spec: &DelaySpec) -> Result<Self> {
        let mut cmd = Command::new(relay_binary()?);
        cmd.arg("--delay-us")
            .arg(spec.one_way.as_micros().to_string())
            .arg("--queue")
            .arg(spec.queue_packets.to_string())
            .arg("--drop-dir")
            .arg(match spec.drop_direction {
                DropDirection::AToB => "ab",
                DropDirection::BToA => "ba",
                DropDirection::Both => "both",
            });
        if let Some(n) = spec.drop_every {
            cmd.arg("--drop-every").arg(n.to_string());
        }
        if let Some(mbit) = spec.rate_mbit {
            cmd.arg("--rate-kbit")
                .arg((u64::from(mbit) * 1000).to_string());
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting lab-relay")?;
        let stdin = child.stdin.take();
        let line = read_ready_line(&mut child);
        let mut relay = Self {
            child,
            stdin,
            tun_a: String::new(),
            tun_b: String::new(),
        };
        // From here on, Drop stops the relay if anything fails.
        let line = line?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("READY"), Some(a), Some(b)) => {
                relay.tun_a = a.to_owned();
                relay.tun_b = b.to_owned();
                Ok(relay)
            }
            _ => bail!("lab-relay: unexpected ready line {line:?}"),
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Changes the one-way delay of both directions for packets arriving from now
    /// on (the relay's `delay-us` command).
    pub(crate) fn set_delay(&mut self, one_way: Duration) -> Result<()> {
        let stdin = self.stdin.as_mut().context("relay already stopped")?;
        writeln!(stdin, "delay-us {}", one_way.as_micros())
            .and_then(|()| stdin.flush())
            .context("sending a command to lab-relay")
    }

    /// Stops the relay (stdin EOF, then SIGKILL after a grace period) and
    /// returns its stderr, which ends with its packet counters.
    pub(crate) fn stop(&mut self) -> Result<String> {
        drop(self.stdin.take());
        let deadline = Instant::now() + STOP_GRACE;
        while self.child.try_wait()?.is_none() {
            if Instant::now() >= deadline {
                self.child.kill()?;
                self.child.wait()?;
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            // The relay has exited, so this read ends at EOF.
            pipe.read_to_string(&mut stderr)?;
        }
        Ok(stderr)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("lab: stopping relay {}: {e:#}", self.child.id());
        }
    }
}

/// Reads the relay's first stdout line; on failure includes its stderr.
fn read_ready_line(child: &mut Child) -> Result<String> {
    let stdout = child.stdout.take().context("relay stdout not piped")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.is_empty() {
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        bail!("lab-relay exited before it was ready: {}", stderr.trim());
    }
    Ok(line)
}
