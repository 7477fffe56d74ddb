//! Leader election on a coordination.k8s.io Lease: with several replicas, only the holder of the lease
//! runs the controllers (and so writes); the others wait as standbys. Shutdown releases the lease, so a
//! standby takes over at once instead of after the lease expires.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tracing::{info, warn};

use crate::admin::Admin;

/// Lease settings.
#[derive(Clone, Debug)]
pub struct Election {
    pub lease_name: String,
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// Seconds a lease is valid without renewal: how long a dead leader blocks a standby.
    pub duration_seconds: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace_seconds: u64,
}

/// How leadership ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Shutdown was asked for (the lease is released).
    Shutdown,
    /// Another replica holds the lease now: this one stopped its controllers.
    Lost,
}

/// Waits for the lease, runs `work` while holding it, and stops it when the lease is lost or `shutdown`
/// resolves. `work` receives the future that tells it to stop.
pub async fn run_while_leader<W, F>(
    client: Client,
    election: Election,
    admin: Arc<Admin>,
    shutdown: Shared<BoxFuture<'static, ()>>,
    work: W,
) -> Result<Ended, kube_lease_manager::LeaseManagerError>
where
    W: FnOnce(Shared<BoxFuture<'static, ()>>) -> F,
    F: std::future::Future<Output = ()>,
{
    let manager = LeaseManagerBuilder::new(client, &election.lease_name)
        .with_namespace(&election.namespace)
        .with_identity(&election.identity)
        .with_duration(election.duration_seconds)
        .with_grace(election.grace_seconds)
        .with_field_manager("ecs-operator/leader")
        .build()
        .await?;
    let (mut leading, lease_task) = manager.watch().await;
    // A standby is ready: it serves its probes and is one lease renewal away from working.
    admin.ready.store(true, Ordering::SeqCst);
    info!(lease = %election.lease_name, identity = %election.identity, "waiting for the leader lease");
    let ended = loop {
        if *leading.borrow_and_update() {
            break None;
        }
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { break Some(Ended::Lost) },
            _ = shutdown.clone() => break Some(Ended::Shutdown),
        }
    };
    let ended = match ended {
        Some(ended) => {
            drop(leading);
            ended
        }
        None => {
            info!(identity = %election.identity, "leading");
            admin.metrics.leader.set(1);
            admin.ready.store(false, Ordering::SeqCst);
            // The only receiver lives in this task: aborting it closes the channel, which releases the lease.
            let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
            let follow = tokio::spawn(async move {
                while *leading.borrow_and_update() {
                    if leading.changed().await.is_err() {
                        break;
                    }
                }
                let _ = lost_tx.send(());
                std::future::pending::<()>().await;
            });
            let (ended_tx, ended_rx) = tokio::sync::oneshot::channel::<Ended>();
            let stop = {
                let shutdown = shutdown.clone();
                async move {
                    let ended = tokio::select! {
                        _ = lost_rx => Ended::Lost,
                        _ = shutdown => Ended::Shutdown,
                    };
                    let _ = ended_tx.send(ended);
                }
                .boxed()
                .shared()
            };
            work(stop).await;
            admin.metrics.leader.set(0);
            follow.abort();
            let _ = follow.await;
            ended_rx.await.unwrap_or(Ended::Shutdown)
        }
    };
    if ended == Ended::Lost {
        warn!(identity = %election.identity, "lost the leader lease");
    }
    match lease_task.await {
        Ok(Ok(_)) => info!("leader lease released"),
        Ok(Err(e)) => warn!(error = %e, "could not release the leader lease"),
        Err(e) => warn!(error = %e, "lease task failed"),
    }
    Ok(ended)
}
