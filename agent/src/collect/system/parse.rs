//! Pure parsers for the /proc and /sys files the system collector reads.
//!
//! Everything here works on `&str` and does no I/O, so it can be tested against fixtures
//! and arbitrary input. The files come from the host (or from whatever was mounted at the
//! configured root), so every parser treats its input as untrusted: malformed input is an
//! error, never a panic, and the work is bounded by the input length plus the explicit
//! caps below.

use std::fmt::Write as _;

/// Most network interfaces taken from one `/proc/net/dev`.
///
/// A node with thousands of pods has thousands of veths; past this many the report would
/// be too big to be useful and the per-interface sysfs reads too slow.
pub const MAX_NICS: usize = 1024;
/// Most mount entries kept from one mounts file, after filtering.
pub const MAX_MOUNTS: usize = 4096;
/// Most CPUs counted from `/proc/stat` (Linux's own `NR_CPUS` limit is 8192).
pub const MAX_CPUS: u32 = 8192;
/// Longest kernel release string accepted; the kernel's own limit is 64 bytes.
const MAX_OSRELEASE_LEN: usize = 256;
/// How much of an offending token an error message quotes, so that a hostile file cannot
/// make error strings (which end up in a published condition) arbitrarily large.
const SNIPPET_CHARS: usize = 32;

/// Why a file could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A required line or field is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field that should be a number is not one.
    #[error("{what}: not a number: {snippet:?}")]
    NotANumber {
        /// Which field.
        what: &'static str,
        /// The start of the offending token.
        snippet: String,
    },
    /// A number does not fit (e.g. kB × 1024 overflows u64).
    #[error("{0}: out of range")]
    OutOfRange(&'static str),
    /// A line does not have the expected shape.
    #[error("line {line}: {reason}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The content as a whole is unacceptable.
    #[error("{0}")]
    Invalid(&'static str),
}

/// The start of `s`, at most [`SNIPPET_CHARS`] characters, for error messages.
fn snippet(s: &str) -> String {
    let mut out: String = s.chars().take(SNIPPET_CHARS).collect();
    if s.chars().nth(SNIPPET_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// Parses an unsigned decimal, naming the field in the error.
fn parse_u64(token: &str, what: &'static str) -> Result<u64, ParseError> {
    // `u64::from_str` accepts a leading '+'; the kernel never writes one, so refusing it
    // keeps the accepted language exactly "digits".
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::NotANumber {
            what,
            snippet: snippet(token),
        });
    }
    token
        .parse::<u64>()
        .map_err(|_| ParseError::OutOfRange(what))
}

/// Aggregate CPU time counters from the `cpu ` line of `/proc/stat`, in USER_HZ ticks.
///
/// `guest` and `guest_nice` are not kept: the kernel already counts them inside `user`
/// and `nice`, so adding them again would double count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Normal processes in user mode.
    pub user: u64,
    /// Niced processes in user mode.
    pub nice: u64,
    /// Kernel mode.
    pub system: u64,
    /// Idle.
    pub idle: u64,
    /// Idle while waiting for I/O; counted as idle time.
    pub iowait: u64,
    /// Servicing hardware interrupts.
    pub irq: u64,
    /// Servicing softirqs.
    pub softirq: u64,
    /// Stolen by the hypervisor; busy from the guest's point of view.
    pub steal: u64,
}

impl CpuTimes {
    /// Ticks the CPUs spent idle (idle + iowait).
    pub fn idle_ticks(&self) -> u64 {
        self.idle.saturating_add(self.iowait)
    }

    /// All ticks, busy and idle.
    pub fn total_ticks(&self) -> u64 {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
        .iter()
        .fold(0u64, |acc, v| acc.saturating_add(*v))
    }

    /// Per-field difference `self − earlier`, each clamped at zero.
    ///
    /// Per field because some counters are known to step backwards (iowait on NO_HZ
    /// kernels, everything after CPU hotplug); clamping per field keeps one such counter
    /// from cancelling real progress in the others.
    fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            nice: self.nice.saturating_sub(earlier.nice),
            system: self.system.saturating_sub(earlier.system),
            idle: self.idle.saturating_sub(earlier.idle),
            iowait: self.iowait.saturating_sub(earlier.iowait),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }
}

