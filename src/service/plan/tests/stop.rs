//! Stopping a deployment on request (StopServiceDeployment ROLLBACK): once, only an ongoing one.

use super::support::*;
use crate::api::service::{DeploymentStatus, RolloutState};

use crate::service::plan::events::REQUESTED_ROLLBACK_REASON_PREFIX;
use crate::service::plan::{Event, Input, StopRequest, plan};

fn request(n: u64, stop_type: Option<&str>) -> Option<StopRequest> {
    Some(StopRequest {
        deployment: format!("ecs-svc/{n}"),
        stop_type: stop_type.map(str::to_owned),
    })
}

/// Deploying web:2 over a completed web:1 (its tasks still running), the new tasks never healthy.
fn deploying() -> Input {
    let mut input = input(2, 100, 200);
    input.task_definition = TD2.into();
    input.deployments = vec![in_progress(2, TD2), active(1, TD1)];
    input.tasks = vec![
        healthy("o0", 1, "a"),
        healthy("o1", 1, "b"),
        pending("n0", 2),
        pending("n1", 2),
    ];
    input
}

#[test]
fn rollback_stops_the_deployment_and_deploys_the_last_completed_revision() {
    let mut input = deploying();
    input.stop_request = request(2, None);
    let first = plan_checked(&input);
    let ids: Vec<(&str, DeploymentStatus)> = first
        .deployments
        .iter()
        .map(|d| (d.id.as_str(), d.status))
        .collect();
    assert_eq!(
        ids,
        [
            ("ecs-svc/3", DeploymentStatus::Primary),
            ("ecs-svc/2", DeploymentStatus::Active),
            ("ecs-svc/1", DeploymentStatus::Active)
        ]
    );
    let rollback = first.primary();
    assert_eq!(rollback.task_definition, TD1);
    assert_eq!(rollback.rollout_state, Some(RolloutState::InProgress));
    assert!(
        rollback.rollout_state_reason.as_deref().is_some_and(|r| r
            .starts_with(REQUESTED_ROLLBACK_REASON_PREFIX)
            && r.contains("ecs-svc/1")),
        "{:?}",
        rollback.rollout_state_reason
    );
    assert_eq!(rollback.rolled_back_from.as_deref(), Some(TD2));
    let stopped = &first.deployments[1];
    assert_eq!(stopped.rollout_state, Some(RolloutState::Failed));
    assert_eq!(
        stopped.rollout_state_reason.as_deref(),
        Some("ECS deployment ecs-svc/2 stopped: rollback requested.")
    );
    assert_eq!(first.handled_stop_request.as_deref(), Some("ecs-svc/2"));
    assert_eq!(first.stop_request_rejected, None);
    assert!(first.events.contains(&Event::DeploymentStopped {
        deployment: "ecs-svc/2".into()
    }));
    assert!(first.events.contains(&Event::RollingBack {
        deployment: "ecs-svc/3".into(),
        to: "ecs-svc/1".into()
    }));
    // The stopped deployment's tasks go (they are not healthy), the old ones are kept.
    assert_eq!(stopped_names(&first), ["n0", "n1"]);

    // Read again with the request still there (and spec still asking for web:2): nothing new.
    let again = plan_checked(&replan(&input, &first));
    assert_eq!(again.deployments, first.deployments);
    assert!(!again.events.iter().any(|e| matches!(
        e,
        Event::DeploymentStopped { .. } | Event::RollingBack { .. }
    )));
}

#[test]
fn a_handled_request_is_not_acted_on_again() {
    let mut input = deploying();
    input.stop_request = request(2, Some("ROLLBACK"));
    input.handled_stop_request = Some("ecs-svc/2".into());
    let plan = plan_checked(&input);
    assert_eq!(plan.primary().id, "ecs-svc/2");
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::InProgress));
    assert_eq!(plan.handled_stop_request.as_deref(), Some("ecs-svc/2"));
    assert_eq!(plan.stop_request_rejected, None);
}

#[test]
fn requests_that_cannot_be_honoured_are_rejected_and_change_nothing() {
    let cases: [(Option<StopRequest>, Vec<_>, &str); 4] = [
        (request(1, None), vec![completed(1, TD1)], "not in progress"),
        (
            request(7, None),
            deploying().deployments,
            "not a deployment",
        ),
        (
            request(2, Some("ABORT")),
            deploying().deployments,
            "ROLLBACK only",
        ),
        (
            request(2, None),
            vec![in_progress(2, TD2)],
            "no previous COMPLETED",
        ),
    ];
    for (stop, deployments, why) in cases {
        let mut input = deploying();
        input.deployments = deployments;
        input.stop_request = stop.clone();
        let with = plan_checked(&input);
        input.stop_request = None;
        let without = plan(&input);
        assert!(
            with.stop_request_rejected
                .as_deref()
                .is_some_and(|r| r.contains(why)),
            "{stop:?}: {:?}",
            with.stop_request_rejected
        );
        assert_eq!(with.handled_stop_request, None, "{stop:?}");
        assert_eq!(with.deployments, without.deployments, "{stop:?}");
        assert_eq!(with.stops, without.stops, "{stop:?}");
        assert_eq!(with.starts, without.starts, "{stop:?}");
    }
}

#[test]
fn a_rollback_in_progress_continues() {
    let mut input = deploying();
    input.stop_request = request(2, None);
    let first = plan(&input);
    // Stopping the rollback itself: ECS continues the rollback.
    let mut again = replan(&input, &first);
    again.stop_request = request(3, None);
    let second = plan_checked(&again);
    assert_eq!(second.primary().id, "ecs-svc/3");
    assert_eq!(second.handled_stop_request.as_deref(), Some("ecs-svc/3"));
    assert_eq!(second.stop_request_rejected, None);
}
