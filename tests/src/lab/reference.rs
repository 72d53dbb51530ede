//! References measured in the same run, and the bounds timing tests hold them to.
//!
//! A timing test never compares linkmeter with an ideal (a relay's configured delay, a
//! tbf rate): on a loaded 2-core machine the lab itself drifts from the ideal by more
//! than linkmeter's own error. It compares with a reference tool (`ping`, `iperf3`) on
//! the same path, interleaved or back to back, and checks the ideal only with a bound the
//! lab was measured to honour under load ([`RELAY_SLACK`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Result;

/// How far linkmeter's RTT p50 may sit from `ping`'s median on the same path: 50 µs
/// plus 1% of the reference. The 50 µs cover both tools' output resolution (ping prints
/// 0.1 ms steps from 10 ms on; the agent rounds to 3 significant digits) and scheduling
/// noise between two runs a second apart; the 1% covers the relay's drift between them.
pub fn rtt_tolerance_us(ping_us: f64) -> f64 {
    50.0 + 0.01 * ping_us
}

/// What a relay adds to a busy sender's echoes and not to ping's, in µs. The relay
/// picks a packet up when its thread runs, on whichever core it woke; a sender that
/// keeps running after `sendto` (a daemon's runtime does; ping blocks at once) can hold
/// that core a while first (under EEVDF a woken thread waits for the running one's
/// slice). On a veth no thread needs waking, and the agent matches ping there.
/// Measured with three agents side by side on relays (kube_agents): +80 to +105 µs
/// over a concurrent ping in a quiet CI run. A relay asking for a short slice
/// (sched_setattr) cut that to +10 to +60 µs but cost 190 µs per round trip idle;
/// SCHED_FIFO removed it but cost 160 µs. Only tests with several daemons on relays add
/// it; icmp_lab holds the strict bound (one `snapshot`, which blocks while it waits).
pub const RELAY_PICKUP_US: f64 = 100.0;

/// How far linkmeter's throughput may sit from iperf3's on the same link: 3%.
pub const THROUGHPUT_TOLERANCE: f64 = 0.03;

/// What a lab relay may add to a round trip beyond its configured delay, on top of
/// the plain-veth RTT measured in the same run. Measured with
/// `cargo test -p linkmeter-tests --test lab_delay -- --nocapture`
/// (`relay_adds_little_latency` prints it): a 0 ms relay adds 62-122 µs per round trip
/// on an idle machine (the two-thread relay it replaced: 150 µs), 58-72 µs with one
/// core busy, 16-30 µs with both busy (the cost is mostly waking idle vCPUs); a 7 ms
/// relay's path read 14,042-14,061 µs above the veth's, a 3 ms + 20 Mbit/s one
/// +21 to +84 µs over its configured 6,067 µs, idle and loaded. 0.5 ms is four times
/// the worst of these, room for agents and transfers sharing the cores, and still
/// catches a relay that falls a scheduling quantum behind (the 8.94 ms reading of a
/// 6.07 ms link once seen in CI).
pub const RELAY_SLACK: Duration = Duration::from_micros(500);

/// Median of `values` (mean of the middle two for an even count); `None` when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// Runs each of `probes` `rounds` times, alternating (1, 2, …, 1, 2, …), so a burst of
/// machine noise hits all of them alike. Returns each probe's results in run order.
pub fn interleave(
    rounds: usize,
    probes: &mut [&mut dyn FnMut() -> Result<f64>],
) -> Result<Vec<Vec<f64>>> {
    let mut out = vec![Vec::with_capacity(rounds); probes.len()];
    for _ in 0..rounds {
        for (probe, results) in probes.iter_mut().zip(out.iter_mut()) {
            results.push(probe()?);
        }
    }
    Ok(out)
}

/// Keeps one core busy (a spinning thread) until dropped: the "one core busy" half
/// of a measurement taken both idle and loaded.
#[derive(Debug)]
pub struct BusyCore {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BusyCore {
    /// Starts the spinning thread.
    pub fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                std::hint::spin_loop();
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for BusyCore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn interleave_alternates_probes() -> Result<()> {
        let order = std::cell::RefCell::new(Vec::new());
        let mut a = || {
            order.borrow_mut().push('a');
            Ok(1.0)
        };
        let mut b = || {
            order.borrow_mut().push('b');
            Ok(2.0)
        };
        let runs = interleave(2, &mut [&mut a, &mut b])?;
        assert_eq!(runs, vec![vec![1.0, 1.0], vec![2.0, 2.0]]);
        assert_eq!(*order.borrow(), vec!['a', 'b', 'a', 'b']);
        Ok(())
    }

    #[test]
    fn tolerance_grows_with_the_reference() {
        assert_eq!(rtt_tolerance_us(0.0), 50.0);
        assert_eq!(rtt_tolerance_us(14_000.0), 190.0);
    }
}
