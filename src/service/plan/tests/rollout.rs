//! Rolling deployments, self-healing and scale-in (REPLICA).

use super::support::*;
use crate::api::service::{DeploymentStatus, RolloutState};

use crate::service::plan::{Event, TaskState};

#[test]
fn a_new_service_gets_its_first_deployment_and_its_tasks() {
    let input = input(3, 100, 200);
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 3);
    assert!(
        plan.starts
            .iter()
            .all(|s| s.deployment == "ecs-svc/1" && s.task_definition == TD1)
    );
    assert!(
        plan.starts
            .iter()
            .all(|s| s.zone.is_none() && s.node.is_none())
    );
    assert_eq!(plan.deployments.len(), 1);
    let d = plan.primary();
    assert_eq!(
        (d.id.as_str(), d.status),
        ("ecs-svc/1", DeploymentStatus::Primary)
    );
    assert_eq!(d.rollout_state, Some(RolloutState::InProgress));
    assert_eq!(
        d.rollout_state_reason.as_deref(),
        Some("ECS deployment ecs-svc/1 in progress.")
    );
    assert_eq!(d.desired_count, 3);
    assert_eq!(plan.events, vec![Event::StartedTasks]);
    assert!(!plan.steady);
}

#[test]
fn a_new_task_definition_starts_a_deployment_and_demotes_the_primary() {
    let mut input = input(4, 100, 200);
    input.task_definition = TD2.into();
    input.deployments = vec![completed(1, TD1)];
    input.tasks = (0..4).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    let plan = plan_checked(&input);
    let ids: Vec<(&str, DeploymentStatus)> = plan
        .deployments
        .iter()
        .map(|d| (d.id.as_str(), d.status))
        .collect();
    assert_eq!(
        ids,
        vec![
            ("ecs-svc/2", DeploymentStatus::Primary),
            ("ecs-svc/1", DeploymentStatus::Active)
        ]
    );
    assert_eq!(plan.primary().task_definition, TD2);
    // 100/200: start all four new ones first, stop nothing yet.
    assert_eq!(plan.starts.len(), 4);
    assert!(plan.stops.is_empty());
}

#[test]
fn at_100_200_old_tasks_stop_as_new_ones_become_healthy() {
    let mut input = input(4, 100, 200);
    input.task_definition = TD2.into();
    let mut old = active(1, TD1);
    old.desired_count = 4;
    input.deployments = vec![in_progress(2, TD2), old];
    input.tasks = (0..4).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    input.tasks.push(healthy("n0", 2, "a"));
    input.tasks.push(healthy("n1", 2, "b"));
    input.tasks.push(pending("n2", 2));
    input.tasks.push(pending("n3", 2));
    let plan = plan_checked(&input);
    assert_eq!(plan.stops.len(), 2, "{:?}", plan.stops);
    assert!(plan.stops.iter().all(|s| s.task.starts_with('o')));
    assert!(
        plan.stops
            .iter()
            .all(|s| s.reason == "Scaling activity initiated by (deployment ecs-svc/2)")
    );
    assert!(plan.starts.is_empty());
    assert_eq!(
        plan.deployments[1].desired_count, 2,
        "the ACTIVE deployment keeps two"
    );
}

#[test]
fn at_50_100_half_of_the_old_tasks_stop_first() {
    let mut input = input(4, 50, 100);
    input.task_definition = TD2.into();
    input.deployments = vec![completed(1, TD1)];
    input.tasks = (0..4).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    let plan = plan_checked(&input);
    assert_eq!(plan.stops.len(), 2);
    assert!(
        plan.starts.is_empty(),
        "stopping tasks still count toward maximumPercent"
    );

    // Once they are stopped, two new ones start.
    let mut next = replan(&input, &plan);
    for t in &mut next.tasks {
        if plan.stops.iter().any(|s| s.task == t.name) {
            t.state = TaskState::Stopped;
        }
    }
    let plan = plan_checked(&next);
    assert_eq!(plan.starts.len(), 2);
    assert!(plan.stops.is_empty());
}

#[test]
fn at_0_100_everything_old_stops_first() {
    let mut input = input(3, 0, 100);
    input.task_definition = TD2.into();
    input.deployments = vec![completed(1, TD1)];
    input.tasks = (0..3).map(|i| healthy(&format!("o{i}"), 1, "a")).collect();
    let plan = plan_checked(&input);
    assert_eq!(plan.stops.len(), 3);
    assert!(plan.starts.is_empty());
}

