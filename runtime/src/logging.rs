//! Structured logs on standard error: text for people, or one JSON object per line for
//! log pipelines. Each binary keeps its own flags, defaults and error wording; what
//! they share is how the subscriber is built.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;
pub use tracing_subscriber::filter::ParseError as FilterError;

/// Log line format (`--log-format text|json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether text lines carry ANSI colour codes (JSON lines never do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// tracing-subscriber's default: on, unless `NO_COLOR` is set (the agent).
    Default,
    /// Only when stderr is a terminal, so that a log file holds plain text (the
    /// aggregator).
    WhenTerminal,
}

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax (e.g. `info`,
/// `linkmeter_agent=debug`) and is used as given; the error is the filter's parse
/// error, which the caller words with its flag name. A second call (tests running
/// commands in-process) keeps the first subscriber.
pub fn init(format: LogFormat, filter: &str, colour: Colour) -> Result<(), FilterError> {
    let filter = EnvFilter::try_new(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A failed write (stderr's reader gone: EPIPE) is dropped. By default the layer
        // reports it with `eprintln!`, which panics on the same broken stderr, inside
        // whatever task logged — the signal task, so SIGTERM no longer stopped the
        // process. A log line is never worth a task.
        .log_internal_errors(false);
    let _ = match (format, colour) {
        (LogFormat::Json, _) => builder.json().flatten_event(true).try_init(),
        (LogFormat::Text, Colour::Default) => builder.with_target(false).try_init(),
        (LogFormat::Text, Colour::WhenTerminal) => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    Ok(())
}

/// Adds `kube_client::client::builder=off` to a log filter that says nothing about
/// `kube_client`: the client's tracing layer logs every new connection, and every
/// failed request at ERROR, which during an API outage is a line per retry; both
/// binaries log outages themselves, once. A filter that names `kube_client` is left as
/// the user wrote it.
pub fn quiet_kube_client(filter: &str) -> String {
    if filter.contains("kube_client") {
        filter.to_owned()
    } else if filter.trim().is_empty() {
        "kube_client::client::builder=off".to_owned()
    } else {
        format!("{filter},kube_client::client::builder=off")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_client_is_quiet_unless_named() {
        assert_eq!(
            quiet_kube_client("info"),
            "info,kube_client::client::builder=off"
        );
        assert_eq!(quiet_kube_client("kube_client=debug"), "kube_client=debug");
        assert_eq!(quiet_kube_client(""), "kube_client::client::builder=off");
        assert_eq!(quiet_kube_client("  "), "kube_client::client::builder=off");
    }

    #[test]
    fn a_bad_filter_is_refused_in_one_line() {
        let err = init(LogFormat::Text, "info,[", Colour::WhenTerminal).expect_err("refused");
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}