/// What the collector needs from `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatSnapshot {
    /// The aggregate `cpu ` line.
    pub total: CpuTimes,
    /// Number of `cpuN` lines, i.e. online logical CPUs.
    pub cpu_count: u32,
}

/// Parses the CPU lines of `/proc/stat`.
///
/// Only the aggregate `cpu` line is required; missing trailing fields (older kernels
/// print fewer) read as zero, but the first four (user, nice, system, idle) must be there.
pub fn parse_proc_stat(text: &str) -> Result<StatSnapshot, ParseError> {
    let mut total = None;
    let mut cpu_count: u32 = 0;
    for (idx, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(label) = fields.next() else { continue };
        let Some(suffix) = label.strip_prefix("cpu") else {
            // The cpu lines come first; once past them there is nothing more we want
            // (the `intr` line after them can be very long).
            if total.is_some() {
                break;
            }
            continue;
        };
        if suffix.is_empty() {
            if total.is_some() {
                return Err(ParseError::BadLine {
                    line: idx + 1,
                    reason: "second aggregate cpu line".into(),
                });
            }
            total = Some(parse_cpu_fields(fields).map_err(|e| ParseError::BadLine {
                line: idx + 1,
                reason: e.to_string(),
            })?);
        } else if suffix.bytes().all(|b| b.is_ascii_digit()) {
            cpu_count = cpu_count.saturating_add(1);
            if cpu_count > MAX_CPUS {
                return Err(ParseError::Invalid("more cpu lines than any kernel allows"));
            }
        }
    }
    let total = total.ok_or(ParseError::Missing("aggregate cpu line"))?;
    Ok(StatSnapshot { total, cpu_count })
}

fn parse_cpu_fields<'a>(fields: impl Iterator<Item = &'a str>) -> Result<CpuTimes, ParseError> {
    const NAMES: [&str; 8] = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ];
    let mut values = [0u64; 8];
    let mut seen = 0usize;
    // guest and guest_nice (fields 9 and 10) are validated but not kept; anything past
    // them is ignored so a future kernel adding columns still parses.
    for (i, token) in fields.take(10).enumerate() {
        let what = NAMES.get(i).copied().unwrap_or("guest");
        let v = parse_u64(token, what)?;
        if let Some(slot) = values.get_mut(i) {
            *slot = v;
        }
        seen = i + 1;
    }
    if seen < 4 {
        return Err(ParseError::Missing("cpu time fields (need at least 4)"));
    }
    let [user, nice, system, idle, iowait, irq, softirq, steal] = values;
    Ok(CpuTimes {
        user,
        nice,
        system,
        idle,
        iowait,
        irq,
        softirq,
        steal,
    })
}

/// CPU busy share between two samples, in parts per thousand of all CPUs.
///
/// `None` when no time passed between the samples (same snapshot twice, or a counter
/// reset that left every field behind), because 0 ‰ would claim an idle machine.
pub fn cpu_utilization_permille(earlier: &CpuTimes, later: &CpuTimes) -> Option<u32> {
    let delta = later.since(earlier);
    let total = delta.total_ticks();
    if total == 0 {
        return None;
    }
    let busy = total.saturating_sub(delta.idle_ticks());
    // u128 so that busy × 1000 cannot overflow whatever the counters hold.
    let permille = u128::from(busy) * 1000 / u128::from(total);
    Some(u32::try_from(permille.min(1000)).unwrap_or(1000))
}

/// What the collector needs from `/proc/meminfo`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemInfo {
    /// `MemTotal`, bytes.
    pub total_bytes: u64,
    /// `MemAvailable`, bytes; on kernels older than 3.14, which lack it, the usual
    /// estimate `MemFree + Buffers + Cached`.
    pub available_bytes: u64,
}

impl MemInfo {
    /// Memory in use: total minus available.
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.available_bytes)
    }
}

