//! Plans applied step by step to a fake world: a started task is RUNNING and healthy one step later,
//! or, for a broken revision, stops without ever running.

use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::support::*;
use crate::api::service::{DeploymentCircuitBreaker, RolloutState, SchedulingStrategy};
use crate::api::task::StopCode;

use crate::service::plan::{
    Event, Health, Input, Percents, Plan, TaskState, TaskView, failure_threshold, plan,
};

pub(super) struct World {
    pub input: Input,
    pub broken: Vec<String>,
    /// Revisions whose tasks fail to start now and then: percent of tasks, and a seed picking which.
    pub flaky: Vec<(String, u64, u64)>,
    next_name: usize,
    /// Every plan, in order.
    pub plans: Vec<Plan>,
    pub events: Vec<Event>,
}

impl World {
    /// A COMPLETED service of `desired` healthy web:1 tasks spread over zones a, b, c.
    pub fn steady(desired: usize, min: i32, max: i32) -> World {
        let mut input = input(desired as i32, min, max);
        let mut d = completed(1, TD1);
        d.desired_count = desired as i32;
        input.deployments = vec![d];
        input.tasks = (0..desired)
            .map(|i| healthy(&format!("t{i}"), 1, ["a", "b", "c"][i % 3]))
            .collect();
        input.previously_steady = true;
        World {
            input,
            broken: Vec::new(),
            flaky: Vec::new(),
            next_name: desired,
            plans: Vec::new(),
            events: Vec::new(),
        }
    }

    fn now(&self) -> Timestamp {
        self.input.now
    }

    fn max_alive(&self) -> usize {
        let desired = match self.input.scheduling {
            SchedulingStrategy::Replica => self.input.desired_count,
            SchedulingStrategy::Daemon => self.input.nodes.len() as i32,
        };
        self.input.percents.max_alive(desired) as usize
    }

    fn min_healthy(&self) -> usize {
        self.input.percents.min_healthy(self.input.desired_count) as usize
    }

    fn alive(&self) -> usize {
        self.input
            .tasks
            .iter()
            .filter(|t| t.state != TaskState::Stopped)
            .count()
    }

    fn healthy(&self) -> usize {
        self.input.tasks.iter().filter(|t| t.is_healthy()).count()
    }

    /// Time passes: tasks asked to stop stop; pending tasks run (or fail, for a broken revision).
    pub fn advance(&mut self) {
        self.input.now = self.now() + SignedDuration::from_secs(60);
        let now = self.now();
        let deployments = self.input.deployments.clone();
        for t in &mut self.input.tasks {
            if t.state == TaskState::Stopped {
                continue;
            }
            if t.desired_stopped {
                t.state = TaskState::Stopped;
                t.stopped_at = Some(now);
                t.stop_code = Some(StopCode::ServiceSchedulerInitiated);
                continue;
            }
            if t.state == TaskState::Pending {
                let td = deployments
                    .iter()
                    .find(|d| d.id == t.deployment)
                    .map(|d| d.task_definition.clone())
                    .unwrap_or_default();
                let flaky = self
                    .flaky
                    .iter()
                    .any(|(f, percent, seed)| *f == td && pick(&t.name, *seed) % 100 < *percent);
                if self.broken.contains(&td) || flaky {
                    t.state = TaskState::Stopped;
                    t.stopped_at = Some(now);
                    t.stop_code = Some(StopCode::TaskFailedToStart);
                } else {
                    t.state = TaskState::Running;
                    t.started_at = Some(now);
                    t.health = Health::Healthy { since: now };
                }
            }
        }
    }

    /// Plans and applies the plan, checking the bounds.
    pub fn step(&mut self) -> &Plan {
        let healthy_before = self.healthy();
        let plan = plan(&self.input);
        for stop in &plan.stops {
            let t = self
                .input
                .tasks
                .iter_mut()
                .find(|t| t.name == stop.task)
                .unwrap();
            t.desired_stopped = true;
            t.stopped_reason = Some(stop.reason.clone());
        }
        for start in &plan.starts {
            let zone = start.zone.clone().or_else(|| Some(self.spread_zone()));
            self.input.tasks.push(TaskView {
                name: format!("t{}", self.next_name),
                deployment: start.deployment.clone(),
                state: TaskState::Pending,
                desired_stopped: false,
                health: Health::Unknown,
                zone,
                node: start.node.clone(),
                created_at: self.now(),
                started_at: None,
                stopped_at: None,
                stop_code: None,
                stopped_reason: None,
                protected_until: None,
                stuck_rebalancing: false,
            });
            self.next_name += 1;
        }
        assert!(
            plan.starts.is_empty() || self.alive() <= self.max_alive(),
            "{} alive > {} after {:?}",
            self.alive(),
            self.max_alive(),
            plan.starts
        );
        if self.healthy() < healthy_before {
            assert!(
                self.healthy() >= self.min_healthy(),
                "healthy {} < minimum",
                self.healthy()
            );
        }
        self.input.deployments = plan.deployments.clone();
        self.input.previously_steady = plan.steady;
        self.events.extend(plan.events.iter().cloned());
        self.plans.push(plan);
        self.plans.last().unwrap()
    }

