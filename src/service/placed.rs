//! Whether a service's tasks could be placed: the `TasksPlaced` condition and ECS's "was unable to
//! place a task" event. Pure.
//!
//! ECS reports "(service X) was unable to place a task because no container instance met all of its
//! requirements. Reason: …" when no instance can take a task. Here the Kubernetes scheduler decides:
//! a task whose pod it cannot place stays PENDING with the scheduler's message (the Task's `Ready`
//! condition, reason `Unschedulable`). The service says so once per episode: the event when the
//! condition turns False, nothing more while it stays False (the message follows the scheduler's), and
//! the condition turns True once no task is left unplaceable and every live task is placed (or there
//! is none). A task the scheduler has not judged yet keeps the condition as it was, so a replacement
//! being created does not end an episode and start another.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::api::Task;
use crate::api::task::{DesiredStatus, LastStatus};

/// The condition type.
pub const CONDITION: &str = "TasksPlaced";
/// Reason while a task cannot be placed (and of the Kubernetes Event).
pub const NO_CONTAINER_INSTANCE: &str = "NoContainerInstance";
/// Reason once every task is placed.
pub const PLACED: &str = "TasksPlaced";

/// Where one live task stands with the scheduler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// On a node (or past that).
    Placed,
    /// Not placed and not judged yet (no pod yet, or the scheduler has not answered).
    Waiting,
    /// The scheduler finds no node for it: its message.
    Unplaceable(String),
}

/// A task's placement; `None` for a task stopping or stopped (it needs no node).
pub fn of_task(task: &Task) -> Option<Placement> {
    if task.spec.desired_status == DesiredStatus::Stopped {
        return None;
    }
    let status = task.status.as_ref();
    match status.and_then(|s| s.last_status) {
        None | Some(LastStatus::Provisioning) => Some(Placement::Waiting),
        Some(LastStatus::Pending) => Some(
            status
                .and_then(|s| crate::conditions::get(&s.conditions, "Ready"))
                .filter(|c| c.reason == crate::task::lifecycle::UNSCHEDULABLE)
                .map_or(Placement::Waiting, |c| {
                    Placement::Unplaceable(c.message.clone())
                }),
        ),
        Some(LastStatus::Activating | LastStatus::Running) => Some(Placement::Placed),
        Some(_) => None,
    }
}

/// What to report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every live task is placed.
    Placed,
    /// A task cannot be placed, for `reason` (the scheduler's message). `new`: the episode starts now
    /// (publish the event).
    Unplaceable { reason: String, new: bool },
    /// Not known yet: keep the condition as it is.
    Unchanged,
}

/// The verdict for the service's live tasks, given the condition as last written.
pub fn decide(tasks: &[Placement], previous: Option<&Condition>) -> Verdict {
    let first_unplaceable = tasks.iter().find_map(|t| match t {
        Placement::Unplaceable(why) => Some(why.clone()),
        _ => None,
    });
    if let Some(reason) = first_unplaceable {
        let new = previous.is_none_or(|c| c.status != "False");
        return Verdict::Unplaceable { reason, new };
    }
    if tasks.iter().all(|t| *t == Placement::Placed) {
        Verdict::Placed
    } else {
        Verdict::Unchanged
    }
}