/// Parses `/proc/meminfo`. `MemTotal` is required; so is either `MemAvailable` or
/// `MemFree` (for the pre-3.14 estimate).
pub fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    let mut total = None;
    let mut available = None;
    let mut free = None;
    let mut buffers = None;
    let mut cached = None;
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            "MemFree" => &mut free,
            "Buffers" => &mut buffers,
            "Cached" => &mut cached,
            _ => continue,
        };
        if slot.is_some() {
            // First occurrence wins; a duplicated key is not worth failing the whole file.
            continue;
        }
        *slot = Some(parse_meminfo_value(rest, key_name(key))?);
        if total.is_some() && available.is_some() {
            break;
        }
    }
    let total_bytes = total.ok_or(ParseError::Missing("MemTotal"))?;
    let available_bytes = match available {
        Some(a) => a,
        None => {
            let free = free.ok_or(ParseError::Missing("MemAvailable and MemFree"))?;
            free.saturating_add(buffers.unwrap_or(0))
                .saturating_add(cached.unwrap_or(0))
        }
    };
    Ok(MemInfo {
        total_bytes,
        // A hostile or racy file could claim more available than total; used would
        // then clamp at 0, which is the least wrong answer.
        available_bytes,
    })
}

/// Maps a meminfo key to a `'static` name for errors without copying host input.
fn key_name(key: &str) -> &'static str {
    match key {
        "MemTotal" => "MemTotal",
        "MemAvailable" => "MemAvailable",
        "MemFree" => "MemFree",
        "Buffers" => "Buffers",
        "Cached" => "Cached",
        _ => "meminfo value",
    }
}

/// Parses `   24683656 kB` into bytes.
fn parse_meminfo_value(rest: &str, what: &'static str) -> Result<u64, ParseError> {
    let mut parts = rest.split_ascii_whitespace();
    let number = parts.next().ok_or(ParseError::Missing(what))?;
    let value = parse_u64(number, what)?;
    match parts.next() {
        None => Ok(value),
        Some("kB") => value.checked_mul(1024).ok_or(ParseError::OutOfRange(what)),
        Some(unit) => Err(ParseError::NotANumber {
            what,
            snippet: snippet(unit),
        }),
    }
}

/// Load averages × 1000.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadAvg {
    /// 1-minute.
    pub load1_milli: u64,
    /// 5-minute.
    pub load5_milli: u64,
    /// 15-minute.
    pub load15_milli: u64,
}

/// Parses the first three fields of `/proc/loadavg` (`0.67 0.48 0.21 4/88 7768`).
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, ParseError> {
    let mut fields = text.split_ascii_whitespace();
    let mut next = |what: &'static str| -> Result<u64, ParseError> {
        let token = fields.next().ok_or(ParseError::Missing(what))?;
        parse_decimal_milli(token, what)
    };
    Ok(LoadAvg {
        load1_milli: next("load1")?,
        load5_milli: next("load5")?,
        load15_milli: next("load15")?,
    })
}

