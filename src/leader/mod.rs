//! Leader election on a coordination.k8s.io/v1 Lease: with several replicas, only the holder of the lease
//! runs the controllers (and so writes); the others wait as standbys.
//!
//! One writer at a time, by three means:
//! - conditional lease writes (create, or replace on the resourceVersion the decision was made on), so of
//!   two replicas acting on the same observation only one wins ([`lease`]);
//! - a standby takes a held lease only after watching it unchanged for the holder's whole lease duration
//!   by its own monotonic clock, and a leader stops at the renew deadline, which is shorter ([`decide`]);
//! - a fence on the controllers' client refuses writes from that deadline on, even in a process that was
//!   frozen and has not yet noticed ([`crate::fence`]).
//!
//! Shutdown releases the lease, so a standby takes over at once instead of after the lease expires.

pub mod client;
pub mod clock;
pub mod decide;
pub mod identity;
pub mod lease;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::{Api, Client};
use tracing::{info, warn};

use crate::admin::Admin;
use crate::fence::Fence;
use clock::Moment;
use decide::{Action, Elector, Timings, Why};

/// Lease settings.
#[derive(Clone, Debug)]
pub struct Election {
    pub lease_name: String,
    pub namespace: String,
    /// This replica's identity ([`identity::identity`]).
    pub identity: String,
    pub timings: Timings,
}

/// How leadership ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Shutdown was asked for (the lease is released if it was held).
    Shutdown,
    /// This replica stopped leading (renew deadline passed, or another replica holds the lease): its
    /// controllers have stopped and it writes nothing more, not even the lease.
    Lost,
}

