//! The circuit breaker: threshold, counting each failure once, reset, trip, rollback.

use super::support::*;
use crate::api::service::{DeploymentCircuitBreaker, DeploymentStatus, RolloutState};
use crate::api::task::StopCode;

use crate::service::plan::{Event, Health, failure_threshold, plan};

fn breaker(rollback: bool) -> DeploymentCircuitBreaker {
    DeploymentCircuitBreaker {
        enable: true,
        rollback,
        ..Default::default()
    }
}

/// Desired 10 (threshold 5), deploying web:2 over a completed web:1.
fn deploying() -> crate::service::plan::Input {
    let mut input = input(10, 100, 200);
    input.task_definition = TD2.into();
    input.circuit_breaker = breaker(true);
    input.deployments = vec![in_progress(2, TD2), active(1, TD1)];
    input.tasks = (0..10).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    input
}

#[test]
fn threshold_is_half_the_desired_count_within_3_and_200() {
    let cases = [
        (0, 3),
        (1, 3),
        (6, 3),
        (7, 4),
        (10, 5),
        (399, 200),
        (5000, 200),
    ];
    for (desired, threshold) in cases {
        assert_eq!(
            failure_threshold(desired, None),
            threshold,
            "desired {desired}"
        );
    }
}

#[test]
fn each_failure_counts_once_across_passes_and_restarts() {
    let mut input = deploying();
    input.tasks.push(failed_to_start("n0", 2, 100));
    input.tasks.push(failed_to_start("n1", 2, 101));
    let first = plan(&input);
    assert_eq!(first.primary().failed_tasks, 2);
    assert_eq!(
        first.primary().last_failure_at.as_ref().map(|t| t.0),
        Some(at(101))
    );
    assert_eq!(first.primary().last_failure_tasks, vec!["n1".to_owned()]);

    // The same world planned again from the written status (as after a restart): still 2.
    let again = plan(&replan(&input, &first));
    assert_eq!(again.primary().failed_tasks, 2);
    assert_eq!(again.deployments, first.deployments);

    // A third failure adds one.
    let mut next = replan(&input, &first);
    next.tasks.push(failed_to_start("n2", 2, 150));
    assert_eq!(plan(&next).primary().failed_tasks, 3);
}

#[test]
fn failures_in_the_same_second_seen_in_different_passes_count_once_each() {
    let mut input = deploying();
    input.tasks.push(failed_to_start("n0", 2, 100));
    let first = plan(&input);
    assert_eq!(first.primary().failed_tasks, 1);
    let mut next = replan(&input, &first);
    next.tasks.push(failed_to_start("n1", 2, 100));
    let second = plan(&next);
    assert_eq!(second.primary().failed_tasks, 2);
    assert_eq!(
        second.primary().last_failure_tasks,
        vec!["n0".to_owned(), "n1".to_owned()]
    );
    assert_eq!(plan(&replan(&next, &second)).primary().failed_tasks, 2);
}

#[test]
fn a_task_becoming_healthy_resets_the_count() {
    let mut input = deploying();
    input.tasks.push(failed_to_start("n0", 2, 100));
    input.tasks.push(failed_to_start("n1", 2, 101));
    let first = plan(&input);
    assert_eq!(first.primary().failed_tasks, 2);

    let mut next = replan(&input, &first);
    let mut good = healthy("n2", 2, "b");
    good.health = Health::Healthy { since: at(200) };
    next.tasks.push(good);
    let second = plan(&next);
    assert_eq!(second.primary().failed_tasks, 0);

    // Failures after that instant count again from zero; the reset is not applied twice.
    let mut next = replan(&next, &second);
    next.tasks.push(failed_health("n3", 2, 300));
    let third = plan(&next);
    assert_eq!(third.primary().failed_tasks, 1);
    assert_eq!(plan(&replan(&next, &third)).primary().failed_tasks, 1);
}

