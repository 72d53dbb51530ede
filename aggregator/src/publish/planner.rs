//! What a publisher writes next, and when: a pure state machine over the hysteresis.
//!
//! The publisher's I/O (server-side apply of the status, the merge-patch heartbeat)
//! stays in the agent; every decision about it lives here, driven by a monotonic `now`
//! the caller passes in, so outage, recovery, light heartbeats and the periodic full
//! refresh are unit-tested without a clock or an API server.

use std::time::Duration;

use super::hysteresis::{Decision, Hysteresis, Reason};
use crate::api::NodeTopologyStatus;

/// Reason label of the write that follows an outage or a lost object.
pub const REASON_RECOVERY: &str = "recovery";

/// The next step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Write the whole status (server-side apply), for this reason label.
    Full(&'static str),
    /// Refresh only the timestamps (nothing moved beyond a threshold).
    Heartbeat,
    /// Nothing to write yet; look again after this long.
    Wait(Duration),
}

/// The planner's memory of what was written.
#[derive(Clone, Debug)]
pub struct PublishPlanner {
    hysteresis: Hysteresis,
    /// Every how many heartbeats one is a full write instead of a light one.
    full_refresh_every: u32,
    /// How often the caller compares the current status with the published one.
    check_period: Duration,
    /// The last status written in full (what the object's figures say).
    published: Option<NodeTopologyStatus>,
    /// When the last write of either kind succeeded.
    last_write: Option<Duration>,
    /// Light heartbeats since the last full write.
    light_heartbeats: u32,
    /// The object may not say what was last written (an outage swallowed a write, or
    /// the object was deleted): the next write is a full one, as soon as allowed.
    stale: bool,
}

impl PublishPlanner {
    /// A planner that has written nothing yet.
    pub fn new(hysteresis: Hysteresis, full_refresh_every: u32, check_period: Duration) -> Self {
        PublishPlanner {
            hysteresis,
            full_refresh_every: full_refresh_every.max(1),
            check_period,
            published: None,
            last_write: None,
            light_heartbeats: 0,
            stale: false,
        }
    }

    /// The thresholds in force.
    pub fn hysteresis(&self) -> &Hysteresis {
        &self.hysteresis
    }

    /// Whether the next write is owed to an outage or a lost object.
    pub fn is_stale(&self) -> bool {
        self.stale
    }

    /// What to do at `now` with `current` as the agent's status.
    pub fn plan(&self, now: Duration, current: &NodeTopologyStatus) -> Plan {
        // Timing (heartbeat, minimum interval) counts any write; the comparison is
        // with the last full write, since that is what the object's figures say.
        let since = self.last_write.map(|at| now.saturating_sub(at));
        // Waits are capped at the check period: the caller looks again by then anyway.
        let wait = |d: Duration| Plan::Wait(d.clamp(Duration::from_millis(100), self.check_period));
        if self.stale {
            return match since {
                Some(age) if age < self.hysteresis.min_interval => {
                    wait(self.hysteresis.min_interval - age)
                }
                _ => Plan::Full(REASON_RECOVERY),
            };
        }
        match self
            .hysteresis
            .decide(self.published.as_ref(), since, current)
        {
            Decision::Publish(Reason::Heartbeat)
                if self.light_heartbeats + 1 < self.full_refresh_every =>
            {
                Plan::Heartbeat
            }
            Decision::Publish(reason) => Plan::Full(reason.as_str()),
            Decision::Defer(d) => {
                Plan::Wait(d.clamp(Duration::from_millis(100), self.check_period))
            }
            Decision::Skip => Plan::Wait(self.check_period),
        }
    }

    /// A full write of `status` succeeded at `now`. Returns whether it ended a stale
    /// period (worth an INFO line).
    pub fn wrote_full(&mut self, now: Duration, status: NodeTopologyStatus) -> bool {
        self.published = Some(status);
        self.last_write = Some(now);
        self.light_heartbeats = 0;
        std::mem::replace(&mut self.stale, false)
    }

    /// A light heartbeat succeeded at `now`.
    pub fn wrote_heartbeat(&mut self, now: Duration) {
        self.last_write = Some(now);
        self.light_heartbeats += 1;
    }

