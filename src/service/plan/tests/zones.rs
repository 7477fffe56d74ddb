//! AZ rebalancing.

use super::support::*;
use crate::api::service::RolloutState;
use crate::service::plan::{Event, TaskState};

fn zoned(min: i32, max: i32) -> crate::service::plan::Input {
    let mut input = input(3, min, max);
    input.az_rebalancing = true;
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        healthy("t0", 1, "a"),
        healthy("t1", 1, "a"),
        healthy("t2", 1, "b"),
    ];
    input
}

#[test]
fn an_unbalanced_service_starts_a_task_in_the_shortest_zone() {
    let input = zoned(100, 200);
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 1);
    assert_eq!(plan.starts[0].zone.as_deref(), Some("c"));
    // The move is only worth making into that zone: pinned.
    assert!(plan.starts[0].rebalancing);
    assert!(plan.stops.is_empty());
    assert_eq!(
        plan.events,
        vec![
            Event::NotAzBalanced {
                zones: vec![("a".into(), 2), ("b".into(), 1), ("c".into(), 0)]
            },
            Event::StartedTasks
        ]
    );
    assert_eq!(
        plan.events[0].message("web", &[]),
        "service (web) is not AZ balanced with 2 tasks in a, 1 in b, and 0 in c. AZ Rebalancing in progress."
    );
    assert!(!plan.steady);
}

#[test]
fn the_longest_zone_gives_up_a_task_once_the_new_one_is_healthy() {
    let mut input = zoned(100, 200);
    // Pending (its zone is its pin): nothing to do yet.
    let mut new = pending("t3", 1);
    new.zone = Some("c".into());
    input.tasks.push(new);
    let plan = plan_checked(&input);
    assert!(plan.starts.is_empty() && plan.stops.is_empty(), "{plan:?}");

    input.tasks[3] = healthy("t3", 1, "c");
    let plan = plan_checked(&input);
    assert_eq!(plan.stops.len(), 1);
    assert!(plan.stops[0].task == "t0" || plan.stops[0].task == "t1");
    assert!(plan.starts.is_empty());
    assert_eq!(
        plan.events.last().unwrap().message("web", &[]),
        "service (web) is AZ balanced with 1 tasks in a, 1 tasks in b, and 1 tasks in c."
    );
}

#[test]
fn a_lower_minimum_lets_the_long_zone_shrink_while_the_new_task_starts() {
    let mut input = zoned(50, 200);
    let mut new = pending("t3", 1);
    new.zone = Some("c".into());
    input.tasks.push(new);
    let plan = plan_checked(&input);
    assert_eq!(plan.stops.len(), 1);
    assert_ne!(plan.stops[0].task, "t3", "the rebalancing task stays");
}

#[test]
fn without_room_a_task_stops_first_and_its_replacement_prefers_the_short_zone() {
    let mut input = zoned(50, 100);
    let plan = plan_checked(&input);
    assert!(plan.starts.is_empty());
    assert_eq!(plan.stops.len(), 1);
    assert!(plan.stops[0].task == "t0" || plan.stops[0].task == "t1");
    assert!(matches!(plan.events[0], Event::NotAzBalanced { .. }));

    let gone = plan.stops[0].task.clone();
    for t in &mut input.tasks {
        if t.name == gone {
            t.state = TaskState::Stopped;
        }
    }
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 1);
    assert_eq!(plan.starts[0].zone.as_deref(), Some("c"));
    // A replacement: preferred, so a full zone never keeps the service short of a task.
    assert!(!plan.starts[0].rebalancing);
}

#[test]
fn rebalancing_off_or_during_a_deployment_does_nothing() {
    let mut input = zoned(100, 200);
    input.az_rebalancing = false;
    let plan = plan_checked(&input);
    assert!(plan.starts.is_empty() && plan.stops.is_empty());
    assert!(plan.steady);

    let mut input = zoned(100, 200);
    input.deployments = vec![in_progress(1, TD1)];
    let plan = plan_checked(&input);
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::Completed));
    assert!(
        plan.starts.is_empty(),
        "not before the deployment is COMPLETED"
    );
}

