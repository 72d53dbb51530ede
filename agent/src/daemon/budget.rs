//! Which peer to test for throughput next, and when: a pure planner.
//!
//! Rules: at most one test per peer per `period`; consecutive tests at least
//! `period / peers` apart, so a node's tests spread over the period instead of running
//! back to back when all peers fall due together (at start-up); the bytes this node's
//! tests (run or served) moved in the last hour plus what the next test may move (both
//! directions at their cap) stay within `bytes_per_hour`; a peer whose server was busy
//! or failed is retried after an exponential back-off from [`BASE_BACKOFF`] (with jitter
//! supplied by the caller), never longer than `period`; a peer that tested this node
//! both ways counts as tested. Among due peers the one tested longest ago goes first,
//! never-tested peers before all.
//! Time is passed in, so every rule is unit-tested without sleeping.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// First back-off after a busy or failed attempt.
pub const BASE_BACKOFF: Duration = Duration::from_secs(15);

/// What to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Test this peer now.
    Test(String),
    /// Nothing is due; ask again at this time (or when the peer set changes).
    WaitUntil(Instant),
    /// There are no peers.
    Idle,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Measured; the bytes both directions moved.
    Done {
        /// Bytes moved.
        bytes: u64,
    },
    /// The peer's server was busy with another test.
    Busy,
    /// Anything else (unreachable, refused, protocol error); bytes moved before it.
    Failed {
        /// Bytes moved.
        bytes: u64,
    },
    /// The peer tested this node (our server served it): the bytes count against the
    /// budget, and when both directions were measured the peer is not due again for a
    /// period, since its test measured the same pair.
    Served {
        /// Bytes moved.
        bytes: u64,
        /// Whether both directions were measured.
        both: bool,
    },
}

#[derive(Clone, Debug, Default)]
struct PeerRecord {
    last_done: Option<Instant>,
    retry_at: Option<Instant>,
    failures: u32,
}

/// The planner's memory: per-peer records and the last hour's byte ledger.
#[derive(Clone, Debug)]
pub struct Planner {
    period: Duration,
    bytes_per_hour: u64,
    max_test_bytes: u64,
    peers: HashMap<String, PeerRecord>,
    ledger: VecDeque<(Instant, u64)>,
    last_test: Option<Instant>,
}

const HOUR: Duration = Duration::from_secs(3600);
/// Ledger entries are merged when more than this many accumulate, keeping memory flat.
const MAX_LEDGER: usize = 1024;

impl Planner {
    /// A planner; `max_test_bytes` is the cap of one test (both directions together).
    pub fn new(period: Duration, bytes_per_hour: u64, max_test_bytes: u64) -> Self {
        Planner {
            period,
            bytes_per_hour,
            max_test_bytes,
            peers: HashMap::new(),
            ledger: VecDeque::new(),
            last_test: None,
        }
    }

