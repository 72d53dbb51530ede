//! The one way every long-running command stops: SIGTERM (what the kubelet sends) or
//! SIGINT cancels a token that all its tasks watch.

use tokio_util::sync::CancellationToken;

/// Cancels `token` on the first SIGTERM or SIGINT, logging which arrived. Must run
/// inside a Tokio runtime; fails only when the signal handlers cannot be installed.
pub fn cancel_on_signals(token: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
            _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
        }
        token.cancel();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::cancel_on_signals;

    #[tokio::test]
    async fn sigint_cancels_the_token() {
        let token = tokio_util::sync::CancellationToken::new();
        cancel_on_signals(token.clone()).expect("handlers install");
        // SAFETY: raise(3) only sends this process a signal; the handler installed
        // above owns SIGINT now, so it no longer ends the test binary.
        assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
        tokio::time::timeout(Duration::from_secs(5), token.cancelled())
            .await
            .expect("cancelled by SIGINT");
    }
}