/// Parses a non-negative decimal such as `12.34` into thousandths, exactly (no floats,
/// so `0.67` is 670 and not 669). Digits past the third decimal are truncated.
fn parse_decimal_milli(token: &str, what: &'static str) -> Result<u64, ParseError> {
    let bad = || ParseError::NotANumber {
        what,
        snippet: snippet(token),
    };
    let (int_part, frac_part) = token.split_once('.').unwrap_or((token, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_only(int_part)
        || !digits_only(frac_part)
    {
        return Err(bad());
    }
    let int = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse::<u64>()
            .map_err(|_| ParseError::OutOfRange(what))?
    };
    let mut frac: u64 = 0;
    let mut scale = 100;
    for b in frac_part.bytes().take(3) {
        frac += u64::from(b - b'0') * scale;
        scale /= 10;
    }
    int.checked_mul(1000)
        .and_then(|v| v.checked_add(frac))
        .ok_or(ParseError::OutOfRange(what))
}

/// Counters of one interface from `/proc/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetDevCounters {
    /// Interface name.
    pub name: String,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

/// Whether `name` can be a Linux interface name, and so can be joined to a sysfs path
/// without escaping it (no `/`, not `.` or `..`, no whitespace or control characters,
/// at most 15 bytes as IFNAMSIZ allows).
pub fn is_valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

/// Parses `/proc/net/dev`: two header lines, then `name: 16 counters` per interface.
///
/// Any malformed interface line fails the whole file: the format has been stable since
/// 2.6, so a line that does not fit means this is not the file we think it is. At most
/// [`MAX_NICS`] interfaces are returned; the second value says whether more were dropped.
pub fn parse_net_dev(text: &str) -> Result<(Vec<NetDevCounters>, bool), ParseError> {
    let mut lines = text.lines();
    for _ in 0..2 {
        match lines.next() {
            Some(header) if header.contains('|') => {}
            _ => return Err(ParseError::Missing("/proc/net/dev header")),
        }
    }
    let mut out = Vec::new();
    let mut more = false;
    for (idx, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if out.len() >= MAX_NICS {
            more = true;
            break;
        }
        let line_no = idx + 3;
        let bad = |reason: String| ParseError::BadLine {
            line: line_no,
            reason,
        };
        let (name, counters) = line
            .split_once(':')
            .ok_or_else(|| bad("no ':' after interface name".into()))?;
        let name = name.trim();
        if !is_valid_ifname(name) {
            return Err(bad(format!("bad interface name {:?}", snippet(name))));
        }
        let mut values = [0u64; 16];
        let mut count = 0usize;
        for token in counters.split_ascii_whitespace() {
            let slot = values
                .get_mut(count)
                .ok_or_else(|| bad("more than 16 counters".into()))?;
            *slot = parse_u64(token, "net/dev counter").map_err(|e| bad(e.to_string()))?;
            count += 1;
        }
        if count != 16 {
            return Err(bad(format!("{count} counters, expected 16")));
        }
        out.push(NetDevCounters {
            name: name.to_owned(),
            rx_bytes: values[0],
            rx_packets: values[1],
            rx_errors: values[2],
            tx_bytes: values[8],
            tx_packets: values[9],
            tx_errors: values[10],
        });
    }
    Ok((out, more))
}

/// One line of a mounts file (`/proc/PID/mounts`, fstab format).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Source device, e.g. `/dev/vda1`.
    pub device: String,
    /// Where it is mounted, octal escapes decoded.
    pub mount_point: String,
    /// Filesystem type, e.g. `ext4`.
    pub fs_type: String,
}

/// Parses a mounts file. Lines that do not have at least the first three fields are
/// skipped (and counted in the second value) rather than failing the file, because one
/// odd mount (a FUSE filesystem with a strange source name, say) must not hide the root
/// filesystem. At most [`MAX_MOUNTS`] entries are returned.
pub fn parse_mounts(text: &str) -> (Vec<MountEntry>, usize) {
    let mut out = Vec::new();
    let mut skipped = 0usize;
    for line in text.lines() {
        if out.len() >= MAX_MOUNTS {
            break;
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(device), Some(mount_point), Some(fs_type)) =
            (fields.next(), fields.next(), fields.next())
        else {
            if !line.trim().is_empty() {
                skipped += 1;
            }
            continue;
        };
        match (
            unescape_mount_field(device),
            unescape_mount_field(mount_point),
        ) {
            (Some(device), Some(mount_point)) if mount_point.starts_with('/') => {
                out.push(MountEntry {
                    device,
                    mount_point,
                    fs_type: fs_type.to_owned(),
                });
            }
            _ => skipped += 1,
        }
    }
    (out, skipped)
}

/// Decodes the kernel's octal escapes (`\040` for space, `\011` tab, `\012` newline,
/// `\134` backslash). `None` for malformed escapes and for NUL, which no path can hold.
fn unescape_mount_field(field: &str) -> Option<String> {
    if !field.contains('\\') {
        return Some(field.to_owned());
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let digits = bytes.get(i + 1..i + 4)?;
        let mut value: u32 = 0;
        for &d in digits {
            if !(b'0'..=b'7').contains(&d) {
                return None;
            }
            value = value * 8 + u32::from(d - b'0');
        }
        let byte = u8::try_from(value).ok().filter(|v| *v != 0)?;
        out.push(byte);
        i += 4;
    }
    // The escapes may produce bytes that are not UTF-8; such a path is kept in lossy
    // form only for display, and statvfs on it would fail, so refuse it instead.
    String::from_utf8(out).ok()
}