#[test]
fn scale_in_and_user_stops_are_not_failures() {
    let mut input = deploying();
    input.tasks.push(scaled_in("n0", 2, 100));
    let mut user = failed_to_start("n1", 2, 101);
    user.stop_code = Some(StopCode::UserInitiated);
    input.tasks.push(user);
    assert_eq!(plan(&input).primary().failed_tasks, 0);
}

#[test]
fn health_check_failures_count_as_stage_two() {
    let mut input = deploying();
    for i in 0..4 {
        input
            .tasks
            .push(failed_health(&format!("n{i}"), 2, 100 + i));
    }
    let plan = plan(&input);
    assert_eq!(plan.primary().failed_tasks, 4);
    assert_eq!(
        plan.primary().rollout_state,
        Some(RolloutState::InProgress),
        "threshold is 5"
    );
}

#[test]
fn at_the_threshold_the_deployment_fails_and_rolls_back() {
    let mut input = deploying();
    for i in 0..5 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 2, 100 + i));
    }
    let plan = plan_checked(&input);
    let ids: Vec<(&str, DeploymentStatus, Option<RolloutState>)> = plan
        .deployments
        .iter()
        .map(|d| (d.id.as_str(), d.status, d.rollout_state))
        .collect();
    assert_eq!(
        ids,
        vec![
            (
                "ecs-svc/3",
                DeploymentStatus::Primary,
                Some(RolloutState::InProgress)
            ),
            (
                "ecs-svc/2",
                DeploymentStatus::Inactive,
                Some(RolloutState::Failed)
            ),
            (
                "ecs-svc/1",
                DeploymentStatus::Active,
                Some(RolloutState::Completed)
            ),
        ]
    );
    let rollback = plan.primary();
    assert_eq!(rollback.task_definition, TD1);
    assert_eq!(
        rollback.rollout_state_reason.as_deref(),
        Some("ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1.")
    );
    assert_eq!(rollback.rolled_back_from.as_deref(), Some(TD2));
    assert_eq!(
        plan.deployments[1].rollout_state_reason.as_deref(),
        Some("ECS deployment circuit breaker: tasks failed to start.")
    );
    assert_eq!(plan.deployments[1].failed_tasks, 5);
    // Why the last task failed comes first, then what the breaker did.
    assert!(matches!(plan.events[0], Event::UnableToPlaceTask { .. }));
    assert_eq!(
        plan.events[1..3],
        [
            Event::DeploymentFailed {
                deployment: "ecs-svc/2".into()
            },
            Event::RollingBack {
                deployment: "ecs-svc/3".into(),
                to: "ecs-svc/1".into()
            }
        ]
    );
    assert!(
        plan.starts
            .iter()
            .all(|s| s.deployment == "ecs-svc/3" && s.task_definition == TD1)
    );
    assert!(
        plan.stops.is_empty(),
        "old tasks keep serving at 100% minimum"
    );
}

#[test]
fn below_the_threshold_nothing_trips() {
    let mut input = deploying();
    for i in 0..4 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 2, 100 + i));
    }
    assert_eq!(
        plan(&input).primary().rollout_state,
        Some(RolloutState::InProgress)
    );
}

#[test]
fn a_disabled_breaker_counts_but_never_trips() {
    let mut input = deploying();
    input.circuit_breaker = DeploymentCircuitBreaker::default();
    for i in 0..8 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 2, 100 + i));
    }
    let plan = plan(&input);
    assert_eq!(plan.primary().failed_tasks, 8);
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::InProgress));
}

#[test]
fn without_rollback_the_failed_deployment_launches_nothing_more() {
    let mut input = deploying();
    input.circuit_breaker = breaker(false);
    for i in 0..5 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 2, 100 + i));
    }
    input.tasks.push(pending("n9", 2));
    let plan = plan_checked(&input);
    assert_eq!(plan.primary().id, "ecs-svc/2");
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::Failed));
    assert!(plan.starts.is_empty());
    assert_eq!(
        stopped_names(&plan),
        vec!["n9"],
        "its failing task goes, the old ones stay"
    );
    assert_eq!(plan.retry_after, None);

    // Later passes stay put.
    let mut next = replan(&input, &plan);
    next.tasks.last_mut().unwrap().desired_stopped = true;
    next.now = at(100_000);
    let later = plan_checked(&next);
    assert!(later.starts.is_empty() && later.stops.is_empty());
    assert_eq!(later.deployments, plan.deployments);
}