#[test]
fn a_skew_of_one_is_balanced() {
    let mut input = zoned(100, 200);
    input.tasks[1].zone = Some("c".into());
    let plan = plan_checked(&input);
    assert!(plan.starts.is_empty() && plan.stops.is_empty());
    assert!(plan.steady);
}

#[test]
fn zones_without_nodes_do_not_count() {
    let mut input = zoned(100, 200);
    input.zones = vec!["a".into(), "b".into()];
    input.tasks[1].zone = Some("b".into());
    let plan = plan_checked(&input);
    assert!(plan.starts.is_empty() && plan.stops.is_empty());
}

#[test]
fn replacements_go_to_the_shortest_zone_once_steady() {
    let mut input = zoned(100, 200);
    input.tasks[1].state = TaskState::Stopped;
    input.tasks.push(healthy("t3", 1, "c"));
    // a:1 b:1 c:1 after t1 stopped; add a fourth desired.
    input.desired_count = 4;
    input.tasks[3].zone = Some("c".into());
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 1);
    assert_eq!(plan.starts[0].zone.as_deref(), Some("a"));
    assert!(!plan.starts[0].rebalancing, "a preference, not a pin");
}

#[test]
fn a_rebalancing_task_with_no_room_in_its_zone_holds_no_place() {
    let mut input = zoned(100, 200);
    let mut stuck = pending("t3", 1);
    stuck.zone = Some("c".into());
    stuck.stuck_rebalancing = true;
    input.tasks.push(stuck);
    // No second rebalancing task, and nothing stops in the long zone for it.
    let plan = plan_checked(&input);
    assert!(plan.starts.is_empty() && plan.stops.is_empty(), "{plan:?}");
    // A task is lost: it is replaced at once, not after the stuck one fails to start.
    input.tasks[2].state = TaskState::Stopped;
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 1, "{plan:?}");
    assert!(!plan.starts[0].rebalancing);
}

#[test]
fn launches_prefer_the_zones_with_the_fewest_of_the_deployments_tasks() {
    // A deployment in progress (no rebalancing yet): 2 tasks in a, 1 in b, 3 more to start.
    let mut input = input(6, 100, 200);
    input.zone_spread = true;
    input.deployments = vec![in_progress(1, TD1)];
    input.tasks = vec![
        healthy("t0", 1, "a"),
        healthy("t1", 1, "a"),
        healthy("t2", 1, "b"),
    ];
    let plan = plan_checked(&input);
    let zones: Vec<_> = plan.starts.iter().map(|s| s.zone.as_deref()).collect();
    assert_eq!(zones, vec![Some("c"), Some("b"), Some("c")]);
    // Preferences: a zone without room must not hold a launch back.
    assert!(plan.starts.iter().all(|s| !s.rebalancing));
}

#[test]
fn a_rollout_balances_the_new_deployments_tasks_not_the_old_ones() {
    let mut input = input(3, 100, 200);
    input.zone_spread = true;
    input.task_definition = TD2.into();
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        healthy("t0", 1, "a"),
        healthy("t1", 1, "a"),
        healthy("t2", 1, "a"),
    ];
    let plan = plan_checked(&input);
    let zones: Vec<_> = plan.starts.iter().map(|s| s.zone.as_deref()).collect();
    assert_eq!(zones, vec![Some("a"), Some("b"), Some("c")]);
}

#[test]
fn without_a_zone_spread_the_scheduler_places_launches() {
    let mut input = input(3, 100, 200);
    input.zone_spread = false;
    let plan = plan_checked(&input);
    assert_eq!(plan.starts.len(), 3);
    assert!(plan.starts.iter().all(|s| s.zone.is_none()));

    // One zone: nothing to balance.
    input.zone_spread = true;
    input.zones = vec!["a".into()];
    let plan = plan_checked(&input);
    assert!(plan.starts.iter().all(|s| s.zone.is_none()));
}