    /// The oldest live task stops by itself (its essential container exits).
    pub fn kill_oldest(&mut self) {
        let now = self.now();
        if let Some(t) = self.input.tasks.iter_mut().find(|t| t.is_live()) {
            t.state = TaskState::Stopped;
            t.stopped_at = Some(now);
            t.stop_code = Some(StopCode::EssentialContainerExited);
        }
    }

    /// The scheduler's spread: the zone with the fewest live tasks.
    fn spread_zone(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = ["a", "b", "c"].iter().map(|z| (*z, 0)).collect();
        for t in self.input.tasks.iter().filter(|t| t.is_live()) {
            if let Some(n) = t.zone.as_deref().and_then(|z| counts.get_mut(z)) {
                *n += 1;
            }
        }
        counts
            .iter()
            .min_by_key(|(_, n)| **n)
            .unwrap()
            .0
            .to_string()
    }

    /// Steps until the plan is steady.
    fn run(&mut self, limit: usize) {
        for _ in 0..limit {
            if self.step().steady {
                return;
            }
            self.advance();
        }
        panic!("not steady after {limit} steps: {:#?}", self.plans.last());
    }

    fn live_per_zone(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for t in self.input.tasks.iter().filter(|t| t.is_live()) {
            *counts
                .entry(t.zone.clone().unwrap_or_default())
                .or_default() += 1;
        }
        counts
    }
}

/// A fixed pseudo-random number for a task name (FNV-1a).
fn pick(name: &str, seed: u64) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn assert_rolled_out(world: &World, td: &str, desired: usize) {
    let primary = &world.input.deployments[0];
    assert_eq!(primary.task_definition, td);
    assert_eq!(primary.rollout_state, Some(RolloutState::Completed));
    let live: Vec<&TaskView> = world.input.tasks.iter().filter(|t| t.is_live()).collect();
    assert_eq!(live.len(), desired);
    assert!(
        live.iter()
            .all(|t| t.deployment == primary.id && t.is_healthy())
    );
    assert!(
        world
            .input
            .tasks
            .iter()
            .all(|t| t.is_live() || t.state == TaskState::Stopped)
    );
}

#[test]
fn a_good_rollout_at_100_200_completes_within_the_bounds() {
    let mut world = World::steady(4, 100, 200);
    world.input.task_definition = TD2.into();
    world.run(20);
    assert_rolled_out(&world, TD2, 4);
    let completed = Event::DeploymentCompleted {
        deployment: "ecs-svc/2".into(),
    };
    let at = world
        .events
        .iter()
        .position(|e| *e == completed)
        .expect("completed");
    assert_eq!(world.events[at + 1], Event::SteadyState);
    // Start first: the first plan starts four and stops none.
    assert_eq!(
        (world.plans[0].starts.len(), world.plans[0].stops.len()),
        (4, 0)
    );
}

#[test]
fn a_good_rollout_at_50_100_completes_within_the_bounds() {
    let mut world = World::steady(4, 50, 100);
    world.input.task_definition = TD2.into();
    world.run(20);
    assert_rolled_out(&world, TD2, 4);
    // Stop first: the first plan stops two and starts none.
    assert_eq!(
        (world.plans[0].starts.len(), world.plans[0].stops.len()),
        (0, 2)
    );
}

#[test]
fn a_good_rollout_at_0_100_and_odd_counts_completes() {
    for (desired, min, max) in [
        (3, 0, 100),
        (5, 50, 150),
        (7, 100, 150),
        (1, 100, 200),
        (1, 0, 100),
    ] {
        let mut world = World::steady(desired, min, max);
        world.input.task_definition = TD2.into();
        world.run(40);
        assert_rolled_out(&world, TD2, desired);
    }
}

