//! Structured logs on standard error: JSON for log pipelines (the default in a pod), or
//! text for people.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Human-readable lines.
    Text,
}

/// Installs the global subscriber with `filter` (RUST_LOG syntax). The error is the one
/// line to print. A second call (tests running commands in-process) keeps the first.
pub fn init(format: LogFormat, filter: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(quiet_noisy_targets(filter))
        .map_err(|e| format!("--log-level {filter:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_target(false)
            // Colour codes only for a person at a terminal, not in a log file.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    Ok(())
}

/// kube's client builder logs every new connection at info: quieted unless the filter
/// names `kube_client` itself.
fn quiet_noisy_targets(filter: &str) -> String {
    let filter = filter.trim();
    if filter.contains("kube_client") {
        filter.to_owned()
    } else if filter.is_empty() {
        "kube_client::client::builder=off".to_owned()
    } else {
        format!("{filter},kube_client::client::builder=off")
    }
}

#[cfg(test)]
mod tests {
    use super::quiet_noisy_targets;

    #[test]
    fn noisy_targets_are_quieted_unless_named() {
        assert_eq!(
            quiet_noisy_targets("info"),
            "info,kube_client::client::builder=off"
        );
        assert_eq!(
            quiet_noisy_targets("kube_client=debug"),
            "kube_client=debug"
        );
        assert_eq!(quiet_noisy_targets(""), "kube_client::client::builder=off");
    }

    #[test]
    fn a_bad_filter_is_one_line() {
        let err = super::init(super::LogFormat::Text, "info,[").expect_err("refused");
        assert!(err.starts_with("--log-level"), "{err}");
        assert!(!err.contains('\n'));
    }
}
