//! Old deployments during a rolling deployment (ECS, November 2025): their failed tasks are
//! replaced in their own revision, and a desiredCount change applies to both revisions.

use super::support::*;
use crate::api::service::{DeploymentStatus, RolloutState};
use crate::api::task::StopCode;

use crate::service::plan::{Input, Plan, TaskState, TaskView};

/// Desired 4 at 100/200, deploying web:2 over web:1 (which keeps `old_target`).
fn deploying(old_target: i32) -> Input {
    let mut input = input(4, 100, 200);
    input.task_definition = TD2.into();
    let mut primary = in_progress(2, TD2);
    primary.desired_count = 4;
    let mut old = active(1, TD1);
    old.desired_count = old_target;
    input.deployments = vec![primary, old];
    input
}

fn exited(name: &str, deployment: u64) -> TaskView {
    TaskView {
        state: TaskState::Stopped,
        stopped_at: Some(at(900)),
        stop_code: Some(StopCode::EssentialContainerExited),
        ..healthy(name, deployment, "a")
    }
}

fn starts_of<'p>(plan: &'p Plan, td: &str) -> Vec<&'p str> {
    plan.starts
        .iter()
        .filter(|s| s.task_definition == td)
        .map(|s| s.deployment.as_str())
        .collect()
}

#[test]
fn a_stopped_old_task_is_replaced_with_its_own_revision() {
    let mut input = deploying(4);
    input.tasks = (0..3).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    input.tasks.push(exited("o3", 1));
    input
        .tasks
        .extend((0..4).map(|i| pending(&format!("n{i}"), 2)));
    let plan = plan_checked(&input);
    // 8 allowed, 7 alive: the one free place goes to web:1, not to web:2.
    assert_eq!(starts_of(&plan, TD1), vec!["ecs-svc/1"]);
    assert!(starts_of(&plan, TD2).is_empty());
    assert!(plan.stops.is_empty());
    assert_eq!(plan.deployments[1].desired_count, 4);
    assert_eq!(plan.deployments[1].status, DeploymentStatus::Active);
    // Replanned from its own status, it stays put.
    assert_eq!(
        plan_checked(&replan(&input, &plan)).deployments,
        plan.deployments
    );
}

#[test]
fn an_unhealthy_old_task_is_replaced_with_its_own_revision() {
    let mut input = deploying(4);
    input.tasks = (0..3).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    input.tasks.push(unhealthy("o3", 1, "b"));
    input
        .tasks
        .extend((0..2).map(|i| pending(&format!("n{i}"), 2)));
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), vec!["o3"]);
    assert_eq!(plan.stops[0].reason, "Task failed container health checks");
    // 8 allowed, 6 alive: web:1's replacement first, then one of web:2.
    assert_eq!(plan.starts[0].deployment, "ecs-svc/1");
    assert_eq!(plan.starts[0].task_definition, TD1);
    assert_eq!(starts_of(&plan, TD2), vec!["ecs-svc/2"]);
}

#[test]
fn old_tasks_give_way_as_new_ones_become_healthy_and_are_then_not_replaced() {
    let mut input = deploying(4);
    input.tasks = (0..3).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    input.tasks.push(exited("o3", 1));
    input
        .tasks
        .extend((0..3).map(|i| healthy(&format!("n{i}"), 2, "b")));
    input.tasks.push(pending("n3", 2));
    let plan = plan_checked(&input);
    // Three new tasks are healthy: web:1 keeps one (minimumHealthyPercent 100 of 4).
    assert_eq!(plan.deployments[1].desired_count, 1);
    assert!(starts_of(&plan, TD1).is_empty());
    assert_eq!(plan.stops.len(), 2, "{:?}", plan.stops);
}

#[test]
fn a_scale_out_during_a_deployment_grows_both_revisions_in_proportion() {
    let mut input = deploying(2);
    input.tasks = (0..2).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    input
        .tasks
        .extend((0..2).map(|i| healthy(&format!("n{i}"), 2, "b")));
    input
        .tasks
        .extend((2..4).map(|i| pending(&format!("n{i}"), 2)));
    input.desired_count = 8;
    let plan = plan_checked(&input);
    // web:1 had 2 of 4: it gets 4 of 8; web:2 gets 8.
    assert_eq!(plan.deployments[1].desired_count, 4);
    assert_eq!(starts_of(&plan, TD1).len(), 2);
    assert_eq!(starts_of(&plan, TD2).len(), 4);
    assert!(plan.stops.is_empty());
}

#[test]
fn a_scale_in_during_a_deployment_shrinks_both_revisions() {
    let mut input = deploying(4);
    input.deployments[0].desired_count = 8;
    input.desired_count = 4;
    input.tasks = (0..4).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    input
        .tasks
        .extend((0..2).map(|i| healthy(&format!("n{i}"), 2, "b")));
    let plan = plan_checked(&input);
    assert_eq!(plan.deployments[1].desired_count, 2);
    assert_eq!(stopped_names(&plan), vec!["o2", "o3"]);
    assert!(starts_of(&plan, TD1).is_empty());
}

#[test]
fn a_failed_deployment_s_tasks_are_not_replaced() {
    let mut input = deploying(4);
    input.deployments[1].rollout_state = Some(RolloutState::Failed);
    input.tasks = (0..3).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    input.tasks.push(exited("o3", 1));
    let plan = plan_checked(&input);
    assert!(starts_of(&plan, TD1).is_empty());
    assert_eq!(plan.deployments[1].desired_count, 0);
    assert_eq!(
        plan.deployments[1].rollout_state,
        Some(RolloutState::Failed),
        "COMPLETED deployments only"
    );
}