#[test]
fn desired_one_at_100_100_cannot_progress() {
    let mut input = input(1, 100, 100);
    input.task_definition = TD2.into();
    input.deployments = vec![in_progress(2, TD2), active(1, TD1)];
    input.tasks = vec![healthy("o0", 1, "a")];
    let plan = plan_checked(&input);
    assert!(plan.starts.is_empty() && plan.stops.is_empty());
}

#[test]
fn desired_one_at_100_200_starts_then_stops() {
    let mut input = input(1, 100, 200);
    input.task_definition = TD2.into();
    input.deployments = vec![in_progress(2, TD2), active(1, TD1)];
    input.tasks = vec![healthy("o0", 1, "a")];
    let plan = plan_checked(&input);
    assert_eq!((plan.starts.len(), plan.stops.len()), (1, 0));
    input.tasks.push(healthy("n0", 2, "b"));
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), vec!["o0"]);
    assert!(plan.starts.is_empty());
}

#[test]
fn stopped_tasks_are_replaced() {
    let mut input = input(3, 100, 200);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        healthy("t0", 1, "a"),
        healthy("t1", 1, "b"),
        failed_health("t2", 1, 500),
    ];
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 1);
    assert!(plan.stops.is_empty());
}

#[test]
fn an_unhealthy_task_is_replaced_first_when_maximum_percent_allows() {
    let mut input = input(3, 100, 200);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        healthy("t0", 1, "a"),
        healthy("t1", 1, "b"),
        unhealthy("t2", 1, "c"),
    ];
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 1);
    assert!(
        plan.stops.is_empty(),
        "the unhealthy task stays until its replacement is healthy"
    );

    input.tasks.push(pending("t3", 1));
    let plan = plan_checked(&input);
    assert!(plan.starts.is_empty() && plan.stops.is_empty());

    input.tasks[3] = healthy("t3", 1, "c");
    let plan = plan_checked(&input);
    assert_eq!(plan.stops.len(), 1);
    assert_eq!(plan.stops[0].task, "t2");
    assert_eq!(plan.stops[0].reason, "Task failed container health checks");
    assert_eq!(
        plan.events[0],
        Event::FailedHealthChecks { task: "t2".into() }
    );
    assert!(plan.starts.is_empty());
}

#[test]
fn unhealthy_tasks_are_stopped_one_at_a_time_when_maximum_percent_blocks() {
    let mut input = input(3, 100, 100);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        healthy("t0", 1, "a"),
        unhealthy("t1", 1, "b"),
        unhealthy("t2", 1, "c"),
    ];
    let plan = plan_checked(&input);
    assert_eq!(plan.stops.len(), 1);
    assert!(plan.starts.is_empty());

    // While one is stopping, the other waits.
    input.tasks[1].desired_stopped = true;
    let plan = plan_checked(&input);
    assert!(plan.stops.is_empty() && plan.starts.is_empty());

    // Stopped: its replacement starts.
    input.tasks[1].state = TaskState::Stopped;
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 1);
    assert!(plan.stops.is_empty());
}

#[test]
fn scale_in_leaves_the_zones_balanced() {
    let mut input = input(3, 100, 200);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        healthy("a0", 1, "a"),
        healthy("a1", 1, "a"),
        healthy("a2", 1, "a"),
        healthy("b0", 1, "b"),
        healthy("b1", 1, "b"),
        healthy("c0", 1, "c"),
    ];
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), vec!["a1", "a2", "b1"]);
    assert_eq!(
        plan.events.last(),
        Some(&Event::StoppedTasks {
            tasks: vec!["a2".into(), "b1".into(), "a1".into()]
        })
    );
}

#[test]
fn scale_in_prefers_pending_then_newest() {
    let mut input = input(2, 100, 200);
    input.deployments = vec![completed(1, TD1)];
    let mut newer = healthy("t2", 1, "b");
    newer.created_at = at(100);
    input.tasks = vec![
        healthy("t0", 1, "a"),
        healthy("t1", 1, "b"),
        newer,
        pending("t3", 1),
    ];
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), vec!["t2", "t3"]);
}

