//! Properties over random services: the bounds hold for every plan, plans are deterministic, the
//! written status is a fixed point, and a converged service plans nothing.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::support::*;
use crate::api::service::{Deployment, DeploymentCircuitBreaker, DeploymentStatus, RolloutState};
use crate::api::task::StopCode;
use crate::service::plan::deployments::{deployment_id, deployment_number};
use crate::service::plan::{Health, Input, Plan, StopRequest, TaskState, TaskView, plan};

const ZONES: [&str; 4] = ["a", "b", "c", "gone"];

fn percents() -> impl Strategy<Value = (i32, i32)> {
    (
        prop::sample::select(vec![0, 50, 100]),
        prop::sample::select(vec![100, 150, 200]),
    )
}

fn task(index: usize, newest: u64) -> impl Strategy<Value = TaskView> {
    (
        0..=newest + 1,
        prop::sample::select(vec![
            TaskState::Pending,
            TaskState::Running,
            TaskState::Stopping,
            TaskState::Stopped,
        ]),
        any::<bool>(),
        0..3u8,
        prop::option::of(prop::sample::select(ZONES.to_vec())),
        0..100i64,
        any::<bool>(),
        prop::sample::select(vec![
            None,
            Some(StopCode::TaskFailedToStart),
            Some(StopCode::EssentialContainerExited),
            Some(StopCode::ServiceSchedulerInitiated),
            Some(StopCode::UserInitiated),
        ]),
        any::<bool>(),
        prop::option::of(0..2000i64),
    )
        .prop_map(
            move |(
                dep,
                state,
                desired_stopped,
                health,
                zone,
                time,
                ran,
                code,
                health_reason,
                protected,
            )| {
                let running = state == TaskState::Running;
                TaskView {
                    name: format!("t{index}"),
                    deployment: if dep == 0 {
                        "someone".into()
                    } else {
                        deployment_id(dep)
                    },
                    state,
                    desired_stopped,
                    health: match health {
                        0 if running => Health::Healthy {
                            since: at(time + 5),
                        },
                        1 if running => Health::Unhealthy,
                        _ => Health::Unknown,
                    },
                    zone: zone.map(str::to_owned),
                    node: None,
                    created_at: at(time),
                    started_at: (ran || running).then(|| at(time + 1)),
                    stopped_at: (state == TaskState::Stopped).then(|| at(time + 10)),
                    stop_code: code.filter(|_| state == TaskState::Stopped),
                    stopped_reason: Some(if health_reason {
                        "Task failed container health checks".to_owned()
                    } else {
                        "Scaling activity initiated by (deployment ecs-svc/1)".to_owned()
                    }),
                    // `now` is at(1000): about half of these are protected, half expired.
                    protected_until: protected.map(at),
                    // Some pending tasks are rebalancing tasks the scheduler cannot place.
                    stuck_rebalancing: state == TaskState::Pending && zone.is_some() && !ran,
                }
            },
        )
}

fn deployments(newest: u64) -> impl Strategy<Value = Vec<Deployment>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                RolloutState::InProgress,
                RolloutState::Completed,
                RolloutState::Failed,
            ]),
            prop::sample::select(vec![DeploymentStatus::Active, DeploymentStatus::Inactive]),
            prop::sample::select(vec![TD1, TD2]),
            0..5i32,
            0..8i32,
        ),
        newest as usize,
    )
    .prop_map(move |rows| {
        rows.into_iter()
            .enumerate()
            .map(|(i, (rollout, status, td, failed, desired))| {
                let n = i as u64 + 1;
                let mut d = deployment(
                    n,
                    td,
                    if n == newest {
                        DeploymentStatus::Primary
                    } else {
                        status
                    },
                    rollout,
                );
                d.failed_tasks = failed;
                d.desired_count = desired;
                d
            })
            .rev()
            .collect()
    })
}

