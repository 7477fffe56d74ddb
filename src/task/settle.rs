//! When a decided task status is written: pure.
//!
//! A pod usually goes from created to RUNNING within a second or two (scheduled, images present,
//! containers started), and each step is a pod event. Writing PENDING, then ACTIVATING, then RUNNING
//! would be three status writes for what the user sees as one start. So a young pod's brief states
//! wait [`SETTLE`] (from the pod's creation, or from its placement by the scheduler: a pod that
//! waited in the scheduler's queue is ACTIVATING only for a moment too) for the next step; the pass
//! that settles them writes whatever the pod shows then. Whatever needs saying is written at once: RUNNING, a stop, the
//! scheduler's verdict that the pod cannot be placed, a reason for waiting. A pod slower than
//! [`SETTLE`] (an image pull, no room) shows PENDING or ACTIVATING, as before, after [`SETTLE`].

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use crate::api::task::{LastStatus, TaskStatus};
use crate::conditions;

use super::lifecycle::UNSCHEDULABLE;

/// How long a new pod's brief states (PROVISIONING with the pod created, PENDING, ACTIVATING) wait
/// for the pod's next step before they are written.
pub const SETTLE: Duration = Duration::from_secs(2);

/// What to do with a decided status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// It is what is stored: nothing to write.
    Unchanged,
    /// Write it now.
    Now,
    /// Not yet: look again after this long (the pod's next event usually comes first).
    After(Duration),
}

/// How long `pod` has been at its current step: since it was `created` (that long ago), or since
/// the scheduler placed it, whichever is later.
pub fn at_step(pod: &Pod, created: Duration, now: Timestamp) -> Duration {
    since_scheduled(pod, now).map_or(created, |scheduled| scheduled.min(created))
}

/// How long ago the scheduler placed `pod` (its `PodScheduled` condition turned True), if it has.
fn since_scheduled(pod: &Pod, now: Timestamp) -> Option<Duration> {
    let scheduled = pod
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "True")?
        .last_transition_time
        .as_ref()?;
    Duration::try_from(now.duration_since(scheduled.0)).ok()
}

/// Whether to write `next` over `stored`, for a task whose pod has been at its current step for
/// `pod_age` (None: no pod).
pub fn decide(stored: Option<&TaskStatus>, next: &TaskStatus, pod_age: Option<Duration>) -> Write {
    if stored == Some(next) {
        return Write::Unchanged;
    }
    match pod_age {
        Some(age) if age < SETTLE && brief(next) => Write::After(SETTLE - age),
        _ => Write::Now,
    }
}

/// A state a starting task normally passes through within moments, with nothing to tell the user.
fn brief(status: &TaskStatus) -> bool {
    let starting = status.last_status.is_some_and(LastStatus::is_starting);
    let ready = conditions::get(&status.conditions, "Ready");
    starting && status.stop_code.is_none() && ready.is_none_or(|c| c.reason != UNSCHEDULABLE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task::{StopCode, TaskStatus};
    use LastStatus::{Activating, Pending, Provisioning, Running, Stopped};

    fn status(last: LastStatus, ready_reason: &str) -> TaskStatus {
        let mut s = TaskStatus {
            last_status: Some(last),
            ..Default::default()
        };
        crate::conditions::set(&mut s.conditions, "Ready", false, ready_reason, "", Some(1));
        s
    }

    const YOUNG: Option<Duration> = Some(Duration::from_millis(300));
    const OLD: Option<Duration> = Some(Duration::from_secs(3));

    #[test]
    fn a_young_pods_brief_states_wait_for_its_next_step() {
        for last in [Provisioning, Pending, Activating] {
            let next = status(last, "Pending");
            assert_eq!(
                decide(None, &next, YOUNG),
                Write::After(SETTLE - Duration::from_millis(300)),
                "{last}"
            );
        }
    }

    #[test]
    fn running_and_stops_are_written_at_once() {
        assert_eq!(decide(None, &status(Running, "Running"), YOUNG), Write::Now);
        assert_eq!(
            decide(None, &status(Stopped, "TaskFailedToStart"), YOUNG),
            Write::Now
        );
        let mut deactivating = status(Pending, "Pending");
        deactivating.stop_code = Some(StopCode::UserInitiated);
        assert_eq!(decide(None, &deactivating, YOUNG), Write::Now);
    }

    #[test]
    fn the_schedulers_verdict_is_not_held_back() {
        assert_eq!(
            decide(None, &status(Pending, UNSCHEDULABLE), YOUNG),
            Write::Now
        );
    }

    #[test]
    fn a_slow_pod_shows_its_state_once_settled() {
        assert_eq!(decide(None, &status(Pending, "Pending"), OLD), Write::Now);
        assert_eq!(
            decide(None, &status(Activating, "Activating"), OLD),
            Write::Now
        );
        // No pod (waiting for a task definition, a failed create): said at once.
        assert_eq!(
            decide(None, &status(Provisioning, "TaskDefinitionNotFound"), None),
            Write::Now
        );
    }

    #[test]
    fn what_is_stored_is_never_written_again() {
        let s = status(Pending, "Pending");
        assert_eq!(decide(Some(&s), &s, OLD), Write::Unchanged);
        assert_eq!(decide(Some(&s), &s, YOUNG), Write::Unchanged);
    }

    #[test]
    fn a_pods_step_starts_again_when_the_scheduler_places_it() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "t", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:10Z"}]}
        }))
        .unwrap();
        let now: Timestamp = "2026-01-01T00:00:11Z".parse().unwrap();
        let created = Duration::from_secs(11);
        assert_eq!(at_step(&pod, created, now), Duration::from_secs(1));
        // Placed a second ago, after ten in the queue: its ACTIVATING is still brief.
        assert!(matches!(
            decide(
                None,
                &status(LastStatus::Activating, "Activating"),
                Some(at_step(&pod, created, now))
            ),
            Write::After(_)
        ));
        let unplaced: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "t"},
            "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}
        }))
        .unwrap();
        assert_eq!(at_step(&unplaced, created, now), created);
    }
}