#[test]
fn a_converged_service_completes_once_then_plans_nothing() {
    let mut input = input(2, 100, 200);
    input.deployments = vec![in_progress(1, TD1)];
    input.tasks = vec![healthy("t0", 1, "a"), healthy("t1", 1, "b")];
    let plan = plan_checked(&input);
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::Completed));
    assert_eq!(
        plan.primary().rollout_state_reason.as_deref(),
        Some("ECS deployment ecs-svc/1 completed.")
    );
    assert_eq!(
        plan.primary().updated_at.as_ref().map(|t| t.0),
        Some(input.now)
    );
    assert_eq!(plan.primary().running_count, 2);
    assert_eq!(
        plan.events,
        vec![
            Event::DeploymentCompleted {
                deployment: "ecs-svc/1".into()
            },
            Event::SteadyState
        ]
    );
    assert!(plan.steady);

    let mut again = replan(&input, &plan);
    again.now = at(5000);
    let second = plan_checked(&again);
    assert!(second.starts.is_empty() && second.stops.is_empty() && second.events.is_empty());
    assert_eq!(second.deployments, plan.deployments, "nothing to write");
    assert!(second.steady);
}

#[test]
fn drained_deployments_become_inactive_and_history_is_bounded() {
    let mut input = input(1, 100, 200);
    input.deployments = vec![completed(9, TD1)];
    input.deployments.push(active(1, "web:0"));
    for n in 2..9 {
        input.deployments.push(deployment(
            n,
            TD2,
            DeploymentStatus::Inactive,
            RolloutState::Failed,
        ));
    }
    input.tasks = vec![healthy("t0", 9, "a")];
    let plan = plan_checked(&input);
    let ids: Vec<&str> = plan.deployments.iter().map(|d| d.id.as_str()).collect();
    // PRIMARY, five newest INACTIVE, and the newest COMPLETED one kept for rollback.
    assert_eq!(
        ids,
        vec![
            "ecs-svc/9",
            "ecs-svc/8",
            "ecs-svc/7",
            "ecs-svc/6",
            "ecs-svc/5",
            "ecs-svc/4",
            "ecs-svc/1"
        ]
    );
    assert_eq!(plan.deployments[6].status, DeploymentStatus::Inactive);
}

#[test]
fn deployment_ids_are_never_reused() {
    // The status was lost, but the tasks remember ecs-svc/7.
    let mut input = input(1, 100, 200);
    input.tasks = vec![healthy("t0", 7, "a")];
    let plan = plan_checked(&input);
    assert_eq!(plan.primary().id, "ecs-svc/8");
    assert_eq!(
        plan.deployments.len(),
        1,
        "an unknown deployment is not listed"
    );
    assert_eq!(plan.starts.len(), 1);
    assert!(
        plan.stops.is_empty(),
        "the old task stays until the new one is healthy"
    );
}

#[test]
fn a_new_force_value_redeploys_once() {
    let mut input = input(1, 100, 200);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![healthy("t0", 1, "a")];
    input.force_new_deployment = Some("\"2024-05-01\"".into());
    let plan = plan_checked(&input);
    assert_eq!(plan.primary().id, "ecs-svc/2");
    assert_eq!(plan.primary().task_definition, TD1);
    assert_eq!(
        plan.primary().force_new_deployment.as_deref(),
        Some("\"2024-05-01\"")
    );
    let again = plan_checked(&replan(&input, &plan));
    assert_eq!(
        again.primary().id,
        "ecs-svc/2",
        "the same value does not redeploy again"
    );
}

#[test]
fn scaling_to_zero_stops_everything_and_completes() {
    let mut input = input(0, 100, 200);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![healthy("t0", 1, "a"), pending("t1", 1)];
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), vec!["t0", "t1"]);
    assert!(!plan.steady);
    input.tasks.clear();
    let plan = plan_checked(&input);
    assert!(plan.steady);
    assert_eq!(plan.events, vec![Event::SteadyState]);
}

#[test]
fn old_tasks_that_are_not_healthy_stop_at_once() {
    let mut input = input(2, 100, 200);
    input.task_definition = TD2.into();
    input.deployments = vec![in_progress(2, TD2), active(1, TD1)];
    input.tasks = vec![
        healthy("o0", 1, "a"),
        pending("o1", 1),
        unhealthy("o2", 1, "b"),
    ];
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), vec!["o1", "o2"]);
    assert_eq!(plan.starts.len(), 1, "4 allowed, 3 alive");
}

#[test]
fn counts_are_reported() {
    let mut input = input(3, 100, 200);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        healthy("t0", 1, "a"),
        pending("t1", 1),
        stopping("t2", 1, "b"),
        scaled_in("t3", 1, 10),
    ];
    let plan = plan_checked(&input);
    // A task asked to stop still reports RUNNING until it stops.
    assert_eq!((plan.running_count, plan.pending_count), (2, 1));
    assert_eq!(
        (plan.primary().running_count, plan.primary().pending_count),
        (2, 1)
    );
    assert_eq!(plan.desired_count, 3);
}