fn service() -> impl Strategy<Value = Input> {
    (1..4u64).prop_flat_map(|newest| {
        (
            0..=20i32,
            percents(),
            deployments(newest),
            prop::sample::select(vec![TD1, TD2]),
            (0..30usize)
                .prop_flat_map(move |n| (0..n).map(|i| task(i, newest)).collect::<Vec<_>>()),
            any::<(bool, bool, bool, bool, bool)>(),
            prop::option::of((0..=newest + 1, any::<bool>())),
        )
            .prop_map(
                move |(desired, (min, max), deployments, td, tasks, flags, stop)| {
                    let (enable, rollback, az, forced, spread) = flags;
                    let mut input = input(desired, min, max);
                    input.deployments = deployments;
                    input.task_definition = td.into();
                    input.tasks = tasks;
                    input.circuit_breaker = DeploymentCircuitBreaker {
                        enable,
                        rollback,
                        ..Default::default()
                    };
                    input.az_rebalancing = az;
                    input.zone_spread = spread;
                    input.force_new_deployment = forced.then(|| "1".to_owned());
                    input.stop_request = stop.map(|(n, rollback)| StopRequest {
                        deployment: deployment_id(n),
                        stop_type: (!rollback).then(|| "ABORT".to_owned()),
                    });
                    input
                },
            )
    })
}

