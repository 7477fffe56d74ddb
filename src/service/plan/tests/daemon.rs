//! DAEMON services.

use super::support::*;
use crate::api::service::{RolloutState, SchedulingStrategy};
use crate::service::plan::{Input, Percents, TaskView};

fn daemon(nodes: &[&str]) -> Input {
    let mut input = input(0, 0, 100);
    input.scheduling = SchedulingStrategy::Daemon;
    input.percents = Percents::resolve(SchedulingStrategy::Daemon, None);
    input.nodes = nodes.iter().map(|n| (*n).to_owned()).collect();
    input
}

fn on(mut t: TaskView, node: &str) -> TaskView {
    t.node = Some(node.into());
    t
}

#[test]
fn one_task_per_node() {
    let mut input = daemon(&["n1", "n2", "n3"]);
    input.deployments = vec![in_progress(1, TD1)];
    input.tasks = vec![on(healthy("t1", 1, "a"), "n1")];
    let plan = plan_checked(&input);
    let nodes: Vec<Option<&str>> = plan.starts.iter().map(|s| s.node.as_deref()).collect();
    assert_eq!(nodes, vec![Some("n2"), Some("n3")]);
    assert_eq!(plan.desired_count, 3);
    assert!(plan.stops.is_empty());
}

#[test]
fn tasks_on_gone_nodes_stop_and_duplicates_go() {
    let mut input = daemon(&["n1"]);
    input.deployments = vec![completed(1, TD1)];
    let mut newer = on(healthy("t2", 1, "a"), "n1");
    newer.created_at = at(5);
    input.tasks = vec![
        on(healthy("t1", 1, "a"), "n1"),
        newer,
        on(healthy("t3", 1, "a"), "gone"),
    ];
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), vec!["t2", "t3"]);
    assert!(plan.starts.is_empty());
}

#[test]
fn a_deployment_stops_each_node_task_then_starts_the_new_one() {
    let mut input = daemon(&["n1", "n2"]);
    input.task_definition = TD2.into();
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        on(healthy("o1", 1, "a"), "n1"),
        on(healthy("o2", 1, "a"), "n2"),
    ];
    let plan = plan_checked(&input);
    assert_eq!(plan.primary().id, "ecs-svc/2");
    assert_eq!(stopped_names(&plan), vec!["o1", "o2"]);
    assert!(
        plan.starts.is_empty(),
        "a node gets its new task once the old one is gone"
    );

    input.deployments = plan.deployments.clone();
    input.tasks[0].state = crate::service::plan::TaskState::Stopped;
    input.tasks[1].desired_stopped = true;
    let plan = plan_checked(&input);
    let nodes: Vec<Option<&str>> = plan.starts.iter().map(|s| s.node.as_deref()).collect();
    assert_eq!(nodes, vec![Some("n1")]);
}

#[test]
fn a_daemon_completes_when_every_node_has_a_healthy_task() {
    let mut input = daemon(&["n1", "n2"]);
    input.deployments = vec![in_progress(1, TD1)];
    input.tasks = vec![
        on(healthy("t1", 1, "a"), "n1"),
        on(healthy("t2", 1, "b"), "n2"),
    ];
    let plan = plan_checked(&input);
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::Completed));
    assert!(plan.steady);
}

#[test]
fn unhealthy_daemon_tasks_are_replaced() {
    let mut input = daemon(&["n1"]);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![on(unhealthy("t1", 1, "a"), "n1")];
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), vec!["t1"]);
    assert_eq!(plan.stops[0].reason, "Task failed container health checks");
    assert!(plan.starts.is_empty());
}

#[test]
fn a_cordoned_or_not_ready_node_keeps_its_task_and_gets_none() {
    // n2 is unavailable (cordoned, NotReady or tainted) but still matches the service.
    let mut input = daemon(&["n1", "n3"]);
    input.unavailable_nodes = vec!["n2".into(), "n4".into()];
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        on(healthy("t1", 1, "a"), "n1"),
        on(healthy("t2", 1, "a"), "n2"),
        on(healthy("t3", 1, "a"), "n3"),
    ];
    let plan = plan_checked(&input);
    assert!(plan.stops.is_empty(), "{:?}", plan.stops);
    assert!(plan.starts.is_empty(), "n4 gets no task: {:?}", plan.starts);
    assert_eq!(plan.desired_count, 3);
    assert!(plan.steady);
}

#[test]
fn a_deployment_stops_an_outdated_task_on_an_unavailable_node_without_replacing_it() {
    let mut input = daemon(&["n1"]);
    input.unavailable_nodes = vec!["n2".into()];
    input.task_definition = TD2.into();
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        on(healthy("o1", 1, "a"), "n1"),
        on(healthy("o2", 1, "a"), "n2"),
    ];
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), vec!["o1", "o2"]);
    assert!(plan.starts.is_empty());
    // Once both are gone, only the available node gets the new revision, and the deployment completes.
    let mut next = replan(&input, &plan);
    next.tasks = vec![on(healthy("n1t", 2, "a"), "n1")];
    let done = plan_checked(&next);
    assert!(done.starts.is_empty(), "{:?}", done.starts);
    assert_eq!(done.desired_count, 1);
    assert_eq!(done.primary().rollout_state, Some(RolloutState::Completed));
}
