//! `lab-relay`: a userspace "wire" between two TUN devices that adds a fixed
//! one-way delay, optional deterministic loss and an optional rate limit.
//!
//! The kernel on the test machines has no netem, so the network lab builds
//! delay links from this relay instead. The harness starts it in the root
//! namespace, reads the ready line (`READY <tun-a> <tun-b>`) from stdout and
//! then moves each TUN device into its node's namespace; the open file
//! descriptors keep working after the move.
//!
//! Lifetime: the relay exits when its stdin reaches EOF (so a test process
//! that dies, however abruptly, takes its relays with it), on SIGTERM (the
//! default action), and when a TUN device disappears (its namespace was
//! deleted).
//!
//! Usage: `lab-relay --delay-us N [--drop-every N] [--drop-dir ab|ba|both]
//! [--rate-kbit N] [--queue N] [--name PATTERN]`
//!
//! Commands on stdin, one per line: `delay-us N` sets the one-way delay of both
//! directions for packets arriving from then on (packets already queued keep their
//! release time). Unknown lines are reported on stderr and ignored.

use std::collections::VecDeque;
use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Largest packet a TUN device can hand us (its MTU is 1500, but a user may
/// raise it; 64 KiB covers any IPv4/IPv6 packet).
const MAX_PACKET: usize = 65_536;

/// The current one-way delay in microseconds: set from `--delay-us`, changed by
/// `delay-us N` on stdin, read by both readers for every packet.
static DELAY_US: AtomicU64 = AtomicU64::new(0);

/// Parsed command line.
#[derive(Debug, Clone)]
struct Config {
    delay: Duration,
    drop_every: Option<u64>,
    drop_ab: bool,
    drop_ba: bool,
    rate_kbit: Option<u64>,
    queue: usize,
    name: String,
}

fn parse_args() -> Result<Config, String> {
    let mut cfg = Config {
        delay: Duration::ZERO,
        drop_every: None,
        drop_ab: true,
        drop_ba: false,
        rate_kbit: None,
        queue: 1000,
        name: "lmr%d".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--delay-us" => cfg.delay = Duration::from_micros(number()?),
            "--drop-every" => cfg.drop_every = Some(number()?).filter(|n| *n > 0),
            "--rate-kbit" => cfg.rate_kbit = Some(number()?).filter(|n| *n > 0),
            "--queue" => cfg.queue = usize::try_from(number()?).map_err(|e| e.to_string())?,
            "--name" => cfg.name = value,
            "--drop-dir" => {
                (cfg.drop_ab, cfg.drop_ba) = match value.as_str() {
                    "ab" => (true, false),
                    "ba" => (false, true),
                    "both" => (true, true),
                    other => return Err(format!("--drop-dir {other}: want ab, ba or both")),
                }
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if cfg.name.len() >= libc::IFNAMSIZ {
        return Err(format!("--name {}: longer than IFNAMSIZ", cfg.name));
    }
    Ok(cfg)
}

/// Opens a TUN device (layer 3, no packet-info header). `pattern` may contain
/// `%d`, which the kernel replaces with the first free number, so parallel
/// relays never race for a name. Returns the device and its final name.
fn open_tun(pattern: &str) -> io::Result<(File, String)> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")?;
    // SAFETY: `ifreq` is a plain C struct (byte arrays and a union of
    // integers/pointers) for which all-zero bytes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(pattern.bytes()) {
        *dst = src as libc::c_char;
    }
    // The flags are defined as c_int but the ioctl reads a c_short; both
    // values fit in 16 bits.
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: the fd is an open /dev/net/tun descriptor and `req` is a valid,
    // exclusively borrowed `ifreq` that outlives the call, as TUNSETIFF wants.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    // The pattern is shorter than IFNAMSIZ (checked in parse_args) and the
    // kernel writes back a NUL-terminated name, so the array holds a C string.
    // SAFETY: `ifr_name` is a NUL-terminated array that lives as long as `req`.
    let name = unsafe { CStr::from_ptr(req.ifr_name.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    Ok((file, name))
}

/// Counters of one direction, printed when the relay exits.
#[derive(Debug, Default)]
struct Counters {
    forwarded: AtomicU64,
    dropped_rule: AtomicU64,
    dropped_full: AtomicU64,
    /// Sum over forwarded packets of how late they left, for the mean.
    late_ns: AtomicU64,
}

/// What one direction shares with `main` (which prints the counters at exit).
#[derive(Debug)]
struct Direction {
    label: &'static str,
    counters: Counters,
    drop: bool,
}

/// Extra margin added to the measured timer overshoot when choosing how
/// early to wake up; the rest of the wait is spun away.
const WAKE_MARGIN: Duration = Duration::from_micros(20);

/// Upper bound of the early wake-up. It is also the most a relay spins per
/// packet: several relays on 2 shared cores (one test binary runs its tests in
/// parallel) must not starve each other by spinning, or a late wake-up raises
/// the learned overshoot, which lengthens the spin, which makes wake-ups later.
const MAX_LEAD: Duration = Duration::from_micros(150);

/// One direction of the wire, in one thread: reads packets from `input`
/// (non-blocking), applies the loss rule and the rate limit, holds each until
/// its release time and writes it to `output`.
///
/// One thread per direction, not a reader and a sender, because the hand-over
/// between two threads costs a second wake-up per packet (tens of microseconds
/// on a loaded machine), and the relay's own latency is every delay test's
/// error. The thread sleeps in `ppoll` on the input until the next packet is
/// nearly due; it learns how late the timer wakes it (an EWMA of the
/// overshoot), wakes that much (plus a margin) early, and spins for the rest,
/// still taking in arrivals so their timestamps stay exact.
fn direction(input: File, mut output: File, dir: Arc<Direction>, cfg: Config) {
    let mut input = input;
    let mut buf = vec![0u8; MAX_PACKET];
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut ipv4_seen: u64 = 0;
    // When the link has a rate, the time its "transmitter" is busy until.
    let mut busy_until = Instant::now();
    let mut overshoot = Duration::from_micros(50);
    loop {
        // Take in everything that has arrived, stamped as it is read.
        loop {
            let len = match input.read(&mut buf) {
                Ok(0) => exit_with(dir.label, "TUN device closed", 0),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => exit_with(dir.label, &format!("read: {e}"), 0),
            };
            let now = Instant::now();
            // Only IPv4 packets count towards drop-every-N, so stray IPv6
            // control traffic cannot shift which pings are lost.
            if dir.drop && buf[0] >> 4 == 4 {
                ipv4_seen += 1;
                if cfg.drop_every.is_some_and(|n| ipv4_seen.is_multiple_of(n)) {
                    dir.counters.dropped_rule.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            }
            if queue.len() >= cfg.queue {
                dir.counters.dropped_full.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let mut depart = now;
            if let Some(kbit) = cfg.rate_kbit {
                // Serialisation time of this packet at the link rate.
                let nanos = len as u64 * 8 * 1_000_000 / kbit;
                busy_until = busy_until.max(now) + Duration::from_nanos(nanos);
                depart = busy_until;
            }
            let delay = Duration::from_micros(DELAY_US.load(Ordering::Relaxed));
            // After a delay decrease, a new packet may be due before older ones; it
            // then waits behind them (FIFO), as on a path whose queue drains first.
            queue.push_back((depart + delay, buf[..len].to_vec()));
        }
        // Release everything due by now.
        let now = Instant::now();
        while let Some((due, packet)) = queue.pop_front() {
            if due > now {
                queue.push_front((due, packet));
                break;
            }
            send(
                &mut output,
                &dir,
                &packet,
                now.saturating_duration_since(due),
            );
        }
        // Wait for input, or until the front is nearly due; spin the last stretch.
        let Some(&(due, _)) = queue.front() else {
            wait_readable(&input, None);
            continue;
        };
        let lead = (overshoot + WAKE_MARGIN).min(MAX_LEAD);
        let now = Instant::now();
        if due > now + lead {
            let wake_at = due - lead;
            if !wait_readable(&input, Some(wake_at - now)) {
                let late = Instant::now().saturating_duration_since(wake_at);
                overshoot = (overshoot * 7 + late) / 8;
            }
        } else {
            std::hint::spin_loop();
        }
    }
}

/// Sleeps until `fd` is readable or `timeout` passed (`None`: no timeout).
/// Returns whether it is readable.
fn wait_readable(fd: &File, timeout: Option<Duration>) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(t.subsec_nanos()),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `pfd` is one valid pollfd, `ts_ptr` is null or points at a timespec
    // that outlives the call, and a null signal mask leaves the mask unchanged.
    let rc = unsafe { libc::ppoll(&mut pfd, 1, ts_ptr, std::ptr::null()) };
    // An error (EINTR) or a timeout both mean "look again"; POLLHUP/POLLERR
    // surface as a read error, which exits.
    rc > 0
}

/// Puts `file` into non-blocking mode. Dup'ed descriptors share this flag, so the
/// other direction's writes to the same device become non-blocking too; a TUN
/// write never blocks anyway (it hands the packet to the network stack).
fn set_nonblocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL/F_SETFL on an open descriptor take and return plain ints.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Writes one packet and counts it.
fn send(output: &mut File, dir: &Direction, packet: &[u8], late: Duration) {
    match output.write(packet) {
        Ok(_) => {
            let late = u64::try_from(late.as_nanos()).unwrap_or(u64::MAX);
            dir.counters.late_ns.fetch_add(late, Ordering::Relaxed);
            dir.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        }
        // The peer's device is down or refused the packet; a wire loses
        // packets in that case too.
        Err(e) if e.raw_os_error() == Some(libc::EIO) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => exit_with(dir.label, &format!("write: {e}"), 0),
    }
}

fn exit_with(label: &str, why: &str, code: i32) -> ! {
    let _ = writeln!(io::stderr(), "lab-relay: {label}: {why}; exiting");
    std::process::exit(code)
}

fn stats_line(dirs: &[Arc<Direction>]) -> String {
    dirs.iter()
        .map(|d| {
            let forwarded = d.counters.forwarded.load(Ordering::Relaxed);
            let late_us = d.counters.late_ns.load(Ordering::Relaxed) / forwarded.max(1) / 1000;
            format!(
                "{}: forwarded {} dropped_rule {} dropped_full {} mean_late_us {}",
                d.label,
                forwarded,
                d.counters.dropped_rule.load(Ordering::Relaxed),
                d.counters.dropped_full.load(Ordering::Relaxed),
                late_us,
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Applies one stdin command.
fn command(line: &str) {
    let mut words = line.split_whitespace();
    match (
        words.next(),
        words.next().map(str::parse::<u64>),
        words.next(),
    ) {
        (None, _, _) => {}
        (Some("delay-us"), Some(Ok(us)), None) => {
            DELAY_US.store(us, Ordering::Relaxed);
            let _ = writeln!(io::stderr(), "lab-relay: delay now {us} us");
        }
        _ => {
            let _ = writeln!(io::stderr(), "lab-relay: ignoring command {line:?}");
        }
    }
}

fn main() {
    let cfg = match parse_args() {
        Ok(cfg) => cfg,
        Err(e) => exit_with("args", &e, 2),
    };
    DELAY_US.store(
        u64::try_from(cfg.delay.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    // Timer slack defaults to 50 us; a sleep overshooting by that much per
    // direction would eat a third of the 2 % accuracy budget at 7 ms. Threads
    // inherit the slack, so set it before spawning them.
    // SAFETY: PR_SET_TIMERSLACK takes one unsigned long and no pointers.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    // The relay is the lab's clock: on 2 shared cores its wake-ups after a packet
    // arrives must not queue behind the agents and transfers it carries. Highest nice,
    // best effort (it needs root, which the lab has); threads inherit it.
    // SAFETY: setpriority takes plain integers.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, -20) } != 0 {
        eprintln!("lab-relay: could not raise priority; timing may suffer under load");
    }

    let (tun_a, name_a) =
        open_tun(&cfg.name).unwrap_or_else(|e| exit_with("tun a", &e.to_string(), 1));
    let (tun_b, name_b) =
        open_tun(&cfg.name).unwrap_or_else(|e| exit_with("tun b", &e.to_string(), 1));
    let clone = |f: &File, label| {
        f.try_clone()
            .unwrap_or_else(|e| exit_with(label, &e.to_string(), 1))
    };
    let (tun_a_tx, tun_b_tx) = (clone(&tun_a, "dup a"), clone(&tun_b, "dup b"));

    for tun in [&tun_a, &tun_b] {
        set_nonblocking(tun).unwrap_or_else(|e| exit_with("nonblock", &e.to_string(), 1));
    }
    let new_dir = |label, drop| {
        Arc::new(Direction {
            label,
            counters: Counters::default(),
            drop,
        })
    };
    let ab = new_dir("a->b", cfg.drop_ab);
    let ba = new_dir("b->a", cfg.drop_ba);
    for (input, output, dir) in [(tun_a, tun_b_tx, &ab), (tun_b, tun_a_tx, &ba)] {
        let (d, c) = (Arc::clone(dir), cfg.clone());
        thread::spawn(move || direction(input, output, d, c));
    }

    let mut stdout = io::stdout().lock();
    if writeln!(stdout, "READY {name_a} {name_b}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        exit_with("stdout", "harness went away before ready", 1);
    }
    drop(stdout);

    // Serve commands until the harness closes our stdin (or dies).
    let mut line = String::new();
    let mut stdin = io::stdin().lock();
    loop {
        line.clear();
        match stdin.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => command(line.trim()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = writeln!(io::stderr(), "lab-relay: {}", stats_line(&[ab, ba]));
}
