//! Data streams: one task per TCP connection that writes or reads as fast as it can
//! with one fixed buffer, until told to stop.

use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::tcp_info::{TcpInfo, tcp_info};

/// Which way data flows on a stream, from our side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// We write.
    Send,
    /// We read.
    Receive,
}

/// A running data stream.
#[derive(Debug)]
pub(crate) struct DataStream {
    sock: Arc<TcpStream>,
    role: Role,
    app_bytes: Arc<AtomicU64>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    baseline: TcpInfo,
}

impl DataStream {
    /// Starts moving data on `sock`. `block_len` is the write size (reads always use
    /// the same fixed-size buffer).
    pub(crate) fn start(
        sock: TcpStream,
        role: Role,
        block_len: usize,
        stop: CancellationToken,
    ) -> DataStream {
        let sock = Arc::new(sock);
        let app_bytes = Arc::new(AtomicU64::new(0));
        // Counting starts now: earlier bytes (the cookie) are not data.
        let baseline = tcp_info(&*sock).unwrap_or_default();
        let task = tokio::spawn(pump(
            Arc::clone(&sock),
            role,
            block_len.clamp(1, super::protocol::DEFAULT_BLOCK_LEN),
            Arc::clone(&app_bytes),
            stop,
        ));
        DataStream {
            sock,
            role,
            app_bytes,
            task: Some(task),
            baseline,
        }
    }

    /// Bytes the application wrote or read so far.
    pub(crate) fn app_bytes(&self) -> u64 {
        self.app_bytes.load(Ordering::Relaxed)
    }

    /// Bytes that crossed the link so far, as the kernel counts them: acknowledged by
    /// the peer when sending, received when receiving. Falls back to the application's
    /// count on kernels without these fields.
    pub(crate) fn delivered_bytes(&self) -> u64 {
        let now = tcp_info(&*self.sock).ok();
        let (cur, base) = match self.role {
            Role::Send => (now.and_then(|i| i.bytes_acked), self.baseline.bytes_acked),
            Role::Receive => (
                now.and_then(|i| i.bytes_received),
                self.baseline.bytes_received,
            ),
        };
        match (cur, base) {
            (Some(c), Some(b)) => c.saturating_sub(b),
            _ => self.app_bytes(),
        }
    }

    /// Current kernel statistics, if available.
    pub(crate) fn info(&self) -> Option<TcpInfo> {
        tcp_info(&*self.sock).ok()
    }

    /// Loss indicator since the stream started, in bytes: retransmitted segments when
    /// sending, out-of-order arrivals when receiving (each loss leaves a hole that
    /// the following packets arrive behind), times the MSS.
    pub(crate) fn disturbance_bytes(&self) -> u64 {
        let Some(i) = self.info() else { return 0 };
        let mss = u64::from(i.snd_mss.max(536));
        let n = match self.role {
            Role::Send => i.total_retrans.saturating_sub(self.baseline.total_retrans),
            Role::Receive => i
                .rcv_ooopack
                .unwrap_or(0)
                .saturating_sub(self.baseline.rcv_ooopack.unwrap_or(0)),
        };
        u64::from(n) * mss
    }

    /// Retransmitted segments since the stream started.
    pub(crate) fn retransmits(&self) -> Option<u64> {
        self.info()
            .map(|i| u64::from(i.total_retrans.saturating_sub(self.baseline.total_retrans)))
    }

    /// Waits for the task to stop (after the stop token fired) and reports its error.
    pub(crate) async fn join(&mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(t) => match t.await {
                Ok(r) => r,
                Err(e) => Err(std::io::Error::other(e)),
            },
            None => Ok(()),
        }
    }
}

impl Drop for DataStream {
    fn drop(&mut self) {
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

async fn pump(
    sock: Arc<TcpStream>,
    role: Role,
    block_len: usize,
    counter: Arc<AtomicU64>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    // One fixed buffer per stream bounds memory at streams × 128 KiB. Random content,
    // as iperf3 sends, so compression on the path cannot inflate the figure.
    let mut buf = vec![0u8; block_len];
    if role == Role::Send {
        rand::fill(&mut buf[..]);
    }
    loop {
        let ready = match role {
            Role::Send => tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                r = sock.writable() => r,
            },
            Role::Receive => tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                r = sock.readable() => r,
            },
        };
        ready?;
        let r = match role {
            Role::Send => sock.try_write(&buf),
            Role::Receive => sock.try_read(&mut buf),
        };
        match r {
            Ok(0) if role == Role::Receive => {
                // The peer closed its side; nothing more will come.
                return Ok(());
            }
            Ok(n) => {
                counter.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// CPU time of this process, for the `cpu_util_*` fields of iperf3 results.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMark {
    wall: std::time::Instant,
    user: f64,
    system: f64,
}

impl CpuMark {
    /// Reads the process's CPU time now.
    pub(crate) fn now() -> CpuMark {
        // SAFETY: `rusage` is a plain C struct for which all-zero bytes are valid.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `ru` is a valid, writable `rusage` that outlives the call.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
        let (user, system) = if rc == 0 {
            (secs(ru.ru_utime), secs(ru.ru_stime))
        } else {
            (0.0, 0.0)
        };
        CpuMark {
            wall: std::time::Instant::now(),
            user,
            system,
        }
    }

    /// Percent of one core used since `self`: (total, user, system).
    pub(crate) fn since(&self) -> (f64, f64, f64) {
        let now = CpuMark::now();
        let wall = now.wall.duration_since(self.wall).as_secs_f64();
        if wall <= 0.0 {
            return (0.0, 0.0, 0.0);
        }
        let user = (now.user - self.user).max(0.0) / wall * 100.0;
        let system = (now.system - self.system).max(0.0) / wall * 100.0;
        (user + system, user, system)
    }
}
