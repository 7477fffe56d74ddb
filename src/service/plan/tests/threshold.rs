//! The circuit breaker's thresholdConfiguration and resetOnHealthyTask.

use super::support::*;
use crate::api::service::{
    DeploymentCircuitBreaker, RolloutState, ThresholdConfiguration, ThresholdType,
};

use crate::service::plan::{Health, failure_threshold, plan};

fn config(type_: ThresholdType, value: i32) -> Option<ThresholdConfiguration> {
    Some(ThresholdConfiguration { type_, value })
}

#[test]
fn bounded_percent_is_value_percent_of_desired_within_3_and_200() {
    let t = |desired, value| {
        failure_threshold(
            desired,
            config(ThresholdType::BoundedPercent, value).as_ref(),
        )
    };
    assert_eq!(t(10, 50), 5);
    assert_eq!(t(10, 25), 3, "at least 3");
    assert_eq!(t(10, 100), 10);
    assert_eq!(t(7, 50), 4, "rounded up");
    assert_eq!(t(1000, 50), 200, "at most 200");
    assert_eq!(t(0, 100), 3);
    // Absent: BOUNDED_PERCENT 50, today's rule.
    assert_eq!(failure_threshold(10, None), 5);
    assert_eq!(failure_threshold(1000, None), 200);
}

#[test]
fn unbounded_percent_has_no_bounds_but_one() {
    let t = |desired, value| {
        failure_threshold(
            desired,
            config(ThresholdType::UnboundedPercent, value).as_ref(),
        )
    };
    assert_eq!(t(10, 10), 1, "below 3");
    assert_eq!(t(1000, 50), 500, "above 200");
    assert_eq!(t(3, 50), 2, "rounded up");
    assert_eq!(t(0, 50), 1, "at least 1");
    assert_eq!(t(5000, 100), 5000);
}

#[test]
fn count_is_the_value_itself() {
    let t =
        |desired, value| failure_threshold(desired, config(ThresholdType::Count, value).as_ref());
    assert_eq!(t(10, 1), 1);
    assert_eq!(t(1000, 1), 1);
    assert_eq!(t(2, 7), 7);
    assert_eq!(t(2, 0), 1, "never below 1");
}

/// Desired 10, deploying web:2 over a completed web:1, with this breaker.
fn deploying(breaker: DeploymentCircuitBreaker) -> crate::service::plan::Input {
    let mut input = input(10, 100, 200);
    input.task_definition = TD2.into();
    input.circuit_breaker = breaker;
    input.deployments = vec![in_progress(2, TD2), active(1, TD1)];
    input.tasks = (0..10).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    input
}

fn breaker(
    threshold: Option<ThresholdConfiguration>,
    reset: Option<bool>,
) -> DeploymentCircuitBreaker {
    DeploymentCircuitBreaker {
        enable: true,
        rollback: false,
        threshold_configuration: threshold,
        reset_on_healthy_task: reset,
    }
}

#[test]
fn a_count_of_one_fails_the_deployment_at_the_first_failed_task() {
    let mut input = deploying(breaker(config(ThresholdType::Count, 1), None));
    assert_eq!(
        plan(&input).primary().rollout_state,
        Some(RolloutState::InProgress)
    );
    input.tasks.push(failed_health("n0", 2, 100));
    let plan = plan(&input);
    assert_eq!(plan.primary().failed_tasks, 1);
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::Failed));
}

#[test]
fn an_unbounded_percent_trips_above_200() {
    let mut input = deploying(breaker(config(ThresholdType::UnboundedPercent, 50), None));
    input.desired_count = 500;
    input.tasks = (0..249)
        .map(|i| failed_to_start(&format!("n{i}"), 2, 100 + i))
        .collect();
    let below = plan(&input);
    assert_eq!(below.primary().failed_tasks, 249);
    assert_eq!(
        below.primary().rollout_state,
        Some(RolloutState::InProgress)
    );
    input.tasks.push(failed_to_start("n249", 2, 400));
    assert_eq!(
        plan(&input).primary().rollout_state,
        Some(RolloutState::Failed)
    );
}

/// Two failures, then a task of the deployment healthy since 200, then one more failure.
fn failures_around_a_healthy_task(reset: Option<bool>) -> Vec<i32> {
    let mut input = deploying(breaker(None, reset));
    input.tasks.push(failed_to_start("n0", 2, 100));
    input.tasks.push(failed_to_start("n1", 2, 101));
    let first = plan(&input);
    let mut next = replan(&input, &first);
    let mut good = healthy("n2", 2, "b");
    good.health = Health::Healthy { since: at(200) };
    next.tasks.push(good);
    let second = plan(&next);
    let mut last = replan(&next, &second);
    last.tasks.push(failed_health("n3", 2, 300));
    let third = plan(&last);
    let again = plan(&replan(&last, &third));
    [first, second, third, again]
        .iter()
        .map(|p| p.primary().failed_tasks)
        .collect()
}

#[test]
fn reset_on_healthy_task_defaults_to_true() {
    assert_eq!(failures_around_a_healthy_task(None), vec![2, 0, 1, 1]);
    assert_eq!(failures_around_a_healthy_task(Some(true)), vec![2, 0, 1, 1]);
}

#[test]
fn without_reset_on_healthy_task_failures_add_up_over_the_deployment() {
    assert_eq!(
        failures_around_a_healthy_task(Some(false)),
        vec![2, 2, 3, 3]
    );
}

#[test]
fn without_reset_the_breaker_trips_despite_healthy_tasks_in_between() {
    let mut input = deploying(breaker(None, Some(false)));
    for i in 0..5 {
        input
            .tasks
            .push(failed_health(&format!("n{i}"), 2, 100 + 100 * i));
        let mut good = healthy(&format!("g{i}"), 2, "b");
        good.health = Health::Healthy {
            since: at(150 + 100 * i),
        };
        input.tasks.push(good);
    }
    let tripped = plan(&input);
    assert_eq!(tripped.primary().failed_tasks, 5);
    assert_eq!(tripped.primary().rollout_state, Some(RolloutState::Failed));
    // With the reset, only the failure after the last healthy task counts.
    input.circuit_breaker.reset_on_healthy_task = Some(true);
    assert_eq!(
        plan(&input).primary().rollout_state,
        Some(RolloutState::InProgress)
    );
}
