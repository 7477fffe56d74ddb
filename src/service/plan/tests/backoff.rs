//! Launch backoff after failures to start.

use std::time::Duration;

use super::support::*;
use crate::api::task::StopCode;
use crate::service::plan::{Event, backoff_delay, plan};

#[test]
fn the_delay_doubles_up_to_twenty_seven_minutes() {
    let secs: Vec<u64> = (1..=10).map(|n| backoff_delay(n).as_secs()).collect();
    assert_eq!(secs, vec![10, 20, 40, 80, 160, 320, 640, 1280, 1620, 1620]);
    assert_eq!(backoff_delay(usize::MAX), Duration::from_secs(27 * 60));
}

#[test]
fn launches_wait_after_failures_to_start() {
    let mut input = input(2, 100, 200);
    input.deployments = vec![in_progress(1, TD1)];
    input.tasks = vec![failed_to_start("t0", 1, 995), failed_to_start("t1", 1, 990)];
    input.now = at(1000);
    let first = plan_checked(&input);
    // Two consecutive failures: 20 s after the last one.
    assert!(first.starts.is_empty());
    assert_eq!(first.retry_after, Some(Duration::from_secs(15)));
    assert_eq!(
        first.events,
        vec![
            Event::UnableToPlaceTask {
                reason: "CannotPullContainerError: not found".into()
            },
            Event::UnableToStartTasks
        ]
    );

    // Planned again (any trigger) before the wait is over: still waiting, no new event.
    let mut again = replan(&input, &first);
    again.now = at(1010);
    let second = plan_checked(&again);
    assert!(second.starts.is_empty());
    assert_eq!(second.retry_after, Some(Duration::from_secs(5)));
    assert!(second.events.is_empty());

    again.now = at(1015);
    let third = plan_checked(&again);
    assert_eq!(third.starts.len(), 2);
    assert_eq!(third.retry_after, None);
}

#[test]
fn a_task_reaching_running_ends_the_backoff() {
    let mut input = input(2, 100, 200);
    input.deployments = vec![in_progress(1, TD1)];
    let mut ran = healthy("t2", 1, "a");
    ran.started_at = Some(at(999));
    input.tasks = vec![failed_to_start("t0", 1, 995), ran];
    input.now = at(1000);
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 1);
    assert_eq!(plan.retry_after, None);
}

#[test]
fn failures_after_running_are_not_throttled() {
    let mut input = input(2, 100, 200);
    input.deployments = vec![in_progress(1, TD1)];
    input.tasks = vec![failed_health("t0", 1, 999), failed_health("t1", 1, 999)];
    let plan = plan(&input);
    assert_eq!(plan.starts.len(), 2);
}

#[test]
fn a_refused_pod_is_reported_once_as_unable_to_place_a_task() {
    let mut input = input(3, 100, 200);
    input.deployments = vec![in_progress(1, TD1)];
    let mut refused = failed_to_start("t0", 1, 995);
    refused.stopped_reason = Some(
        "CannotCreatePodError: pods \"t0\" is forbidden: exceeded quota: one, requested: pods=1"
            .into(),
    );
    input.tasks = vec![refused];
    input.now = at(1000);
    let first = plan_checked(&input);
    let placed: Vec<String> = first
        .events
        .iter()
        .filter(|e| matches!(e, Event::UnableToPlaceTask { .. }))
        .map(|e| e.message("web", &[]))
        .collect();
    assert_eq!(
        placed,
        vec![
            "(service web) was unable to place a task. Reason: CannotCreatePodError: pods \"t0\" is forbidden: exceeded quota: one, requested: pods=1."
                .to_string()
        ]
    );
    assert!(
        first
            .events
            .iter()
            .all(|e| e.is_warning() || !matches!(e, Event::UnableToPlaceTask { .. }))
    );
    // The same failure seen again (a replay, a restart) is not reported again.
    let again = plan_checked(&replan(&input, &first));
    assert!(
        !again
            .events
            .iter()
            .any(|e| matches!(e, Event::UnableToPlaceTask { .. }))
    );
}

#[test]
fn a_task_that_exited_before_running_is_not_called_unplaceable() {
    let mut input = input(2, 100, 200);
    input.deployments = vec![in_progress(1, TD1)];
    let mut crashed = failed_to_start("t0", 1, 995);
    crashed.stop_code = Some(StopCode::EssentialContainerExited);
    input.tasks = vec![crashed];
    input.now = at(1000);
    let plan = plan_checked(&input);
    assert!(
        !plan
            .events
            .iter()
            .any(|e| matches!(e, Event::UnableToPlaceTask { .. }))
    );
}