#[test]
fn a_broken_revision_trips_the_breaker_at_the_threshold_and_rolls_back() {
    // desired 2 at 100/150: one new task at a time, so failures arrive one by one.
    let mut world = World::steady(2, 100, 150);
    world.input.circuit_breaker = DeploymentCircuitBreaker {
        enable: true,
        rollback: true,
        ..Default::default()
    };
    world.input.task_definition = TD2.into();
    world.broken = vec![TD2.into()];
    let threshold = failure_threshold(2, None);
    let mut tripped = None;
    for step in 0..60 {
        let plan = world.step().clone();
        let failed = plan
            .deployments
            .iter()
            .find(|d| d.id == "ecs-svc/2")
            .unwrap();
        if failed.rollout_state == Some(RolloutState::Failed) {
            assert_eq!(
                failed.failed_tasks, threshold,
                "trips at exactly the threshold"
            );
            tripped = Some(step);
            break;
        }
        assert!(failed.failed_tasks < threshold);
        world.advance();
    }
    assert!(tripped.is_some(), "the breaker trips");
    assert!(world.events.contains(&Event::UnableToStartTasks));
    // Old tasks kept serving throughout (checked at each step); the rollback converges on web:1.
    world.advance();
    world.run(20);
    assert_rolled_out(&world, TD1, 2);
    let primary = &world.input.deployments[0];
    assert_eq!(primary.id, "ecs-svc/3");
    assert_eq!(primary.rolled_back_from.as_deref(), Some(TD2));

    // It never resumes by itself: the spec still says web:2.
    for _ in 0..5 {
        world.advance();
        let plan = world.step();
        assert!(plan.starts.is_empty() && plan.stops.is_empty());
        assert_eq!(plan.primary().id, "ecs-svc/3");
    }
}

#[test]
fn a_broken_revision_at_50_100_keeps_the_minimum_serving() {
    let mut world = World::steady(4, 50, 100);
    world.input.circuit_breaker = DeploymentCircuitBreaker {
        enable: true,
        rollback: true,
        ..Default::default()
    };
    world.input.task_definition = TD2.into();
    world.broken = vec![TD2.into()];
    for _ in 0..60 {
        let plan = world.step().clone();
        if plan.primary().id == "ecs-svc/3" {
            break;
        }
        world.advance();
    }
    assert_eq!(world.input.deployments[0].task_definition, TD1);
    assert!(world.healthy() >= 2);
    world.advance();
    world.run(20);
    assert_rolled_out(&world, TD1, 4);
}

#[test]
fn a_broken_first_deployment_without_rollback_stops_launching() {
    let mut world = World::steady(0, 100, 200);
    world.input.desired_count = 3;
    world.input.deployments.clear();
    world.input.previously_steady = false;
    world.input.circuit_breaker = DeploymentCircuitBreaker {
        enable: true,
        rollback: false,
        ..Default::default()
    };
    world.broken = vec![TD1.into()];
    for _ in 0..40 {
        world.step();
        world.advance();
    }
    let primary = &world.input.deployments[0];
    assert_eq!(primary.rollout_state, Some(RolloutState::Failed));
    let started: usize = world.plans.iter().map(|p| p.starts.len()).sum();
    assert!((3..10).contains(&started), "{started} tasks launched");
    assert!(world.plans.last().unwrap().starts.is_empty());
}

#[test]
fn scaling_6_to_3_over_3_zones_leaves_one_per_zone() {
    let mut world = World::steady(6, 100, 200);
    world.input.az_rebalancing = true;
    world.input.desired_count = 3;
    world.run(10);
    let zones = world.live_per_zone();
    assert_eq!(
        zones,
        BTreeMap::from([("a".into(), 1), ("b".into(), 1), ("c".into(), 1)])
    );
}

#[test]
fn an_unbalanced_service_is_rebalanced() {
    let mut world = World::steady(6, 100, 200);
    world.input.az_rebalancing = true;
    // A zone outage left everything in a and b.
    for t in &mut world.input.tasks {
        if t.zone.as_deref() == Some("c") {
            t.zone = Some("a".into());
        }
    }
    world.input.previously_steady = false;
    world.run(30);
    let zones = world.live_per_zone();
    assert_eq!(
        zones,
        BTreeMap::from([("a".into(), 2), ("b".into(), 2), ("c".into(), 2)])
    );
    assert!(
        world
            .events
            .iter()
            .any(|e| matches!(e, Event::NotAzBalanced { .. }))
    );
    assert!(
        world
            .events
            .iter()
            .any(|e| matches!(e, Event::AzBalanced { .. }))
    );
}

#[test]
fn a_daemon_deployment_replaces_each_node_task() {
    let mut world = World::steady(0, 0, 100);
    world.input.scheduling = SchedulingStrategy::Daemon;
    world.input.percents = Percents::resolve(SchedulingStrategy::Daemon, None);
    world.input.nodes = vec!["n1".into(), "n2".into(), "n3".into()];
    world.input.previously_steady = false;
    world.run(10);
    assert_eq!(
        world.input.tasks.iter().filter(|t| t.is_healthy()).count(),
        3
    );

    world.input.task_definition = TD2.into();
    for _ in 0..10 {
        let steady = world.step().steady;
        for node in &world.input.nodes {
            let here = world
                .input
                .tasks
                .iter()
                .filter(|t| t.state != TaskState::Stopped && t.node.as_ref() == Some(node))
                .count();
            assert!(here <= 1, "two tasks on {node}");
        }
        if steady {
            break;
        }
        world.advance();
    }
    assert_eq!(world.input.deployments[0].task_definition, TD2);
    assert_eq!(
        world.input.deployments[0].rollout_state,
        Some(RolloutState::Completed)
    );
}