/// Writes the verdict into `conditions` (an unchanged one takes `generation` only).
pub fn set_condition(conditions: &mut Vec<Condition>, verdict: &Verdict, generation: Option<i64>) {
    let (placed, reason, message) = match verdict {
        Verdict::Placed => (true, PLACED, "every task is placed on a node".to_owned()),
        Verdict::Unplaceable { reason, .. } => (false, NO_CONTAINER_INSTANCE, reason.clone()),
        Verdict::Unchanged => {
            if let Some(c) = conditions.iter_mut().find(|c| c.type_ == CONDITION) {
                c.observed_generation = generation;
            }
            return;
        }
    };
    crate::conditions::set(conditions, CONDITION, placed, reason, message, generation);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use Placement::{Placed, Unplaceable, Waiting};

    fn condition(status: &str) -> Condition {
        serde_json::from_value(json!({"type": CONDITION, "status": status, "reason": "r",
            "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}))
        .unwrap()
    }

    fn full() -> Placement {
        Unplaceable("0/6 nodes are available: 6 Insufficient memory.".into())
    }

    #[test]
    fn an_unplaceable_task_starts_an_episode_once() {
        let v = decide(&[Placed, full()], None);
        assert_eq!(
            v,
            Verdict::Unplaceable {
                reason: "0/6 nodes are available: 6 Insufficient memory.".into(),
                new: true
            }
        );
        assert!(matches!(
            decide(&[full()], Some(&condition("True"))),
            Verdict::Unplaceable { new: true, .. }
        ));
        // Still unplaceable: the same episode, no new event.
        assert!(matches!(
            decide(&[full(), Waiting], Some(&condition("False"))),
            Verdict::Unplaceable { new: false, .. }
        ));
    }

    #[test]
    fn the_episode_ends_once_every_task_is_placed_or_none_is_left() {
        let was = condition("False");
        assert_eq!(decide(&[Placed, Placed], Some(&was)), Verdict::Placed);
        assert_eq!(decide(&[], Some(&was)), Verdict::Placed);
        // A replacement not judged yet neither ends nor starts an episode.
        assert_eq!(decide(&[Placed, Waiting], Some(&was)), Verdict::Unchanged);
        assert_eq!(decide(&[Waiting], None), Verdict::Unchanged);
    }

    #[test]
    fn the_condition_changes_only_with_the_verdict() {
        let mut c = Vec::new();
        set_condition(&mut c, &Verdict::Unchanged, Some(1));
        assert!(c.is_empty(), "nothing known, nothing said");
        let unplaceable = Verdict::Unplaceable {
            reason: "0/6 nodes".into(),
            new: true,
        };
        set_condition(&mut c, &unplaceable, Some(1));
        assert_eq!(
            (
                c[0].status.as_str(),
                c[0].reason.as_str(),
                c[0].message.as_str()
            ),
            ("False", NO_CONTAINER_INSTANCE, "0/6 nodes")
        );
        let before = c.clone();
        set_condition(&mut c, &Verdict::Unchanged, Some(1));
        assert_eq!(c, before, "a pass that learns nothing writes nothing");
        set_condition(&mut c, &Verdict::Unchanged, Some(2));
        assert_eq!(
            (c[0].status.as_str(), c[0].observed_generation),
            ("False", Some(2))
        );
        set_condition(&mut c, &Verdict::Placed, Some(2));
        assert_eq!(
            (c[0].status.as_str(), c[0].reason.as_str()),
            ("True", PLACED)
        );
    }

    #[test]
    fn the_event_is_in_ecs_words_with_the_schedulers_reason() {
        let event = crate::service::plan::Event::NoContainerInstance {
            reason: "0/6 nodes are available: 6 Insufficient memory.".into(),
        };
        assert_eq!(
            event.message("web", &[]),
            "(service web) was unable to place a task because no container instance met all of its requirements. Reason: 0/6 nodes are available: 6 Insufficient memory."
        );
        assert_eq!(event.reason(), NO_CONTAINER_INSTANCE);
        assert!(event.is_warning());
    }

    fn task(desired: &str, last: Option<&str>, ready_reason: &str) -> Task {
        serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task", "metadata": {"name": "t"},
            "spec": {"taskDefinition": "web:1", "desiredStatus": desired},
            "status": {"lastStatus": last, "conditions": [{"type": "Ready", "status": "False",
                "reason": ready_reason, "message": "0/6 nodes", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    #[test]
    fn tasks_are_read_from_their_status() {
        assert_eq!(
            of_task(&task("RUNNING", Some("PENDING"), "Unschedulable")),
            Some(Unplaceable("0/6 nodes".into()))
        );
        assert_eq!(
            of_task(&task("RUNNING", Some("PENDING"), "Pending")),
            Some(Waiting)
        );
        assert_eq!(
            of_task(&task("RUNNING", None, "Provisioning")),
            Some(Waiting)
        );
        assert_eq!(
            of_task(&task("RUNNING", Some("ACTIVATING"), "Activating")),
            Some(Placed)
        );
        assert_eq!(
            of_task(&task("STOPPED", Some("PENDING"), "Unschedulable")),
            None
        );
        assert_eq!(of_task(&task("RUNNING", Some("STOPPED"), "Stopped")), None);
    }
}
