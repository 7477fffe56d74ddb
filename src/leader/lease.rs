//! Reading and writing the coordination.k8s.io/v1 Lease. Every write is conditional: a create fails if the
//! lease exists, a replace carries the resourceVersion it was decided on, so of two replicas acting on the
//! same observation only one succeeds (the other gets 409 Conflict).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

use super::decide::Record;

const FIELD_MANAGER: &str = "ecs-operator/leader";

/// What the decisions need of `lease`.
pub fn record(lease: &Lease, default_duration: Duration) -> Record {
    let spec = lease.spec.clone().unwrap_or_default();
    Record {
        holder: spec.holder_identity.unwrap_or_default(),
        duration: spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(default_duration, Duration::from_secs),
        resource_version: lease.metadata.resource_version.clone().unwrap_or_default(),
        transitions: spec.lease_transitions.unwrap_or(0),
    }
}

/// The spec of a lease held by `identity`. `acquired` is when it took the lease; the times are
/// informational (for people and tools): no replica's decision reads them.
pub fn held(
    identity: &str,
    duration: Duration,
    acquired: MicroTime,
    now: MicroTime,
    transitions: i32,
) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)),
        acquire_time: Some(acquired),
        renew_time: Some(now),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// The spec of a released lease: no holder, so a standby takes it at once (client-go writes the same).
pub fn released(now: MicroTime, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        lease_transitions: Some(transitions),
        ..Default::default()
    }
}

/// Transitions after `identity` takes over a lease last held by `from.holder`.
pub fn transitions_after_acquiring(from: &Record, identity: &str) -> i32 {
    if from.holder == identity || from.holder.is_empty() && from.transitions == 0 {
        from.transitions
    } else {
        from.transitions.saturating_add(1)
    }
}

pub async fn read(
    api: &Api<Lease>,
    name: &str,
    default_duration: Duration,
) -> Result<Option<Record>, kube::Error> {
    Ok(api
        .get_opt(name)
        .await?
        .map(|l| record(&l, default_duration)))
}

/// Creates the lease with `spec`; fails with 409 if it exists.
pub async fn create(
    api: &Api<Lease>,
    name: &str,
    spec: LeaseSpec,
    default_duration: Duration,
) -> Result<Record, kube::Error> {
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        spec: Some(spec),
    };
    let created = api.create(&post_params(), &lease).await?;
    Ok(record(&created, default_duration))
}

/// Replaces the lease with `spec` if it is still at `from`'s resourceVersion; fails with 409 otherwise.
pub async fn replace(
    api: &Api<Lease>,
    name: &str,
    from: &Record,
    spec: LeaseSpec,
    default_duration: Duration,
) -> Result<Record, kube::Error> {
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            resource_version: Some(from.resource_version.clone()),
            ..Default::default()
        },
        spec: Some(spec),
    };
    let replaced = api.replace(name, &post_params(), &lease).await?;
    Ok(record(&replaced, default_duration))
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    }
}

/// Whether `error` says someone else wrote first (409 Conflict, or 409 AlreadyExists on create).
pub fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, duration: Option<i32>) -> Lease {
        Lease {
            metadata: ObjectMeta {
                resource_version: Some("42".into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_string),
                lease_duration_seconds: duration,
                lease_transitions: Some(2),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_record_takes_the_holders_duration_or_ours() {
        let r = record(&lease(Some("a"), Some(30)), Duration::from_secs(15));
        assert_eq!(
            r,
            Record {
                holder: "a".into(),
                duration: Duration::from_secs(30),
                resource_version: "42".into(),
                transitions: 2
            }
        );
        let r = record(&lease(None, None), Duration::from_secs(15));
        assert_eq!(r.holder, "");
        assert_eq!(r.duration, Duration::from_secs(15));
    }

    #[test]
    fn taking_over_from_someone_else_counts_a_transition() {
        let from = |holder: &str, transitions| Record {
            holder: holder.into(),
            duration: Duration::from_secs(15),
            resource_version: "1".into(),
            transitions,
        };
        assert_eq!(transitions_after_acquiring(&from("other", 2), "me"), 3);
        assert_eq!(transitions_after_acquiring(&from("me", 2), "me"), 2);
        // Released by someone: still a change of hands.
        assert_eq!(transitions_after_acquiring(&from("", 2), "me"), 3);
        // Never held before.
        assert_eq!(transitions_after_acquiring(&from("", 0), "me"), 0);
    }

    #[test]
    fn a_released_lease_has_no_holder() {
        let now = MicroTime(Default::default());
        let spec = released(now, 4);
        assert_eq!(spec.holder_identity, None);
        assert_eq!(spec.lease_transitions, Some(4));
    }
}
