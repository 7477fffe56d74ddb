//! The deployment circuit breaker: counting failed tasks exactly once, tripping, rolling back.
//!
//! Failures are counted in `stoppedAt` order against a watermark kept in the deployment's status
//! (`lastFailureAt` plus the names counted at that second), so a failure seen again in a later pass
//! or after an operator restart is not counted twice. With `resetOnHealthyTask` (the default), a task
//! becoming healthy after the watermark resets `failedTasks`: only failures at or after that instant
//! stay consecutive; without it, failures add up over the whole deployment.

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::service::{Deployment, RolloutState};

use super::deployments::{deployment_number, is_rollout};
use super::tasks::{Failure, TaskView};

/// At most this many names are kept at the watermark (the schema's bound).
const MAX_WATERMARK_TASKS: usize = 200;

/// Updates `failedTasks` and the watermark of `deployment` from its tasks (a healthy task resets the
/// count when `reset_on_healthy`). Returns the newly counted failures to start, oldest first.
pub(crate) fn count_failures<'t>(
    deployment: &mut Deployment,
    tasks: &'t [TaskView],
    reset_on_healthy: bool,
) -> Vec<&'t TaskView> {
    let watermark = deployment.last_failure_at.as_ref().map(|t| t.0);
    let known: BTreeSet<&str> = deployment
        .last_failure_tasks
        .iter()
        .map(String::as_str)
        .collect();
    let mine = || tasks.iter().filter(|t| t.deployment == deployment.id);
    let mut new: Vec<(Timestamp, &TaskView, Failure)> = mine()
        .filter_map(|t| Some((t.stop_time(), t, t.failure()?)))
        .filter(|(at, t, _)| match watermark {
            None => true,
            Some(w) => *at > w || (*at == w && !known.contains(t.name.as_str())),
        })
        .collect();
    new.sort_by(|a, b| (a.0, &a.1.name).cmp(&(b.0, &b.1.name)));
    let healthy_since = mine()
        .filter_map(TaskView::healthy_since)
        .max()
        .filter(|_| reset_on_healthy);

    let failed = match healthy_since {
        Some(h) if watermark.is_none_or(|w| h > w) => {
            count(new.iter().filter(|(at, _, _)| *at >= h))
        }
        _ => deployment.failed_tasks.saturating_add(count(new.iter())),
    };
    deployment.failed_tasks = failed;

    if let Some(&(newest, _, _)) = new.last() {
        let mut names: BTreeSet<String> = if watermark == Some(newest) {
            deployment.last_failure_tasks.iter().cloned().collect()
        } else {
            BTreeSet::new()
        };
        names.extend(
            new.iter()
                .filter(|(at, _, _)| *at == newest)
                .map(|(_, t, _)| t.name.clone()),
        );
        deployment.last_failure_at = Some(Time(newest));
        deployment.last_failure_tasks = names.into_iter().take(MAX_WATERMARK_TASKS).collect();
    }
    new.iter()
        .filter(|(_, _, f)| *f == Failure::FailedToStart)
        .map(|(_, t, _)| *t)
        .collect()
}

/// The deployment to roll back to: the newest COMPLETED one other than `failed`.
pub(crate) fn rollback_target<'a>(
    deployments: &'a [Deployment],
    failed: &str,
) -> Option<&'a Deployment> {
    deployments
        .iter()
        .filter(|d| d.id != failed && is_rollout(d, RolloutState::Completed))
        .max_by_key(|d| deployment_number(&d.id))
}

fn count<T>(items: impl Iterator<Item = T>) -> i32 {
    i32::try_from(items.count()).unwrap_or(i32::MAX)
}
