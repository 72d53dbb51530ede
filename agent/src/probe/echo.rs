//! ICMP echo on one socket per address family, with kernel receive timestamps.
//!
//! Why not a ping crate: the RTT must be taken where ping(8) takes it. A reply stamped
//! in user space after the runtime wakes up carries that wake-up (100–300 µs on an idle
//! virtual machine after a 10 ms wait, more under load). With `SO_TIMESTAMPNS` the kernel
//! stamps each datagram as it reaches the socket; the send time is taken just before
//! `sendto`, as ping does. Both are wall-clock times (the kernel's stamp is
//! `CLOCK_REALTIME`), so every sample is cross-checked against the monotonic clock
//! and the monotonic figure wins if the wall clock stepped in between.
//!
//! Packet layout and parsing are pure functions ([`encode_request`], [`parse_reply`]);
//! the socket calls are in [`EchoSocket`].

use std::io;
use std::mem::{MaybeUninit, size_of};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// ICMPv4 echo request / reply types.
const V4_REQUEST: u8 = 8;
const V4_REPLY: u8 = 0;
/// ICMPv6 echo request / reply types.
const V6_REQUEST: u8 = 128;
const V6_REPLY: u8 = 129;
/// Echo header: type, code, checksum, identifier, sequence.
const HEADER: usize = 8;

/// Address family of an echo socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// ICMPv4.
    V4,
    /// ICMPv6.
    V6,
}

/// One echo reply as read off the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Who answered.
    pub from: IpAddr,
    /// Identifier field (rewritten by the kernel on unprivileged sockets).
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
}

