//! Kernel TCP statistics (`TCP_INFO`) for a socket.
//!
//! Neither socket2 nor nix wraps `TCP_INFO`, so this calls `getsockopt` directly.
//! Fields newer than the running kernel are reported as `None`: the kernel copies
//! only as much of `struct tcp_info` as it knows and tells us the length.

use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd};

/// The fields of `struct tcp_info` the throughput probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct TcpInfo {
    /// Smoothed RTT in microseconds.
    pub rtt_us: u32,
    /// RTT variance in microseconds.
    pub rttvar_us: u32,
    /// Receiver-side RTT estimate in microseconds (0 when unknown).
    pub rcv_rtt_us: u32,
    /// Segments retransmitted over the connection's life.
    pub total_retrans: u32,
    /// Congestion window in segments.
    pub snd_cwnd: u32,
    /// Bytes acknowledged by the peer (Linux ≥ 4.1).
    pub bytes_acked: Option<u64>,
    /// Bytes received from the peer (Linux ≥ 4.1).
    pub bytes_received: Option<u64>,
    /// Minimum RTT seen, microseconds (Linux ≥ 4.6).
    pub min_rtt_us: Option<u32>,
    /// Sender MSS in bytes.
    pub snd_mss: u32,
    /// Packets received out of order: holes left by losses (Linux ≥ 5.4).
    pub rcv_ooopack: Option<u32>,
}

/// Reads `TCP_INFO` for a TCP socket.
pub fn tcp_info(sock: &impl AsFd) -> std::io::Result<TcpInfo> {
    let fd = sock.as_fd();
    // SAFETY: `tcp_info` is a plain C struct of integers, for which all-zero bytes are a
    // valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = libc::socklen_t::try_from(size_of::<libc::tcp_info>())
        .map_err(|_| std::io::Error::other("tcp_info too large"))?;
    // SAFETY: `fd` is a valid open descriptor borrowed for the duration of the call;
    // `info` is a writable buffer of `len` bytes that outlives the call, and the kernel
    // writes at most `len` bytes and stores the length written in `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&raw mut info).cast::<libc::c_void>(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let len = usize::try_from(len).unwrap_or(0);
    let has = |end: usize| len >= end;
    Ok(TcpInfo {
        rtt_us: info.tcpi_rtt,
        rttvar_us: info.tcpi_rttvar,
        rcv_rtt_us: info.tcpi_rcv_rtt,
        total_retrans: info.tcpi_total_retrans,
        snd_cwnd: info.tcpi_snd_cwnd,
        bytes_acked: has(offset_of!(libc::tcp_info, tcpi_bytes_acked) + 8)
            .then_some(info.tcpi_bytes_acked),
        bytes_received: has(offset_of!(libc::tcp_info, tcpi_bytes_received) + 8)
            .then_some(info.tcpi_bytes_received),
        min_rtt_us: has(offset_of!(libc::tcp_info, tcpi_min_rtt) + 4).then_some(info.tcpi_min_rtt),
        snd_mss: info.tcpi_snd_mss,
        rcv_ooopack: has(offset_of!(libc::tcp_info, tcpi_rcv_ooopack) + 4)
            .then_some(info.tcpi_rcv_ooopack),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn counts_bytes_on_loopback() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (mut s, _) = l.accept().expect("accept");
        c.write_all(&[7u8; 10_000]).expect("write");
        let mut buf = [0u8; 10_000];
        s.read_exact(&mut buf).expect("read");
        // The ACK may lag the read by a moment.
        let mut acked = 0;
        for _ in 0..100 {
            acked = tcp_info(&c).expect("info").bytes_acked.unwrap_or(10_000);
            if acked >= 10_000 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Linux counts the SYN (and the peer's SYN) as one byte in these counters.
        assert!((10_000..=10_001).contains(&acked), "{acked}");
        let r = tcp_info(&s).expect("info");
        let received = r.bytes_received.unwrap_or(10_000);
        assert!((10_000..=10_001).contains(&received), "{received}");
        assert!(r.rtt_us > 0);
    }

    #[test]
    fn errors_on_non_tcp_socket() {
        let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        assert!(tcp_info(&u).is_err());
    }
}