    /// A write was lost (the server went away mid-write, or came back after an
    /// outage), or the object is gone: what it says can no longer be trusted.
    pub fn mark_stale(&mut self) {
        self.stale = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Link;

    const MIN: Duration = Duration::from_secs(60);
    const BEAT: Duration = Duration::from_secs(300);
    const CHECK: Duration = Duration::from_secs(5);

    fn planner() -> PublishPlanner {
        let h = Hysteresis {
            min_interval: MIN,
            heartbeat: BEAT,
            ..Hysteresis::default()
        };
        PublishPlanner::new(h, 12, CHECK)
    }

    fn status(p50_us: u64) -> NodeTopologyStatus {
        NodeTopologyStatus {
            links: vec![Link {
                peer: "b".into(),
                rtt_p50_us: Some(p50_us),
                ..Link::default()
            }],
            ..NodeTopologyStatus::default()
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn first_write_is_full_then_nothing_until_something_moves() {
        let mut p = planner();
        assert_eq!(p.plan(secs(0), &status(1000)), Plan::Full("first"));
        assert!(!p.wrote_full(secs(0), status(1000)));
        assert_eq!(p.plan(secs(10), &status(1010)), Plan::Wait(CHECK));
        // A move beyond 10% and 100 µs before the minimum interval: wait out the rest.
        assert_eq!(p.plan(secs(50), &status(2000)), Plan::Wait(CHECK));
        assert_eq!(p.plan(secs(58), &status(2000)), Plan::Wait(secs(2)));
        assert_eq!(p.plan(secs(60), &status(2000)), Plan::Full("links"));
    }

    #[test]
    fn heartbeats_are_light_and_every_twelfth_is_full() {
        let mut p = planner();
        p.wrote_full(secs(0), status(1000));
        let mut now = secs(0);
        for n in 1..12 {
            assert_eq!(
                p.plan(now + BEAT - secs(1), &status(1000)),
                Plan::Wait(CHECK),
                "beat {n}"
            );
            now += BEAT;
            assert_eq!(p.plan(now, &status(1000)), Plan::Heartbeat, "beat {n}");
            p.wrote_heartbeat(now);
        }
        now += BEAT;
        assert_eq!(p.plan(now, &status(1000)), Plan::Full("heartbeat"));
        p.wrote_full(now, status(1000));
        // The count starts over.
        assert_eq!(p.plan(now + BEAT, &status(1000)), Plan::Heartbeat);
    }

    #[test]
    fn a_heartbeat_does_not_reset_the_comparison_base() {
        let mut p = planner();
        p.wrote_full(secs(0), status(1000));
        p.wrote_heartbeat(BEAT);
        // 1000 -> 1090 is below 10%; drift is compared with the last full write, not
        // with the heartbeat, so it accumulates: 1000 -> 1150 moves.
        assert_eq!(p.plan(BEAT + MIN, &status(1090)), Plan::Wait(CHECK));
        assert_eq!(p.plan(BEAT + MIN, &status(1150)), Plan::Full("links"));
    }

    #[test]
    fn outage_then_recovery_writes_in_full_once_the_minimum_interval_allows() {
        let mut p = planner();
        p.wrote_full(secs(0), status(1000));
        // The server went away mid-write (or discovery saw it come back).
        p.mark_stale();
        assert!(p.is_stale());
        assert_eq!(p.plan(secs(20), &status(1000)), Plan::Wait(CHECK));
        assert_eq!(p.plan(secs(57), &status(1000)), Plan::Wait(secs(3)));
        assert_eq!(p.plan(secs(60), &status(1000)), Plan::Full(REASON_RECOVERY));
        assert!(
            p.wrote_full(secs(61), status(1000)),
            "the write ends the stale period"
        );
        assert!(!p.is_stale());
        assert_eq!(p.plan(secs(70), &status(1000)), Plan::Wait(CHECK));
    }

    #[test]
    fn a_stale_planner_that_never_wrote_writes_at_once() {
        let mut p = planner();
        p.mark_stale();
        assert_eq!(p.plan(secs(0), &status(1000)), Plan::Full(REASON_RECOVERY));
    }

    #[test]
    fn a_lost_object_after_light_heartbeats_gets_a_full_write() {
        let mut p = planner();
        p.wrote_full(secs(0), status(1000));
        p.wrote_heartbeat(BEAT);
        // The heartbeat's merge patch found no object: someone deleted it.
        p.mark_stale();
        assert_eq!(
            p.plan(BEAT + MIN, &status(1000)),
            Plan::Full(REASON_RECOVERY)
        );
    }
}