/// Parses `/proc/sys/kernel/osrelease`: one line of printable ASCII.
///
/// The string is published in the API, so anything that does not look like a release
/// (control characters, non-ASCII, absurd length) is refused rather than passed on.
pub fn parse_osrelease(text: &str) -> Result<String, ParseError> {
    let release = text.trim();
    if release.is_empty() {
        return Err(ParseError::Missing("kernel release"));
    }
    if release.len() > MAX_OSRELEASE_LEN {
        return Err(ParseError::Invalid("kernel release too long"));
    }
    if !release.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ParseError::Invalid(
            "kernel release has non-printable or non-ASCII characters",
        ));
    }
    Ok(release.to_owned())
}

/// Parses a sysfs CPU list such as `0-3,8,10-11` (e.g. `/sys/devices/system/cpu/online`)
/// into a count of CPUs.
pub fn parse_cpu_list_count(text: &str) -> Result<u32, ParseError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ParseError::Missing("cpu list"));
    }
    let mut count: u32 = 0;
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (parse_u64(lo, "cpu index")?, parse_u64(hi, "cpu index")?),
            None => {
                let v = parse_u64(part, "cpu index")?;
                (v, v)
            }
        };
        if hi < lo || hi >= u64::from(MAX_CPUS) {
            return Err(ParseError::OutOfRange("cpu range"));
        }
        // Bounded by MAX_CPUS above, so this fits; a repeated range is the kernel's
        // business, not something to double check here.
        let span = u32::try_from(hi - lo + 1).map_err(|_| ParseError::OutOfRange("cpu range"))?;
        count = count.saturating_add(span);
        if count > MAX_CPUS {
            return Err(ParseError::OutOfRange("cpu count"));
        }
    }
    Ok(count)
}

/// Parses `/sys/class/net/NAME/speed`, Mbit/s. `None` when the driver does not know:
/// `-1` (SPEED_UNKNOWN), `0`, or its unsigned twin `4294967295` that some drivers print.
pub fn parse_sysfs_speed(text: &str) -> Result<Option<u64>, ParseError> {
    let token = text.trim();
    if token == "-1" {
        return Ok(None);
    }
    let speed = parse_u64(token, "speed")?;
    Ok((speed != 0 && speed != u64::from(u32::MAX)).then_some(speed))
}

