//! ECS's rules for when a service task counts as healthy, for the caller to resolve [`Health`].

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::tasks::Health;
use crate::api::task::HealthStatus;

/// Without a container health check a task counts as healthy once it has been RUNNING this long.
pub const RUNNING_WITHOUT_HEALTH_CHECK: Duration = Duration::from_secs(40);

/// What [`resolve_health`] looks at.
#[derive(Clone, Debug, Default)]
pub struct HealthInputs {
    /// `startedAt` while the task is RUNNING (None otherwise).
    pub running_since: Option<Timestamp>,
    /// An essential container has a health check.
    pub has_health_check: bool,
    /// The task's `healthStatus`: HEALTHY, UNHEALTHY or UNKNOWN.
    pub health_status: Option<HealthStatus>,
    /// When the task was first seen HEALTHY (e.g. its `Ready` condition's lastTransitionTime).
    pub healthy_since: Option<Timestamp>,
    /// The service's `healthCheckGracePeriodSeconds`.
    pub grace_period: Duration,
    /// How long a task without a health check must be RUNNING to count as healthy; None: ECS's 40 s
    /// ([`RUNNING_WITHOUT_HEALTH_CHECK`]).
    pub healthy_after_running: Option<Duration>,
}

/// The task's health, and when to look again if it changes with time alone.
///
/// Healthy: HEALTHY with a health check, or RUNNING for 40 s without one. Unhealthy: UNHEALTHY after
/// the grace period (failures inside it are ignored). Otherwise unknown.
pub fn resolve_health(inputs: &HealthInputs, now: Timestamp) -> (Health, Option<Duration>) {
    let Some(running_since) = inputs.running_since else {
        return (Health::Unknown, None);
    };
    if !inputs.has_health_check {
        let after = inputs
            .healthy_after_running
            .unwrap_or(RUNNING_WITHOUT_HEALTH_CHECK);
        let healthy_at = add(running_since, after);
        return if now >= healthy_at {
            (Health::Healthy { since: healthy_at }, None)
        } else {
            (Health::Unknown, Some(until(now, healthy_at)))
        };
    }
    match inputs.health_status {
        Some(HealthStatus::Healthy) => {
            let since = inputs
                .healthy_since
                .map_or(running_since, |t| t.max(running_since));
            (Health::Healthy { since }, None)
        }
        Some(HealthStatus::Unhealthy) => {
            let grace_end = add(running_since, inputs.grace_period);
            if now >= grace_end {
                (Health::Unhealthy, None)
            } else {
                (Health::Unknown, Some(until(now, grace_end)))
            }
        }
        _ => (Health::Unknown, None),
    }
}

/// `t + d`, saturating (a huge grace period must not panic).
pub(crate) fn add(t: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| t.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// Whole seconds from `now` to `then`, at least one (timestamps are stored in whole seconds).
pub(crate) fn until(now: Timestamp, then: Timestamp) -> Duration {
    let secs = then.duration_since(now).as_secs().max(1);
    Duration::from_secs(u64::try_from(secs).unwrap_or(1))
}