    /// Bytes recorded in the hour before `now`.
    pub fn bytes_last_hour(&mut self, now: Instant) -> u64 {
        self.expire(now);
        self.ledger.iter().map(|(_, b)| *b).sum()
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(t, _)) = self.ledger.front() {
            if now.saturating_duration_since(t) >= HOUR {
                self.ledger.pop_front();
            } else {
                break;
            }
        }
    }

    /// Decides what to do at `now` for the current peer names. Peers no longer listed
    /// are forgotten.
    pub fn next(&mut self, now: Instant, peers: &[String]) -> Plan {
        self.peers.retain(|k, _| peers.contains(k));
        if peers.is_empty() {
            return Plan::Idle;
        }
        // Pacing: spread tests over the period.
        if let Some(last) = self.last_test {
            let gap = self.period / u32::try_from(peers.len()).unwrap_or(u32::MAX);
            if now < last + gap {
                return Plan::WaitUntil(last + gap);
            }
        }
        // Budget: the next test must fit whole.
        let used = self.bytes_last_hour(now);
        if used.saturating_add(self.max_test_bytes) > self.bytes_per_hour {
            let mut running = used;
            for &(t, b) in &self.ledger {
                running = running.saturating_sub(b);
                if running.saturating_add(self.max_test_bytes) <= self.bytes_per_hour {
                    return Plan::WaitUntil(t + HOUR);
                }
            }
            return Plan::WaitUntil(now + HOUR);
        }
        let mut best: Option<(&String, Option<Instant>)> = None;
        let mut earliest_due: Option<Instant> = None;
        for name in peers {
            let rec = self.peers.get(name).cloned().unwrap_or_default();
            let due = rec.last_done.map(|t| t + self.period);
            let due = match (due, rec.retry_at) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            match due {
                Some(d) if d > now => {
                    earliest_due = Some(earliest_due.map_or(d, |e| e.min(d)));
                }
                _ => {
                    let better = match &best {
                        None => true,
                        // Never tested (None) sorts before any time; older first.
                        Some((bn, bl)) => (rec.last_done, name) < (*bl, *bn),
                    };
                    if better {
                        best = Some((name, rec.last_done));
                    }
                }
            }
        }
        match (best, earliest_due) {
            (Some((name, _)), _) => Plan::Test(name.clone()),
            (None, Some(t)) => Plan::WaitUntil(t),
            (None, None) => Plan::WaitUntil(now + self.period),
        }
    }

    /// Records how an attempt on `peer` ended at `now`. `jitter` (0.0–1.0) spreads
    /// retries so that nodes refused by the same busy server do not return together.
    pub fn record(&mut self, peer: &str, now: Instant, attempt: Attempt, jitter: f64) {
        let bytes = match attempt {
            Attempt::Done { bytes } | Attempt::Failed { bytes } | Attempt::Served { bytes, .. } => {
                bytes
            }
            Attempt::Busy => 0,
        };
        if bytes > 0 {
            self.ledger.push_back((now, bytes));
            if self.ledger.len() > MAX_LEDGER {
                // Merge the two oldest entries into the newer one's time: keeps bytes
                // counted (a little longer than an hour), never forgets them early.
                if let (Some((_, b0)), Some((t1, b1))) =
                    (self.ledger.pop_front(), self.ledger.pop_front())
                {
                    self.ledger.push_front((t1, b0.saturating_add(b1)));
                }
            }
        }
        // Pacing spreads this node's own tests; a served one is the peer's.
        if !matches!(attempt, Attempt::Busy | Attempt::Served { .. }) {
            self.last_test = Some(now);
        }
        let rec = self.peers.entry(peer.to_owned()).or_default();
        match attempt {
            Attempt::Served { both: false, .. } => {}
            Attempt::Done { .. } | Attempt::Served { both: true, .. } => {
                rec.last_done = Some(now);
                rec.retry_at = None;
                rec.failures = 0;
            }
            Attempt::Busy | Attempt::Failed { .. } => {
                rec.failures = rec.failures.saturating_add(1);
                let exp =
                    BASE_BACKOFF.saturating_mul(1u32 << rec.failures.saturating_sub(1).min(16));
                let capped = exp.min(self.period);
                let jitter = if jitter.is_finite() {
                    jitter.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                rec.retry_at = Some(now + capped.mul_f64(0.5 + 0.5 * jitter));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn never_tested_first_then_oldest_and_period_respected() {
        let t0 = Instant::now();
        let mut p = Planner::new(Duration::from_secs(600), 10_000 * MB, 100 * MB);
        let peers = names(&["b", "a"]);
        assert_eq!(p.next(t0, &peers), Plan::Test("a".into()));
        p.record("a", t0, Attempt::Done { bytes: MB }, 0.0);
        // Two peers, 600 s period: tests are paced 300 s apart.
        let t1 = t0 + Duration::from_secs(300);
        assert_eq!(p.next(t0, &peers), Plan::WaitUntil(t1));
        assert_eq!(p.next(t1, &peers), Plan::Test("b".into()));
        p.record("b", t1, Attempt::Done { bytes: MB }, 0.0);
        let later = t1 + Duration::from_secs(1);
        assert_eq!(
            p.next(later, &peers),
            Plan::WaitUntil(t0 + Duration::from_secs(600))
        );
        let t2 = t0 + Duration::from_secs(700);
        assert_eq!(p.next(t2, &peers), Plan::Test("a".into()));
    }

    #[test]
    fn busy_backs_off_exponentially_up_to_the_period() {
        let t0 = Instant::now();
        let mut p = Planner::new(Duration::from_secs(100), 10_000 * MB, MB);
        let peers = names(&["a"]);
        p.record("a", t0, Attempt::Busy, 1.0);
        assert_eq!(p.next(t0, &peers), Plan::WaitUntil(t0 + BASE_BACKOFF));
        p.record("a", t0, Attempt::Busy, 1.0);
        assert_eq!(p.next(t0, &peers), Plan::WaitUntil(t0 + BASE_BACKOFF * 2));
        for _ in 0..10 {
            p.record("a", t0, Attempt::Busy, 1.0);
        }
        assert_eq!(
            p.next(t0, &peers),
            Plan::WaitUntil(t0 + Duration::from_secs(100))
        );
        p.record("a", t0, Attempt::Busy, 0.0);
        assert_eq!(
            p.next(t0, &peers),
            Plan::WaitUntil(t0 + Duration::from_secs(50)),
            "jitter 0 halves"
        );
    }

    #[test]
    fn a_peer_that_tested_us_both_ways_is_not_due() {
        let t0 = Instant::now();
        let mut p = Planner::new(Duration::from_secs(600), 1000 * MB, 100 * MB);
        let peers = names(&["a", "b"]);
        // "a" measured one direction against us: still due, and the bytes count.
        p.record(
            "a",
            t0,
            Attempt::Served {
                bytes: 10 * MB,
                both: false,
            },
            0.5,
        );
        assert_eq!(p.next(t0, &peers), Plan::Test("a".into()));
        p.record(
            "a",
            t0,
            Attempt::Served {
                bytes: 10 * MB,
                both: true,
            },
            0.5,
        );
        assert_eq!(p.bytes_last_hour(t0), 20 * MB);
        // Both ways: "a" is done for a period; served tests do not pace our own.
        assert_eq!(p.next(t0, &peers), Plan::Test("b".into()));
        p.record("b", t0, Attempt::Done { bytes: MB }, 0.5);
        assert_eq!(
            p.next(t0 + Duration::from_secs(301), &peers),
            Plan::WaitUntil(t0 + Duration::from_secs(600))
        );
    }

    #[test]
    fn hourly_byte_budget_defers_tests() {
        let t0 = Instant::now();
        let mut p = Planner::new(Duration::from_secs(1), 300 * MB, 100 * MB);
        let peers = names(&["a", "b", "c"]);
        p.record("a", t0, Attempt::Done { bytes: 150 * MB }, 0.0);
        p.record(
            "b",
            t0 + Duration::from_secs(10),
            Attempt::Done { bytes: 100 * MB },
            0.0,
        );
        // 250 MB used + 100 MB next > 300 MB: wait until the first entry expires.
        assert_eq!(
            p.next(t0 + Duration::from_secs(20), &peers),
            Plan::WaitUntil(t0 + HOUR)
        );
        assert_eq!(p.next(t0 + HOUR, &peers), Plan::Test("c".into()));
        assert_eq!(p.bytes_last_hour(t0 + HOUR), 100 * MB);
    }

    #[test]
    fn removed_peers_are_forgotten_and_memory_stays_flat() {
        let t0 = Instant::now();
        let mut p = Planner::new(Duration::from_secs(1), u64::MAX, 1);
        for i in 0..5000u64 {
            p.record(
                "a",
                t0 + Duration::from_millis(i),
                Attempt::Done { bytes: 1 },
                0.0,
            );
        }
        assert!(p.ledger.len() <= MAX_LEDGER);
        assert_eq!(p.bytes_last_hour(t0 + Duration::from_secs(10)), 5000);
        assert_eq!(p.next(t0, &[]), Plan::Idle);
        assert!(p.peers.is_empty());
    }
}