/// Joins errors into one message of bounded length, for a condition's message.
pub fn join_bounded(errors: &[String], max_len: usize) -> String {
    let mut out = String::new();
    for (i, e) in errors.iter().enumerate() {
        let sep = if i == 0 { "" } else { "; " };
        if out.len() + sep.len() + e.len() > max_len {
            let _ = write!(out, "{sep}(+{} more)", errors.len() - i);
            break;
        }
        out.push_str(sep);
        out.push_str(e);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STAT_A: &str = "cpu  16442 0 4006 53351 359 0 67 59 0 0\n\
        cpu0 8273 0 1749 27028 33 0 17 29 0 0\n\
        cpu1 8168 0 2257 26322 325 0 49 29 0 0\n\
        intr 1 2 3\nctxt 12345\n";
    const STAT_B: &str = "cpu  16542 0 4056 53701 409 0 67 59 0 0\n\
        cpu0 8323 0 1774 27203 58 0 17 29 0 0\n\
        cpu1 8218 0 2282 26497 350 0 49 29 0 0\n";

    #[test]
    fn stat_parses_aggregate_and_count() -> Result<(), ParseError> {
        let s = parse_proc_stat(STAT_A)?;
        assert_eq!(s.cpu_count, 2);
        assert_eq!(
            s.total,
            CpuTimes {
                user: 16442,
                nice: 0,
                system: 4006,
                idle: 53351,
                iowait: 359,
                irq: 0,
                softirq: 67,
                steal: 59,
            }
        );
        Ok(())
    }

    #[test]
    fn utilization_between_two_snapshots() -> Result<(), ParseError> {
        let a = parse_proc_stat(STAT_A)?.total;
        let b = parse_proc_stat(STAT_B)?.total;
        // busy: user +100, system +50 = 150; idle: idle +350, iowait +50 = 400;
        // total 550 → 150/550 = 272.7 ‰, truncated.
        assert_eq!(cpu_utilization_permille(&a, &b), Some(272));
        Ok(())
    }

    #[test]
    fn guest_is_not_double_counted() {
        let a = parse_proc_stat("cpu 100 0 0 100 0 0 0 0 0 0\n");
        let b = parse_proc_stat("cpu 200 0 0 100 0 0 0 0 100 0\n");
        let (Ok(a), Ok(b)) = (a, b) else {
            panic!("fixture must parse")
        };
        // 100 user ticks, all of them guest: fully busy, not 200 %.
        assert_eq!(cpu_utilization_permille(&a.total, &b.total), Some(1000));
    }

    #[test]
    fn utilization_none_without_progress_and_tolerates_backwards_counters() {
        let a = CpuTimes {
            user: 10,
            idle: 10,
            iowait: 50,
            ..Default::default()
        };
        assert_eq!(cpu_utilization_permille(&a, &a), None);
        // iowait stepped back by 20 while user and idle advanced by 10 each.
        let b = CpuTimes {
            user: 20,
            idle: 20,
            iowait: 30,
            ..Default::default()
        };
        assert_eq!(cpu_utilization_permille(&a, &b), Some(500));
        let huge = CpuTimes {
            user: u64::MAX,
            system: u64::MAX,
            ..Default::default()
        };
        assert_eq!(
            cpu_utilization_permille(&CpuTimes::default(), &huge),
            Some(1000)
        );
    }

    #[test]
    fn stat_rejects_garbage() {
        assert_eq!(
            parse_proc_stat(""),
            Err(ParseError::Missing("aggregate cpu line"))
        );
        assert!(parse_proc_stat("cpu 1 2 3\n").is_err(), "truncated line");
        assert!(parse_proc_stat("cpu 1 2 x 4\n").is_err(), "non-numeric");
        assert!(parse_proc_stat("cpu 1 2 -3 4\n").is_err(), "negative");
        assert!(
            parse_proc_stat("cpu 1 2 3 99999999999999999999999\n").is_err(),
            "huge"
        );
        assert!(parse_proc_stat("cpu 1 2 3 4\ncpu 1 2 3 4\n").is_err());
        // Old kernels print only four fields.
        assert!(parse_proc_stat("cpu 1 2 3 4\n").is_ok());
        // u64::MAX itself is a valid counter.
        assert!(parse_proc_stat("cpu 18446744073709551615 0 0 0\n").is_ok());
    }

    const MEMINFO: &str = "MemTotal:       24683656 kB\n\
        MemFree:        22704364 kB\n\
        MemAvailable:   24229000 kB\n\
        Buffers:            8312 kB\n\
        HugePages_Total:       0\n";

    #[test]
    fn meminfo_total_and_available() -> Result<(), ParseError> {
        let m = parse_meminfo(MEMINFO)?;
        assert_eq!(m.total_bytes, 24_683_656 * 1024);
        assert_eq!(m.available_bytes, 24_229_000 * 1024);
        assert_eq!(m.used_bytes(), (24_683_656 - 24_229_000) * 1024);
        Ok(())
    }

    #[test]
    fn meminfo_falls_back_without_memavailable() -> Result<(), ParseError> {
        let m =
            parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 1 kB\n")?;
        assert_eq!(m.available_bytes, 111 * 1024);
        Ok(())
    }

    #[test]
    fn meminfo_rejects_garbage() {
        assert_eq!(parse_meminfo(""), Err(ParseError::Missing("MemTotal")));
        assert!(parse_meminfo("MemTotal: lots kB\n").is_err());
        assert!(parse_meminfo("MemTotal:\n").is_err(), "truncated");
        assert!(parse_meminfo("MemTotal: 5 MB\nMemAvailable: 1 kB\n").is_err());
        assert_eq!(
            parse_meminfo("MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n"),
            Err(ParseError::OutOfRange("MemTotal"))
        );
        assert!(parse_meminfo("MemTotal: 100000000000000000000000 kB\n").is_err());
        assert!(parse_meminfo("MemTotal: 10 kB\n").is_err(), "no available");
        // More available than total: used clamps to zero instead of wrapping.
        let m = parse_meminfo("MemTotal: 1 kB\nMemAvailable: 5 kB\n");
        assert_eq!(m.map(|m| m.used_bytes()), Ok(0));
    }

    #[test]
    fn loadavg_exact_milli() {
        assert_eq!(
            parse_loadavg("0.67 0.48 0.21 4/88 7768\n"),
            Ok(LoadAvg {
                load1_milli: 670,
                load5_milli: 480,
                load15_milli: 210
            })
        );
        assert_eq!(
            parse_loadavg("12 3.5 .1234"),
            Ok(LoadAvg {
                load1_milli: 12_000,
                load5_milli: 3_500,
                load15_milli: 123
            })
        );
    }

    #[test]
    fn loadavg_rejects_garbage() {
        assert!(parse_loadavg("").is_err());
        assert!(parse_loadavg("0.67 0.48").is_err(), "truncated");
        assert!(parse_loadavg("0.67 abc 0.21").is_err());
        assert!(parse_loadavg("-1.0 0 0").is_err());
        assert!(parse_loadavg("1e3 0 0").is_err());
        assert!(parse_loadavg(". 0 0").is_err());
        assert!(parse_loadavg("1.2.3 0 0").is_err());
        assert_eq!(
            parse_loadavg("18446744073709551615.0 0 0"),
            Err(ParseError::OutOfRange("load1"))
        );
    }

    const NET_DEV: &str = "Inter-|   Receive                                                |  Transmit\n \
        face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
        lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n  \
        eth0: 95725285    4776    1    0    0     0          0         0   339000    3347    2    0    0     0       0          0\n";

    #[test]
    fn net_dev_counters() -> Result<(), ParseError> {
        let (nics, more) = parse_net_dev(NET_DEV)?;
        assert!(!more);
        assert_eq!(nics.len(), 2);
        assert_eq!(
            nics[1],
            NetDevCounters {
                name: "eth0".into(),
                rx_bytes: 95_725_285,
                rx_packets: 4776,
                rx_errors: 1,
                tx_bytes: 339_000,
                tx_packets: 3347,
                tx_errors: 2,
            }
        );
        Ok(())
    }

    #[test]
    fn net_dev_rejects_garbage() {
        let header = "a|b\nc|d\n";
        assert!(parse_net_dev("").is_err());
        assert!(parse_net_dev("eth0: 1 2 3\n").is_err(), "no header");
        assert!(parse_net_dev(&format!("{header}eth0 1 2\n")).is_err());
        assert!(parse_net_dev(&format!("{header}eth0: 1 2 3\n")).is_err());
        let fifteen = "1 ".repeat(15);
        assert!(parse_net_dev(&format!("{header}eth0: {fifteen}x\n")).is_err());
        assert!(parse_net_dev(&format!("{header}eth0: {fifteen}1 1\n")).is_err());
        assert!(
            parse_net_dev(&format!("{header}../x: {fifteen}1\n")).is_err(),
            "path traversal in name"
        );
        assert!(
            parse_net_dev(&format!("{header}eth0: {fifteen}99999999999999999999999\n")).is_err()
        );
        assert!(parse_net_dev(&format!("{header}\n")).is_ok_and(|(v, _)| v.is_empty()));
    }

    #[test]
    fn net_dev_caps_interfaces() -> Result<(), ParseError> {
        let mut text = String::from("a|b\nc|d\n");
        for i in 0..MAX_NICS + 5 {
            let _ = writeln!(text, "v{i}: {}", "0 ".repeat(16));
        }
        let (nics, more) = parse_net_dev(&text)?;
        assert_eq!(nics.len(), MAX_NICS);
        assert!(more);
        Ok(())
    }

    #[test]
    fn mounts_decode_escapes_and_skip_odd_lines() {
        let text = "/dev/vda / ext4 rw,relatime 0 0\n\
            /dev/vdb /mnt/my\\040disk xfs rw 0 0\n\
            broken-line\n\
            /dev/vdc /bad\\0 ext4 rw 0 0\n\
            /dev/vdd /nul\\000 ext4 rw 0 0\n\
            /dev/vde relative ext4 rw 0 0\n";
        let (mounts, skipped) = parse_mounts(text);
        assert_eq!(skipped, 4);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].mount_point, "/mnt/my disk");
        assert_eq!(mounts[1].fs_type, "xfs");
    }

    #[test]
    fn osrelease_validation() {
        assert_eq!(
            parse_osrelease("6.18.44-fc-v769\n"),
            Ok("6.18.44-fc-v769".to_owned())
        );
        assert!(parse_osrelease("").is_err());
        assert!(parse_osrelease("6.1\u{1b}[31m").is_err());
        assert!(parse_osrelease("6.1 extra").is_err());
        assert!(parse_osrelease(&"9".repeat(1000)).is_err());
    }

    #[test]
    fn cpu_list_counts() {
        assert_eq!(parse_cpu_list_count("0-1\n"), Ok(2));
        assert_eq!(parse_cpu_list_count("0-3,8,10-11"), Ok(7));
        assert!(parse_cpu_list_count("").is_err());
        assert!(parse_cpu_list_count("3-1").is_err());
        assert!(parse_cpu_list_count("0-99999999999").is_err());
        assert!(parse_cpu_list_count("0-8191,0-8191").is_err());
        assert!(parse_cpu_list_count("a-b").is_err());
    }

    #[test]
    fn speed_values() {
        assert_eq!(parse_sysfs_speed("25000\n"), Ok(Some(25_000)));
        assert_eq!(parse_sysfs_speed("-1\n"), Ok(None));
        assert_eq!(parse_sysfs_speed("0"), Ok(None));
        assert_eq!(parse_sysfs_speed("4294967295"), Ok(None));
        assert!(parse_sysfs_speed("fast").is_err());
        assert!(parse_sysfs_speed("-2").is_err());
    }

    #[test]
    fn join_is_bounded() {
        let errors: Vec<String> = (0..100).map(|i| format!("error number {i}")).collect();
        let joined = join_bounded(&errors, 64);
        assert!(joined.len() <= 64 + "; (+100 more)".len());
        assert!(joined.ends_with("more)"));
        assert_eq!(join_bounded(&errors[..1], 64), "error number 0");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parsers_never_panic_on_arbitrary_text(s in "\\PC{0,400}") {
            let _ = parse_proc_stat(&s);
            let _ = parse_meminfo(&s);
            let _ = parse_loadavg(&s);
            let _ = parse_net_dev(&s);
            let _ = parse_mounts(&s);
            let _ = parse_osrelease(&s);
            let _ = parse_cpu_list_count(&s);
            let _ = parse_sysfs_speed(&s);
        }

        #[test]
        fn parsers_never_panic_on_near_valid_text(
            s in "(cpu[0-9]? |MemTotal: |MemAvailable: |[a-z0-9]{1,4}: |[|\\\\.:\\- 0-9]|[0-9]{1,25}| kB|\n){0,80}"
        ) {
            let _ = parse_proc_stat(&s);
            let _ = parse_meminfo(&s);
            let _ = parse_loadavg(&s);
            let _ = parse_net_dev(&s);
            let _ = parse_mounts(&s);
            let _ = parse_cpu_list_count(&s);
            let _ = parse_sysfs_speed(&s);
        }

        #[test]
        fn utilization_is_at_most_1000(
            a in proptest::array::uniform8(any::<u64>()),
            b in proptest::array::uniform8(any::<u64>()),
        ) {
            let t = |v: [u64; 8]| CpuTimes {
                user: v[0], nice: v[1], system: v[2], idle: v[3],
                iowait: v[4], irq: v[5], softirq: v[6], steal: v[7],
            };
            if let Some(p) = cpu_utilization_permille(&t(a), &t(b)) {
                prop_assert!(p <= 1000);
            }
        }

        #[test]
        fn loadavg_roundtrips_two_decimals(x in 0u64..10_000_000, y in 0u64..100) {
            let text = format!("{x}.{y:02} 0.00 0.00 1/1 1");
            let parsed = parse_loadavg(&text);
            prop_assert_eq!(parsed.map(|l| l.load1_milli), Ok(x * 1000 + y * 10));
        }
    }
}