/// Waits for the lease, runs `work` while holding it, and stops it when leadership ends or `shutdown`
/// resolves. `work` receives the future that tells it to stop; it must write only through a client
/// fenced by `fence`. The lease itself is written through `lease_client`, which is not fenced.
pub async fn run_while_leader<W, F>(
    lease_client: Client,
    fence: Fence,
    election: Election,
    admin: Arc<Admin>,
    shutdown: Shared<BoxFuture<'static, ()>>,
    work: W,
) -> Ended
where
    W: FnOnce(Shared<BoxFuture<'static, ()>>) -> F,
    F: std::future::Future<Output = ()>,
{
    let api: Api<Lease> = Api::namespaced(lease_client, &election.namespace);
    let mut elector = Elector::new(election.identity.clone(), election.timings);
    // A standby is ready: it serves its probes and is one lease acquisition away from working.
    admin.ready.store(true, Ordering::SeqCst);
    info!(lease = %election.lease_name, identity = %election.identity, "waiting for the leader lease");
    let acquired = tokio::select! {
        () = acquire(&api, &election.lease_name, &mut elector, &fence) => true,
        () = shutdown.clone() => false,
    };
    if !acquired {
        return Ended::Shutdown;
    }
    info!(identity = %election.identity, "leading");
    admin.metrics.leader.set(1);
    admin.ready.store(false, Ordering::SeqCst);

    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = {
        let shutdown = shutdown.clone();
        async move {
            tokio::select! {
                () = shutdown => {}
                _ = lost_rx => {}
            }
        }
        .boxed()
        .shared()
    };
    let work = work(stop);
    tokio::pin!(work);
    let lost = {
        let renew = keep_leading(&api, &election.lease_name, &mut elector, &fence);
        tokio::pin!(renew);
        tokio::select! {
            why = &mut renew => Some(why),
            () = &mut work => None,
        }
    };
    // From here on nothing this replica still has in flight may write.
    fence.close();
    admin.metrics.leader.set(0);
    match lost {
        Some(why) => {
            match why {
                Why::Deadline => warn!(
                    identity = %election.identity,
                    renew_deadline = ?election.timings.renew_deadline,
                    "stepping down: no successful lease renewal within the renew deadline"
                ),
                Why::Lost { holder } => {
                    warn!(identity = %election.identity, holder = %holder, "lost the leader lease")
                }
            }
            let _ = lost_tx.send(());
            work.await;
            info!("controllers stopped");
            Ended::Lost
        }
        None => {
            release(&api, &election.lease_name, &elector).await;
            Ended::Shutdown
        }
    }
}

/// Returns once this replica holds the lease (and has opened the fence). Runs until then.
async fn acquire(api: &Api<Lease>, name: &str, elector: &mut Elector, fence: &Fence) {
    let timings = elector.timings();
    loop {
        let now = Moment::now();
        let action = elector.decide(now);
        let written = match action {
            Action::Read => {
                match tokio::time::timeout(
                    timings.renew_deadline,
                    lease::read(api, name, timings.lease_duration),
                )
                .await
                {
                    Ok(Ok(record)) => {
                        elector.observe(record, Moment::now());
                        continue;
                    }
                    Ok(Err(e)) => warn!(error = %e, "cannot read the leader lease"),
                    Err(_) => warn!("reading the leader lease timed out"),
                }
                elector.failed();
                None
            }
            Action::Create => {
                let spec = lease::held(
                    elector.identity(),
                    timings.lease_duration,
                    micro_now(),
                    micro_now(),
                    0,
                );
                Some(lease::create(api, name, spec, timings.lease_duration).boxed())
            }
            Action::Acquire { from } => {
                let transitions = lease::transitions_after_acquiring(&from, elector.identity());
                let spec = lease::held(
                    elector.identity(),
                    timings.lease_duration,
                    micro_now(),
                    micro_now(),
                    transitions,
                );
                info!(holder = %from.holder, "taking over the leader lease");
                let api = api.clone();
                let name = name.to_string();
                Some(
                    async move {
                        lease::replace(&api, &name, &from, spec, timings.lease_duration).await
                    }
                    .boxed(),
                )
            }
            Action::Wait => {
                elector.waited();
                None
            }
            // Not while standing by; read again.
            Action::Renew { .. } | Action::StepDown(_) => {
                elector.failed();
                None
            }
        };
        if let Some(write) = written {
            // Validity counts from the send time: the API server may apply the write any time after.
            let sent = Moment::now();
            match tokio::time::timeout(timings.renew_deadline, write).await {
                Ok(Ok(record)) => {
                    elector.wrote(record, sent);
                    if let Some(until) = elector.valid_until() {
                        fence.open_until(until);
                    }
                    return;
                }
                Ok(Err(e)) if lease::is_conflict(&e) => {
                    info!("another replica wrote the leader lease first");
                    elector.failed();
                    continue;
                }
                Ok(Err(e)) => warn!(error = %e, "cannot write the leader lease"),
                Err(_) => warn!("writing the leader lease timed out"),
            }
            elector.failed();
        }
        tokio::time::sleep(timings.retry_period).await;
    }
}

/// Renews the lease every retry period and keeps the fence open until the last successful renewal's send
/// time plus the renew deadline. Returns why leadership ended; by then the fence has closed on its own
/// (the deadline passed) or the lease is someone else's.
async fn keep_leading(api: &Api<Lease>, name: &str, elector: &mut Elector, fence: &Fence) -> Why {
    let timings = elector.timings();
    // Informational only, like every time written in the lease.
    let acquired = micro_now();
    loop {
        let now = Moment::now();
        let Some(until) = elector.valid_until() else {
            return Why::Deadline;
        };
        let retry = (now + timings.retry_period).min(until).to_tokio();
        match elector.decide(now) {
            Action::StepDown(why) => return why,
            Action::Read => {
                match tokio::time::timeout_at(
                    until.to_tokio(),
                    lease::read(api, name, timings.lease_duration),
                )
                .await
                {
                    Ok(Ok(record)) => {
                        elector.observe(record, Moment::now());
                        continue;
                    }
                    Ok(Err(e)) => warn!(error = %e, "cannot read the leader lease"),
                    Err(_) => continue,
                }
                elector.failed();
            }
            Action::Renew { from } => {
                let spec = lease::held(
                    elector.identity(),
                    timings.lease_duration,
                    acquired.clone(),
                    micro_now(),
                    from.transitions,
                );
                let sent = Moment::now();
                let renew = lease::replace(api, name, &from, spec, timings.lease_duration);
                match tokio::time::timeout_at(until.to_tokio(), renew).await {
                    Ok(Ok(record)) => {
                        elector.wrote(record, sent);
                        if let Some(until) = elector.valid_until() {
                            fence.open_until(until);
                        }
                        tokio::time::sleep_until((sent + timings.retry_period).to_tokio()).await;
                        continue;
                    }
                    Ok(Err(e)) if lease::is_conflict(&e) => {
                        // Someone else wrote it: read at once to see who.
                        elector.failed();
                        continue;
                    }
                    Ok(Err(e)) => warn!(error = %e, "cannot renew the leader lease"),
                    // The deadline passed: the next decision steps down.
                    Err(_) => {
                        elector.failed();
                        continue;
                    }
                }
                elector.failed();
            }
            Action::Create | Action::Acquire { .. } | Action::Wait => elector.failed(),
        }
        tokio::time::sleep_until(retry).await;
    }
}

/// Gives the lease up (shutdown), so a standby takes over at once. Only while it is still ours: the
/// replace carries the version we last saw in our name, and if anyone else wrote since, it fails and
/// nothing changes. One conflict is retried after a read, for a renewal of ours that shutdown cut short
/// after the API server had applied it.
async fn release(api: &Api<Lease>, name: &str, elector: &Elector) {
    let timings = elector.timings();
    let mine = |r: &decide::Record| r.holder == elector.identity();
    let Some(mut from) = elector.observed().filter(|r| mine(r)).cloned() else {
        return;
    };
    for attempt in 0..2 {
        let spec = lease::released(micro_now(), from.transitions);
        let replace = lease::replace(api, name, &from, spec, timings.lease_duration);
        match tokio::time::timeout(timings.renew_deadline, replace).await {
            Ok(Ok(_)) => return info!("leader lease released"),
            Ok(Err(e)) if lease::is_conflict(&e) && attempt == 0 => {
                let read = lease::read(api, name, timings.lease_duration);
                match tokio::time::timeout(timings.renew_deadline, read).await {
                    Ok(Ok(Some(now))) if mine(&now) => from = now,
                    _ => return info!("the leader lease is no longer ours: nothing to release"),
                }
            }
            Ok(Err(e)) => return warn!(error = %e, "could not release the leader lease"),
            Err(_) => return warn!("releasing the leader lease timed out"),
        }
    }
}

fn micro_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}
