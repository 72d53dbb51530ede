//! Flags every offline command shares: the time the view is calculated at, and when a
//! report counts as stale.

use std::time::Duration;

use clap::Args;

use crate::cluster::Options;

/// `--now` and `--stale-after`.
#[derive(Debug, Clone, Args)]
pub struct ViewArgs {
    /// Time the view is calculated at, RFC 3339 (e.g. 2025-06-01T12:00:00Z); staleness is
    /// judged against it [default: the current time]
    #[arg(long, value_name = "TIME", value_parser = parse_now)]
    pub now: Option<jiff::Timestamp>,
    /// A NodeTopology observed longer ago than this is stale: its node is listed as stale
    /// and its links are left out of the costs and the fit (e.g. 15m, 1h30m)
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_stale_after)]
    pub stale_after: Duration,
}

impl ViewArgs {
    /// Calculation options with these flags and every other option at its default.
    pub fn options(&self) -> Options {
        let mut opts = Options::at(self.now.unwrap_or_else(jiff::Timestamp::now));
        opts.stale_after = self.stale_after;
        opts
    }
}

fn parse_now(s: &str) -> Result<jiff::Timestamp, String> {
    s.parse::<jiff::Timestamp>()
        .map_err(|e| format!("not an RFC 3339 time with an offset ({e})"))
}

fn parse_stale_after(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("not a duration ({e})"))?;
    if d.is_zero() {
        return Err("must be more than 0".to_owned());
    }
    Ok(d)
}

/// A flag value that must not be empty (object names).
pub fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_and_durations() {
        assert!(parse_now("2025-06-01T12:00:00Z").is_ok());
        assert!(parse_now("2025-06-01T14:00:00+02:00").is_ok());
        assert!(parse_now("yesterday").is_err());
        assert_eq!(parse_stale_after("15m"), Ok(Duration::from_secs(900)));
        assert!(parse_stale_after("0s").is_err());
        assert!(parse_stale_after("soon").is_err());
    }
}