#[test]
fn without_a_completed_deployment_there_is_nothing_to_roll_back_to() {
    let mut input = input(2, 100, 200);
    input.circuit_breaker = breaker(true);
    input.deployments = vec![in_progress(1, TD1)];
    for i in 0..3 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 1, 100 + i));
    }
    let plan = plan_checked(&input);
    assert_eq!(plan.deployments.len(), 1);
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::Failed));
    assert!(plan.starts.is_empty());
}

#[test]
fn a_rolled_back_deployment_never_resumes_by_itself() {
    let mut input = deploying();
    for i in 0..5 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 2, 100 + i));
    }
    let rolled = plan(&input);
    // The spec still asks for web:2: no new deployment, ever.
    let mut next = replan(&input, &rolled);
    next.now = at(100_000);
    let later = plan(&next);
    assert_eq!(later.primary().id, "ecs-svc/3");
    assert_eq!(later.primary().task_definition, TD1);

    // Asking for web:1 (what runs) settles it; asking for web:2 again then deploys it.
    let mut back = replan(&next, &later);
    back.task_definition = TD1.into();
    let settled = plan(&back);
    assert_eq!(settled.primary().id, "ecs-svc/3");
    assert_eq!(settled.primary().rolled_back_from, None);
    let mut retry = replan(&back, &settled);
    retry.task_definition = TD2.into();
    let retried = plan(&retry);
    assert_eq!(retried.primary().id, "ecs-svc/4");
    assert_eq!(retried.primary().task_definition, TD2);
}

#[test]
fn a_new_force_value_retries_the_rolled_back_definition() {
    let mut input = deploying();
    for i in 0..5 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 2, 100 + i));
    }
    let rolled = plan(&input);
    let mut retry = replan(&input, &rolled);
    retry.force_new_deployment = Some("1".into());
    let retried = plan(&retry);
    assert_eq!(retried.primary().id, "ecs-svc/4");
    assert_eq!(retried.primary().task_definition, TD2);
}

#[test]
fn a_completed_deployment_keeps_counting_but_never_fails() {
    let mut input = input(2, 100, 200);
    input.circuit_breaker = breaker(true);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![healthy("t0", 1, "a")];
    for i in 0..4 {
        input
            .tasks
            .push(failed_health(&format!("f{i}"), 1, 100 + i));
    }
    let plan = plan(&input);
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::Completed));
    assert_eq!(plan.primary().failed_tasks, 4);
}

#[test]
fn rolling_back_to_the_same_definition_settles() {
    // A forced redeployment of web:1 fails: the rollback runs web:1 too, with nothing to avoid.
    let mut input = input(2, 100, 200);
    input.circuit_breaker = breaker(true);
    input.deployments = vec![in_progress(2, TD1), active(1, TD1)];
    for i in 0..3 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 2, 100 + i));
    }
    let rolled = plan(&input);
    assert_eq!(rolled.primary().id, "ecs-svc/3");
    assert_eq!(rolled.primary().rolled_back_from, None);
    assert_eq!(
        plan(&replan(&input, &rolled)).deployments,
        rolled.deployments
    );
}

