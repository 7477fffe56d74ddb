//! The `deployments[]` list: ids, when a new deployment starts, counts, INACTIVE history.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::service::{Deployment, DeploymentStatus, RolloutState};

use super::tasks::{TaskState, TaskView};

/// INACTIVE deployments kept as history (the newest COMPLETED one is kept as well, for rollback).
pub const INACTIVE_HISTORY: usize = 5;

const ID_PREFIX: &str = "ecs-svc/";

/// `ecs-svc/N`.
pub fn deployment_id(n: u64) -> String {
    format!("{ID_PREFIX}{n}")
}

/// N of `ecs-svc/N`.
pub fn deployment_number(id: &str) -> Option<u64> {
    id.strip_prefix(ID_PREFIX)?.parse().ok()
}

pub(crate) fn is_rollout(d: &Deployment, state: RolloutState) -> bool {
    d.rollout_state == Some(state)
}

/// The next N: above every deployment in status and every task's `startedBy`, so that an id is never
/// reused, even if the status was lost.
pub(crate) fn next_number(deployments: &[Deployment], tasks: &[TaskView]) -> u64 {
    deployments
        .iter()
        .map(|d| d.id.as_str())
        .chain(tasks.iter().map(|t| t.deployment.as_str()))
        .filter_map(deployment_number)
        .max()
        .unwrap_or(0)
        + 1
}

pub(crate) fn new_deployment(
    n: u64,
    task_definition: &str,
    force_new_deployment: Option<&str>,
    now: Timestamp,
) -> Deployment {
    let id = deployment_id(n);
    Deployment {
        rollout_state_reason: Some(format!("ECS deployment {id} in progress.")),
        id,
        status: DeploymentStatus::Primary,
        task_definition: task_definition.into(),
        rollout_state: Some(RolloutState::InProgress),
        created_at: Some(Time(now)),
        updated_at: Some(Time(now)),
        force_new_deployment: force_new_deployment.map(str::to_owned),
        ..Deployment::default()
    }
}

/// Exactly one PRIMARY, first: the newest of those marked PRIMARY; any other is demoted to ACTIVE.
pub(crate) fn normalize(mut deployments: Vec<Deployment>) -> Vec<Deployment> {
    let primary = deployments
        .iter()
        .enumerate()
        .filter(|(_, d)| d.status == DeploymentStatus::Primary)
        .max_by_key(|(_, d)| deployment_number(&d.id))
        .map(|(i, _)| i);
    for (i, d) in deployments.iter_mut().enumerate() {
        if d.status == DeploymentStatus::Primary && Some(i) != primary {
            d.status = DeploymentStatus::Active;
        }
    }
    if let Some(i) = primary {
        let p = deployments.remove(i);
        deployments.insert(0, p);
    }
    deployments
}

/// Whether `deployment` was started by a rollback (circuit breaker or stop request) and is still in
/// progress (its reason names the deployment it rolls back to until it completes or fails).
pub(crate) fn is_rollback(deployment: &Deployment) -> bool {
    is_rollout(deployment, RolloutState::InProgress)
        && deployment.rollout_state_reason.as_deref().is_some_and(|r| {
            r.starts_with(super::events::ROLLBACK_REASON_PREFIX)
                || r.starts_with(super::events::REQUESTED_ROLLBACK_REASON_PREFIX)
        })
}

/// Rule 1: a new PRIMARY when the service asks for another task definition than the PRIMARY runs, or
/// for a new deployment (a new `forceNewDeployment` value). A task definition the circuit breaker
/// rolled back from is not deployed again by itself. Returns whether a deployment started.
pub(crate) fn follow_target(
    deployments: &mut Vec<Deployment>,
    target: &str,
    force: Option<&str>,
    next: u64,
    now: Timestamp,
) -> bool {
    if let Some(primary) = deployments
        .first_mut()
        .filter(|d| d.status == DeploymentStatus::Primary)
    {
        let forced = primary.force_new_deployment.as_deref() != force;
        if !forced {
            if primary.task_definition == target {
                // The service asks for what the rollback runs: that answers it.
                primary.rolled_back_from = None;
                return false;
            }
            if primary.rolled_back_from.as_deref() == Some(target) {
                return false;
            }
        }
        primary.status = DeploymentStatus::Active;
    }
    deployments.insert(0, new_deployment(next, target, force, now));
    true
}

/// Counts, statuses, history and `updatedAt`, for the status to write. PRIMARY first, then newest
/// first.
pub(crate) fn finish(
    mut deployments: Vec<Deployment>,
    original: &[Deployment],
    tasks: &[TaskView],
    desired: i32,
    stopped_now: &BTreeSet<&str>,
    old_targets: Option<&BTreeMap<String, usize>>,
    now: Timestamp,
) -> Vec<Deployment> {
    for d in &mut deployments {
        let mine = || tasks.iter().filter(|t| t.deployment == d.id);
        d.running_count = count(mine().filter(|t| t.state == TaskState::Running));
        d.pending_count = count(mine().filter(|t| t.state == TaskState::Pending));
        if d.status == DeploymentStatus::Primary {
            d.desired_count = desired;
        } else {
            d.desired_count = match old_targets {
                Some(targets) => targets
                    .get(&d.id)
                    .map_or(0, |t| i32::try_from(*t).unwrap_or(i32::MAX)),
                None => {
                    count(mine().filter(|t| t.is_live() && !stopped_now.contains(t.name.as_str())))
                }
            };
            d.status = if mine().any(TaskView::is_alive) || d.desired_count > 0 {
                DeploymentStatus::Active
            } else {
                DeploymentStatus::Inactive
            };
        }
    }
    let newest_completed = deployments
        .iter()
        .filter(|d| d.status != DeploymentStatus::Primary && is_rollout(d, RolloutState::Completed))
        .max_by_key(|d| deployment_number(&d.id))
        .map(|d| d.id.clone());
    let mut inactive: Vec<&Deployment> = deployments
        .iter()
        .filter(|d| d.status == DeploymentStatus::Inactive)
        .collect();
    inactive.sort_by_key(|d| std::cmp::Reverse(deployment_number(&d.id)));
    let dropped: BTreeSet<String> = inactive
        .iter()
        .skip(INACTIVE_HISTORY)
        .filter(|d| Some(&d.id) != newest_completed.as_ref())
        .map(|d| d.id.clone())
        .collect();
    deployments.retain(|d| !dropped.contains(&d.id));
    deployments.sort_by_key(|d| {
        (
            d.status != DeploymentStatus::Primary,
            std::cmp::Reverse(deployment_number(&d.id)),
        )
    });
    for d in &mut deployments {
        let changed = match original.iter().find(|o| o.id == d.id) {
            Some(o) => {
                let mut same = o.clone();
                same.updated_at.clone_from(&d.updated_at);
                same != *d
            }
            None => true,
        };
        if changed {
            d.updated_at = Some(Time(now));
        }
    }
    deployments
}

fn count<'a>(tasks: impl Iterator<Item = &'a TaskView>) -> i32 {
    i32::try_from(tasks.count()).unwrap_or(i32::MAX)
}
