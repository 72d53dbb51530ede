//! Leader election on a `coordination.k8s.io/v1` Lease with kube-lease-manager, behind a
//! plain `watch::Receiver<bool>` (true while this replica writes), so the loop reads the
//! same thing whether election is on or off.
//!
//! On shutdown the lease manager's channel is dropped and its task awaited: that task
//! releases the Lease, so the other replica takes it as soon as it next looks (within
//! one lease duration) instead of waiting for it to expire unrenewed.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::args::Election;

/// How long shutdown waits for the Lease release.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);
/// First and longest wait before setting up the lease manager again after it failed.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// Always the leader: `--leader-election=false`. The sender must outlive the receiver's
/// use, so it is returned too.
pub fn always() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(true)
}

/// Starts competing for the Lease. The task ends (having released the Lease) once
/// `shutdown` is cancelled.
pub fn spawn(
    client: Client,
    election: Election,
    shutdown: CancellationToken,
) -> (watch::Receiver<bool>, JoinHandle<()>) {
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(compete(client, election, tx, shutdown));
    (rx, task)
}

async fn compete(
    client: Client,
    e: Election,
    tx: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut retry = RETRY_MIN;
    loop {
        let builder = LeaseManagerBuilder::new(client.clone(), &e.lease_name)
            .with_namespace(&e.namespace)
            .with_identity(&e.identity)
            .with_duration(e.duration_secs)
            .with_grace(e.grace_secs)
            .with_field_manager(&e.field_manager);
        let built = tokio::select! {
            _ = shutdown.cancelled() => return,
            built = builder.build() => built,
        };
        let manager = match built {
            Ok(m) => m,
            Err(err) => {
                tracing::warn!(
                    lease = %e.lease_name,
                    namespace = %e.namespace,
                    error = %err,
                    retry_in_s = retry.as_secs(),
                    "cannot set up leader election; this replica does not write meanwhile"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(retry) => {}
                }
                retry = (retry * 2).min(RETRY_MAX);
                continue;
            }
        };
        let (mut lease_rx, task) = manager.watch().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    tx.send_replace(false);
                    // Dropping the channel makes the manager release the Lease and end.
                    drop(lease_rx);
                    match tokio::time::timeout(RELEASE_TIMEOUT, task).await {
                        Ok(Ok(Ok(_))) => tracing::info!(identity = %e.identity, "released the Lease"),
                        Ok(Ok(Err(err))) => tracing::warn!(identity = %e.identity, error = %err, "releasing the Lease failed; it expires on its own"),
                        Ok(Err(_)) | Err(_) => tracing::warn!(identity = %e.identity, "releasing the Lease did not finish; it expires on its own"),
                    }
                    return;
                }
                changed = lease_rx.changed() => {
                    if changed.is_err() {
                        // The manager's task ended (it gives up on a closed channel or a
                        // send error): not leader any more; set it up again.
                        tx.send_replace(false);
                        match task.await {
                            Ok(Err(err)) => tracing::warn!(error = %err, "leader election stopped; restarting it"),
                            _ => tracing::warn!("leader election stopped; restarting it"),
                        }
                        break;
                    }
                    let leader = *lease_rx.borrow_and_update();
                    tx.send_replace(leader);
                    retry = RETRY_MIN;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
}
