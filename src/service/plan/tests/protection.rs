//! Task scale-in protection: scale-in, deployments and AZ rebalancing leave protected tasks alone
//! until the protection expires; health check replacements do not.

use proptest::prelude::*;

use super::support::*;

use crate::api::service::RolloutState;
use crate::service::plan::{TaskView, plan};

fn protected(mut t: TaskView, until: i64) -> TaskView {
    t.protected_until = Some(at(until));
    t
}

/// Desired 3 → 1 over three healthy tasks of a COMPLETED deployment, t0 protected until `until`.
fn scaling_in(until: i64) -> crate::service::plan::Input {
    let mut input = input(1, 100, 200);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        protected(healthy("t0", 1, "a"), until),
        healthy("t1", 1, "b"),
        healthy("t2", 1, "c"),
    ];
    input
}

#[test]
fn scale_in_never_chooses_a_protected_task() {
    // t0 is the newest: unprotected, scale-in would take it first.
    let mut input = scaling_in(2000);
    input.tasks[0].created_at = at(5);
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), ["t1", "t2"]);
    assert_eq!(plan.protection_expires_at, Some(at(2000)));
}

#[test]
fn scale_in_waits_while_only_protected_tasks_are_left() {
    let mut input = scaling_in(2000);
    input.tasks[1] = protected(healthy("t1", 1, "b"), 3000);
    input.tasks[2].desired_stopped = true;
    let plan = plan_checked(&input);
    assert!(plan.stops.is_empty(), "{:?}", plan.stops);
    assert!(!plan.steady, "two tasks run where one is desired");
    assert_eq!(
        plan.protection_expires_at,
        Some(at(2000)),
        "the service plans again at the earliest expiry"
    );
}

#[test]
fn an_expired_protection_no_longer_holds() {
    // Expired at `now` (at(1000)): t0 is an ordinary task again, and as the newest it goes first.
    let mut input = scaling_in(1000);
    input.tasks[0].created_at = at(5);
    let plan = plan_checked(&input);
    assert_eq!(plan.stops.len(), 2);
    assert_eq!(plan.stops[0].task, "t0");
    assert_eq!(plan.protection_expires_at, None);
}

#[test]
fn a_deployment_waits_for_a_protected_old_task() {
    let mut input = input(2, 100, 200);
    input.task_definition = TD2.into();
    input.deployments = vec![in_progress(2, TD2), active(1, TD1)];
    input.tasks = vec![
        protected(healthy("o0", 1, "a"), 4000),
        healthy("o1", 1, "b"),
        healthy("n0", 2, "a"),
        healthy("n1", 2, "b"),
    ];
    let first = plan_checked(&input);
    assert_eq!(stopped_names(&first), ["o1"]);
    assert_eq!(
        first.primary().rollout_state,
        Some(RolloutState::InProgress)
    );
    assert_eq!(first.protection_expires_at, Some(at(4000)));

    // o1 gone, o0 still protected: the deployment is still in progress, nothing else to do.
    let mut waiting = replan(&input, &first);
    waiting.tasks.remove(1);
    let second = plan_checked(&waiting);
    assert!(second.stops.is_empty() && second.starts.is_empty());
    assert_eq!(
        second.primary().rollout_state,
        Some(RolloutState::InProgress)
    );

    // At the expiry, o0 goes (ECS: the deployment proceeds once protection expires).
    let mut expired = replan(&waiting, &second);
    expired.now = at(4000);
    let third = plan_checked(&expired);
    assert_eq!(stopped_names(&third), ["o0"]);

    // Removing the protection has the same effect at once.
    let mut removed = replan(&waiting, &second);
    removed.tasks[0].protected_until = None;
    assert_eq!(stopped_names(&plan_checked(&removed)), ["o0"]);
}

#[test]
fn an_unhealthy_protected_task_is_still_replaced() {
    let mut input = input(2, 100, 200);
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        protected(unhealthy("t0", 1, "a"), 4000),
        healthy("t1", 1, "b"),
        healthy("n0", 1, "c"),
    ];
    let plan = plan_checked(&input);
    assert_eq!(stopped_names(&plan), ["t0"]);
}

#[test]
fn az_rebalancing_does_not_stop_a_protected_task() {
    let mut input = input(3, 0, 100);
    input.az_rebalancing = true;
    input.deployments = vec![completed(1, TD1)];
    input.tasks = vec![
        protected(healthy("t0", 1, "a"), 4000),
        protected(healthy("t1", 1, "a"), 4000),
        healthy("t2", 1, "b"),
    ];
    let plan = plan_checked(&input);
    assert!(plan.stops.is_empty(), "{:?}", plan.stops);
    assert_eq!(plan.primary().rollout_state, Some(RolloutState::Completed));

    // With room to start first, no rebalancing task starts either: nothing could leave zone a.
    input.percents.maximum = 200;
    let plan = plan_checked(&input);
    assert!(plan.starts.is_empty() && plan.stops.is_empty(), "{plan:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Whatever the counts, percents, deployment and protections, no plan stops a protected task that
    /// is not failing its health checks.
    #[test]
    fn no_protected_task_is_stopped_by_scale_in_or_deployment(
        desired in 0..8i32,
        (min, max) in (prop::sample::select(vec![0, 50, 100]), prop::sample::select(vec![100, 150, 200])),
        deploying in any::<bool>(),
        az in any::<bool>(),
        tasks in prop::collection::vec(
            (1..=2u64, 0..4u8, prop::sample::select(vec!["a", "b", "c"]), prop::option::of(0..2000i64)),
            0..12,
        ),
    ) {
        let mut input = input(desired, min, max);
        input.az_rebalancing = az;
        if deploying {
            input.task_definition = TD2.into();
            input.deployments = vec![in_progress(2, TD2), active(1, TD1)];
        } else {
            input.deployments = vec![completed(2, TD1)];
        }
        input.tasks = tasks
            .into_iter()
            .enumerate()
            .map(|(i, (d, kind, zone, until))| {
                let name = format!("t{i}");
                let mut t = match kind {
                    0 => healthy(&name, d, zone),
                    1 => unhealthy(&name, d, zone),
                    2 => pending(&name, d),
                    _ => stopping(&name, d, zone),
                };
                t.protected_until = until.map(at);
                t
            })
            .collect();
        let plan = plan(&input);
        for stop in &plan.stops {
            let t = input.tasks.iter().find(|t| t.name == stop.task).unwrap();
            prop_assert!(
                !t.is_protected(input.now) || t.is_unhealthy(),
                "{} is protected until {:?} and was stopped: {}",
                t.name,
                t.protected_until,
                stop.reason
            );
        }
    }
}