#[test]
fn a_failed_rollback_stalls_instead_of_rolling_back_again() {
    let mut input = deploying();
    for i in 0..5 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 2, 100 + i));
    }
    let rolled = plan(&input);
    assert_eq!(rolled.primary().id, "ecs-svc/3");
    assert_eq!(rolled.primary().rolled_back_from.as_deref(), Some(TD2));

    // The rollback's own tasks fail too (the old ones are gone by now).
    let mut failing = replan(&input, &rolled);
    failing.tasks = (0..5)
        .map(|i| failed_to_start(&format!("r{i}"), 3, 200 + i))
        .collect();
    failing.now = at(300);
    let stalled = plan_checked(&failing);
    let ids: Vec<(&str, DeploymentStatus, Option<RolloutState>)> = stalled
        .deployments
        .iter()
        .map(|d| (d.id.as_str(), d.status, d.rollout_state))
        .collect();
    assert_eq!(
        ids[0],
        (
            "ecs-svc/3",
            DeploymentStatus::Primary,
            Some(RolloutState::Failed)
        ),
        "{ids:?}"
    );
    assert!(
        stalled.deployments.iter().all(|d| d.id != "ecs-svc/4"),
        "no second rollback: {ids:?}"
    );
    assert!(stalled.starts.is_empty());
    assert!(stalled.events.contains(&Event::DeploymentFailed {
        deployment: "ecs-svc/3".into()
    }));
    assert!(
        !stalled
            .events
            .iter()
            .any(|e| matches!(e, Event::RollingBack { .. }))
    );

    // Much later, the spec still asks for the broken web:2: it is not deployed by itself, and the
    // stalled service plans nothing new.
    let mut later = replan(&failing, &stalled);
    later.now = at(100_000);
    let still = plan_checked(&later);
    assert_eq!(still.primary().id, "ecs-svc/3");
    assert_eq!(still.primary().rollout_state, Some(RolloutState::Failed));
    assert_eq!(still.primary().rolled_back_from.as_deref(), Some(TD2));
    assert!(still.starts.is_empty());
    assert_eq!(
        plan_checked(&replan(&later, &still)).deployments,
        still.deployments
    );

    // A new definition is a new deployment, as ECS does after a stall.
    let mut fixed = replan(&later, &still);
    fixed.task_definition = "web:3".into();
    let deployed = plan_checked(&fixed);
    assert_eq!(deployed.primary().id, "ecs-svc/4");
    assert_eq!(deployed.primary().task_definition, "web:3");
    assert!(!deployed.starts.is_empty());
}

#[test]
fn a_failed_rollback_to_the_same_definition_stalls_too() {
    let mut input = input(2, 100, 200);
    input.circuit_breaker = breaker(true);
    input.deployments = vec![in_progress(2, TD1), active(1, TD1)];
    for i in 0..3 {
        input
            .tasks
            .push(failed_to_start(&format!("n{i}"), 2, 100 + i));
    }
    let rolled = plan(&input);
    assert_eq!(rolled.primary().id, "ecs-svc/3");
    let mut failing = replan(&input, &rolled);
    failing.tasks = (0..3)
        .map(|i| failed_to_start(&format!("r{i}"), 3, 200 + i))
        .collect();
    failing.now = at(300);
    let stalled = plan_checked(&failing);
    assert_eq!(stalled.primary().id, "ecs-svc/3");
    assert_eq!(stalled.primary().rollout_state, Some(RolloutState::Failed));
    let mut later = replan(&failing, &stalled);
    later.now = at(100_000);
    let still = plan_checked(&later);
    assert_eq!(still.primary().id, "ecs-svc/3");
    assert!(still.starts.is_empty());
}

#[test]
fn a_failed_deployment_keeps_its_running_tasks_whose_health_is_not_known_yet() {
    let mut input = input(3, 100, 200);
    input.circuit_breaker = breaker(false);
    input.deployments = vec![in_progress(1, TD1)];
    input.tasks = (0..3)
        .map(|i| failed_to_start(&format!("f{i}"), 1, 100 + i))
        .collect();
    let mut running = healthy("r0", 1, "a");
    running.health = Health::Unknown;
    input.tasks.push(running);
    let plan = plan_checked(&input);
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::Failed));
    assert!(plan.stops.is_empty(), "{:?}", plan.stops);
    assert!(plan.starts.is_empty());
}