/// Builds an echo request. The checksum is filled in for ICMPv4; the kernel computes
/// ICMPv6's (it needs the pseudo-header) and rewrites it on unprivileged sockets anyway.
pub fn encode_request(family: Family, ident: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(HEADER + payload.len());
    p.push(match family {
        Family::V4 => V4_REQUEST,
        Family::V6 => V6_REQUEST,
    });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&ident.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if family == Family::V4 {
        let sum = checksum(&p);
        p[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    p
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Parses what a socket read returned into an echo reply, or `None` for anything else
/// (other ICMP types, requests seen on a raw socket, truncated or garbled bytes).
/// `with_ip_header`: raw IPv4 sockets deliver the IP header in front of the ICMP message.
pub fn parse_reply(
    family: Family,
    with_ip_header: bool,
    from: IpAddr,
    bytes: &[u8],
) -> Option<Reply> {
    let icmp = if with_ip_header {
        let first = *bytes.first()?;
        if first >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < 20 {
            return None;
        }
        bytes.get(ihl..)?
    } else {
        bytes
    };
    if icmp.len() < HEADER {
        return None;
    }
    let want = match family {
        Family::V4 => V4_REPLY,
        Family::V6 => V6_REPLY,
    };
    if icmp[0] != want || icmp[1] != 0 {
        return None;
    }
    Some(Reply {
        from,
        ident: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
    })
}

/// The RTT of one echo: the kernel's receive stamp minus the send time (both wall
/// clock), unless that disagrees with the monotonic figure by more than the clocks can
/// (the wall clock stepped, or no stamp came): then the monotonic figure.
pub fn rtt(
    sent_wall: SystemTime,
    received_wall: Option<SystemTime>,
    monotonic: Duration,
) -> Duration {
    match received_wall.and_then(|r| r.duration_since(sent_wall).ok()) {
        // The kernel stamps before user space sees the datagram, so its figure can
        // only be smaller than the monotonic one (plus clock-read noise).
        Some(k) if k <= monotonic + Duration::from_micros(50) => k,
        _ => monotonic,
    }
}

/// A non-blocking ICMP echo socket registered with the Tokio reactor.
#[derive(Debug)]
pub struct EchoSocket {
    fd: AsyncFd<Socket>,
    family: Family,
    kind: Type,
}

impl EchoSocket {
    /// Opens an unprivileged ("ping") socket, else a raw one, and asks for kernel
    /// receive timestamps. Must run inside a Tokio runtime. The error says why neither
    /// kind could be opened (the last OS error).
    pub fn open(family: Family) -> io::Result<Self> {
        let (domain, protocol) = match family {
            Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
            Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
        };
        let socket = Socket::new(domain, Type::DGRAM, Some(protocol))
            .or_else(|_| Socket::new(domain, Type::RAW, Some(protocol)))?;
        socket.set_nonblocking(true)?;
        set_timestamping(&socket)?;
        let kind = socket.r#type()?;
        // SAFETY: the `Socket` owns its descriptor, and `EchoSocket` never closes or
        // replaces it while the `AsyncFd` holds it (it is closed when both drop).
        let fd = unsafe { AsyncFd::register(socket)? };
        Ok(Self { fd, family, kind })
    }

    /// The socket kind that opened: `Type::DGRAM` (unprivileged) or `Type::RAW`.
    pub fn kind(&self) -> Type {
        self.kind
    }

    /// Whether the kernel rewrites the identifier (unprivileged sockets do, and only
    /// deliver replies to this socket's own requests).
    pub fn kernel_ident(&self) -> bool {
        self.kind == Type::DGRAM
    }

    /// Sends `packet` to `addr`; returns the wall-clock time taken just before the send.
    pub async fn send(&self, addr: IpAddr, packet: &[u8]) -> io::Result<SystemTime> {
        let dest = SockAddr::from(SocketAddr::new(addr, 0));
        self.fd
            .async_io(Interest::WRITABLE, |s| {
                let at = SystemTime::now();
                s.send_to(packet, &dest).map(|_| at)
            })
            .await
    }

    /// Waits for the next datagram: its reply (if it is one), and the kernel's receive
    /// stamp (if the kernel gave one).
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(Option<Reply>, Option<SystemTime>)> {
        let with_ip_header = self.family == Family::V4 && self.kind == Type::RAW;
        self.fd
            .async_io(Interest::READABLE, |s| {
                let (n, from, stamp) = recv_stamped(s, buf)?;
                let reply =
                    from.and_then(|f| parse_reply(self.family, with_ip_header, f, &buf[..n]));
                Ok((reply, stamp))
            })
            .await
    }
}

/// Asks the kernel to stamp received datagrams (`SO_TIMESTAMPNS`, nanoseconds).
fn set_timestamping(socket: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: the descriptor is open; the option value is a c_int that outlives the
    // call and its size is passed alongside.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// One `recvmsg`: bytes read, the sender, and the `SCM_TIMESTAMPNS` stamp if present.
fn recv_stamped(
    socket: &Socket,
    buf: &mut [u8],
) -> io::Result<(usize, Option<IpAddr>, Option<SystemTime>)> {
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // u64 elements: the control buffer must be aligned for cmsghdr.
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero bytes are a valid msghdr (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` points at a live, exclusively borrowed buffer of
    // the stated length for the duration of the call.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = usize::try_from(n).unwrap_or(0);
    let from = sender(&name);
    let mut stamp = None;
    // SAFETY: `msg` was filled by recvmsg; the CMSG macros walk its control buffer
    // within msg_controllen, and each header they return lies inside `control`.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: non-null headers from CMSG_FIRSTHDR/CMSG_NXTHDR are valid to read.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_TIMESTAMPNS {
            // SAFETY: an SCM_TIMESTAMPNS message carries one timespec; the data may be
            // unaligned, hence read_unaligned.
            let ts: libc::timespec =
                unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::timespec>()) };
            stamp = timespec_to_system(&ts);
        }
        // SAFETY: as above; returns null after the last header.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok((n, from, stamp))
}

/// The IP address in a sockaddr_storage that recvmsg filled.
fn sender(name: &libc::sockaddr_storage) -> Option<IpAddr> {
    match i32::from(name.ss_family) {
        libc::AF_INET => {
            let mut sin = MaybeUninit::<libc::sockaddr_in>::uninit();
            // SAFETY: for AF_INET the storage holds a sockaddr_in, which is smaller than
            // sockaddr_storage; copying its bytes initialises `sin` fully.
            let sin = unsafe {
                std::ptr::copy_nonoverlapping(
                    (name as *const libc::sockaddr_storage).cast::<u8>(),
                    sin.as_mut_ptr().cast::<u8>(),
                    size_of::<libc::sockaddr_in>(),
                );
                sin.assume_init()
            };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 => {
            let mut sin6 = MaybeUninit::<libc::sockaddr_in6>::uninit();
            // SAFETY: as above, for AF_INET6 and sockaddr_in6.
            let sin6 = unsafe {
                std::ptr::copy_nonoverlapping(
                    (name as *const libc::sockaddr_storage).cast::<u8>(),
                    sin6.as_mut_ptr().cast::<u8>(),
                    size_of::<libc::sockaddr_in6>(),
                );
                sin6.assume_init()
            };
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

fn timespec_to_system(ts: &libc::timespec) -> Option<SystemTime> {
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u32::try_from(ts.tv_nsec)
        .ok()
        .filter(|n| *n < 1_000_000_000)?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_request_checksums_to_zero() {
        let p = encode_request(Family::V4, 0x1234, 7, &[1, 2, 3]);
        assert_eq!(&p[..2], &[8, 0]);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 7]);
        assert_eq!(checksum(&p), 0, "a packet with its checksum sums to zero");
    }

    #[test]
    fn v6_request_leaves_the_checksum_to_the_kernel() {
        let p = encode_request(Family::V6, 1, 2, &[]);
        assert_eq!(p, vec![128, 0, 0, 0, 0, 1, 0, 2]);
    }

    #[test]
    fn replies_parse_and_everything_else_does_not() {
        let from: IpAddr = "10.0.0.1".parse().expect("literal");
        let mut reply = encode_request(Family::V4, 9, 300, b"x");
        reply[0] = V4_REPLY;
        assert_eq!(
            parse_reply(Family::V4, false, from, &reply),
            Some(Reply {
                from,
                ident: 9,
                seq: 300
            })
        );
        // With a 20-byte IP header in front (raw IPv4 sockets).
        let mut framed = vec![0x45];
        framed.resize(20, 0);
        framed.extend_from_slice(&reply);
        assert_eq!(
            parse_reply(Family::V4, true, from, &framed).map(|r| r.seq),
            Some(300)
        );
        // A request (seen on raw sockets when pinging oneself), a short read, a bad IHL.
        let request = encode_request(Family::V4, 9, 300, b"x");
        assert_eq!(parse_reply(Family::V4, false, from, &request), None);
        assert_eq!(parse_reply(Family::V4, false, from, &reply[..5]), None);
        assert_eq!(parse_reply(Family::V4, true, from, &[0x41, 0, 0]), None);
        assert_eq!(parse_reply(Family::V4, true, from, &[]), None);
        // ICMPv6 reply type.
        let mut v6 = encode_request(Family::V6, 1, 2, &[]);
        v6[0] = V6_REPLY;
        assert!(parse_reply(Family::V6, false, from, &v6).is_some());
        assert!(parse_reply(Family::V4, false, from, &v6).is_none());
    }

    #[test]
    fn rtt_prefers_the_kernel_stamp_unless_the_clock_stepped() {
        let sent = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let mono = Duration::from_micros(10_300);
        let kernel = sent + Duration::from_micros(10_100);
        assert_eq!(rtt(sent, Some(kernel), mono), Duration::from_micros(10_100));
        // No stamp, a stamp before the send (clock stepped back), or one far later
        // than the monotonic clock allows (stepped forward): monotonic.
        assert_eq!(rtt(sent, None, mono), mono);
        assert_eq!(rtt(sent, Some(sent - Duration::from_secs(1)), mono), mono);
        assert_eq!(rtt(sent, Some(sent + Duration::from_secs(1)), mono), mono);
    }

    #[test]
    fn bad_timespecs_give_no_time() {
        let ts = |s, n| libc::timespec {
            tv_sec: s,
            tv_nsec: n,
        };
        assert!(timespec_to_system(&ts(-1, 0)).is_none());
        assert!(timespec_to_system(&ts(1, 1_000_000_000)).is_none());
        assert_eq!(
            timespec_to_system(&ts(2, 5)),
            Some(SystemTime::UNIX_EPOCH + Duration::new(2, 5))
        );
    }
}