fn check_invariants(input: &Input, plan: &Plan) -> Result<(), TestCaseError> {
    let desired = plan.desired_count;
    let max_alive = input.percents.max_alive(desired) as usize;
    let min_healthy = input.percents.min_healthy(desired) as usize;
    let alive = input
        .tasks
        .iter()
        .filter(|t| t.state != TaskState::Stopped)
        .count();
    if !plan.starts.is_empty() {
        prop_assert!(
            alive + plan.starts.len() <= max_alive,
            "{} alive + {} starts > {max_alive}",
            alive,
            plan.starts.len()
        );
    }
    let healthy: Vec<&TaskView> = input.tasks.iter().filter(|t| t.is_healthy()).collect();
    let stopped: BTreeSet<&str> = plan.stops.iter().map(|s| s.task.as_str()).collect();
    prop_assert_eq!(stopped.len(), plan.stops.len(), "a task is stopped once");
    let healthy_stopped = healthy
        .iter()
        .filter(|t| stopped.contains(t.name.as_str()))
        .count();
    if healthy_stopped > 0 {
        prop_assert!(healthy.len() - healthy_stopped >= min_healthy);
    }
    for name in &stopped {
        let task = input.tasks.iter().find(|t| t.name == *name);
        prop_assert!(
            task.is_some_and(|t| t.is_live()),
            "{} is not a live task",
            name
        );
        // Task scale-in protection: only a health check failure stops a protected task.
        prop_assert!(
            task.is_none_or(|t| !t.is_protected(input.now) || t.is_unhealthy()),
            "{} is protected and was stopped",
            name
        );
    }
    // PRIMARY first, then strictly older: ids unique and increasing with time.
    let numbers: Vec<u64> = plan
        .deployments
        .iter()
        .map(|d| deployment_number(&d.id).unwrap())
        .collect();
    prop_assert!(numbers.windows(2).all(|w| w[0] > w[1]), "{:?}", numbers);
    prop_assert_eq!(plan.deployments[0].status, DeploymentStatus::Primary);
    prop_assert!(
        plan.deployments[1..]
            .iter()
            .all(|d| d.status != DeploymentStatus::Primary)
    );
    let before = input
        .deployments
        .iter()
        .filter_map(|d| deployment_number(&d.id))
        .max();
    prop_assert!(before.is_none_or(|b| numbers[0] >= b));
    // Starts are the PRIMARY's, or replacements of an old COMPLETED deployment's tasks in its own
    // revision, within its target.
    for start in &plan.starts {
        let d = plan.deployments.iter().find(|d| d.id == start.deployment);
        prop_assert!(d.is_some(), "{} is not a deployment", start.deployment);
        let d = d.unwrap();
        prop_assert_eq!(&start.task_definition, &d.task_definition);
        if d.status != DeploymentStatus::Primary {
            prop_assert_eq!(d.rollout_state, Some(RolloutState::Completed));
            let kept = input
                .tasks
                .iter()
                .filter(|t| {
                    t.deployment == d.id && t.is_live() && !stopped.contains(t.name.as_str())
                })
                .count();
            let started = plan.starts.iter().filter(|s| s.deployment == d.id).count();
            prop_assert!(
                kept + started <= d.desired_count as usize,
                "{} over its target",
                d.id
            );
        }
    }
    // An old deployment's target never grows unless desiredCount does.
    let before = input
        .deployments
        .iter()
        .find(|d| d.status == DeploymentStatus::Primary)
        .map(|d| d.desired_count);
    let frozen = plan.deployments[0].rollout_state == Some(RolloutState::Failed);
    if !frozen && before.is_none_or(|b| b >= input.desired_count) {
        for d in plan
            .deployments
            .iter()
            .filter(|d| d.status != DeploymentStatus::Primary)
        {
            if let Some(was) = input
                .deployments
                .iter()
                .find(|o| o.id == d.id && o.status != DeploymentStatus::Primary)
            {
                prop_assert!(d.desired_count <= was.desired_count.max(0), "{} grew", d.id);
            }
        }
    }
    if plan.steady {
        prop_assert!(plan.starts.is_empty() && plan.stops.is_empty());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_plan_keeps_the_bounds(input in service()) {
        let first = plan(&input);
        check_invariants(&input, &first)?;
        prop_assert_eq!(&first, &plan(&input), "deterministic");
        // The world unchanged, the written status is a fixed point.
        let second = plan(&replan(&input, &first));
        prop_assert_eq!(&second.deployments, &first.deployments);
        check_invariants(&replan(&input, &first), &second)?;
    }

    #[test]
    fn a_new_service_starts_balanced_across_zones(
        desired in 1..=60i32,
        zones in 2..=3usize,
        (min, max) in percents(),
    ) {
        let mut input = input(desired, min, max);
        input.zones = ZONES[..zones].iter().map(|z| (*z).to_owned()).collect();
        input.zone_spread = true;
        let plan = plan(&input);
        prop_assert_eq!(plan.starts.len(), desired as usize);
        let mut counts = std::collections::BTreeMap::new();
        for s in &plan.starts {
            prop_assert!(!s.rebalancing, "a preference, not a pin");
            *counts.entry(s.zone.clone().expect("a zone")).or_insert(0) += 1;
        }
        prop_assert_eq!(counts.len(), zones.min(desired as usize));
        let (lo, hi) = (counts.values().min().unwrap(), counts.values().max().unwrap());
        prop_assert!(hi - lo <= 1, "{counts:?}");
    }

    #[test]
    fn a_converged_service_plans_nothing(
        desired in 0..=20i32,
        (min, max) in percents(),
        az in any::<bool>(),
        breaker in any::<bool>(),
        zones in 1..=3usize,
    ) {
        let mut input = input(desired, min, max);
        input.zones = ZONES[..zones].iter().map(|z| (*z).to_owned()).collect();
        input.az_rebalancing = az;
        input.circuit_breaker.enable = breaker;
        input.deployments = vec![completed(1, TD1)];
        input.tasks = (0..desired as usize)
            .map(|i| healthy(&format!("t{i}"), 1, ZONES[i % zones]))
            .collect();
        let written = plan(&input);
        prop_assert!(written.steady);
        let mut again = replan(&input, &written);
        again.now = at(90_000);
        let plan = plan(&again);
        prop_assert!(plan.starts.is_empty() && plan.stops.is_empty() && plan.events.is_empty());
        prop_assert_eq!(plan.retry_after, None);
        prop_assert_eq!(&plan.deployments, &written.deployments);
        prop_assert_eq!(&plan.deployments, &again.deployments);
    }
}
