//! BLUE_GREEN, LINEAR and CANARY deployments in the planner: stages, traffic, bounds, rollback.

use std::time::Duration;

use proptest::prelude::*;

use super::sim::World;
use super::support::*;
use crate::api::service::{
    DeploymentCircuitBreaker, DeploymentConfiguration, DeploymentStatus, RolloutState,
    ServiceDeploymentStatus,
};

use crate::service::plan::{Event, StopRequest, TaskView, plan};
use crate::service::strategy::{HookVerdict, Settings, Stage, Traffic};

fn settings(json: serde_json::Value) -> Settings {
    let config: DeploymentConfiguration = serde_json::from_value(json).unwrap();
    Settings::from_config(Some(&config), Duration::from_secs(60)).unwrap()
}

/// A steady service of `desired` web:1 tasks, asked to deploy web:2 with `json`'s strategy.
fn deploying(desired: usize, json: serde_json::Value) -> World {
    let mut world = World::steady(desired, 100, 200);
    world.input.strategy = Some(settings(json));
    // The COMPLETED deployment ran with the same strategy.
    world.input.deployments[0].strategy = world.input.strategy.as_ref().map(|s| s.strategy);
    world.input.task_definition = TD2.into();
    world
}

fn alive_of(world: &World, deployment: &str) -> usize {
    world
        .input
        .tasks
        .iter()
        .filter(|t| t.deployment == deployment && t.is_alive() && !t.desired_stopped)
        .count()
}

fn stages(world: &World) -> Vec<&'static str> {
    world
        .events
        .iter()
        .filter_map(|e| match e {
            Event::LifecycleStage { stage, .. } => Some(*stage),
            _ => None,
        })
        .collect()
}

/// Steps (a minute each) until `done` holds on the world, at most `limit` times.
fn run_until(world: &mut World, limit: usize, mut done: impl FnMut(&World) -> bool) {
    for _ in 0..limit {
        world.step();
        if done(world) {
            return;
        }
        world.advance();
    }
    panic!(
        "not done after {limit} steps: {:#?}",
        world.input.deployments
    );
}

fn in_stage(world: &World, stage: Stage) -> bool {
    world.input.deployments[0].lifecycle_stage == Some(stage)
}

#[test]
fn blue_green_switches_production_at_once_after_test_traffic_and_removes_blue_after_bake_time() {
    let mut world = deploying(
        4,
        serde_json::json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 3}),
    );
    let mut test_on_green_at = None;
    let mut production_on_green_at = None;
    let mut blue_first_stopped_at = None;
    for i in 0..60 {
        let plan = world.step().clone();
        let traffic = plan
            .traffic
            .clone()
            .expect("a staged service says where traffic goes");
        if traffic.test == "ecs-svc/2" && test_on_green_at.is_none() {
            test_on_green_at = Some(i);
        }
        if traffic.production.iter().any(|(d, _)| d == "ecs-svc/2")
            && production_on_green_at.is_none()
        {
            production_on_green_at = Some(i);
            assert_eq!(
                traffic.production,
                vec![("ecs-svc/2".to_string(), 100.0)],
                "all at once"
            );
            assert_eq!(alive_of(&world, "ecs-svc/1"), 4, "blue still full");
        }
        if production_on_green_at.is_none() {
            assert_eq!(traffic.production, vec![("ecs-svc/1".to_string(), 100.0)]);
        }
        let blue_stopped = plan.stops.iter().any(|s| {
            world
                .input
                .tasks
                .iter()
                .any(|t| t.name == s.task && t.deployment == "ecs-svc/1")
        });
        if blue_stopped && blue_first_stopped_at.is_none() {
            blue_first_stopped_at = Some(i);
            assert!(
                in_stage(&world, Stage::CleanUp),
                "blue goes in CLEAN_UP only"
            );
        }
        if plan.steady {
            break;
        }
        world.advance();
    }
    let (test, prod, clean) = (
        test_on_green_at.unwrap(),
        production_on_green_at.unwrap(),
        blue_first_stopped_at.unwrap(),
    );
    assert!(test < prod, "test traffic reaches green first");
    assert!(
        clean >= prod + 3,
        "bake time of 3 minutes holds blue ({prod} → {clean})"
    );
    assert_eq!(
        stages(&world),
        Stage::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>()
    );
    let green = &world.input.deployments[0];
    assert_eq!(green.rollout_state, Some(RolloutState::Completed));
    assert_eq!(
        green.service_deployment_status,
        Some(ServiceDeploymentStatus::Successful)
    );
    assert_eq!(alive_of(&world, "ecs-svc/2"), 4);
    assert_eq!(alive_of(&world, "ecs-svc/1"), 0);
    let blue = world
        .input
        .deployments
        .iter()
        .find(|d| d.id == "ecs-svc/1")
        .unwrap();
    assert_eq!(blue.status, DeploymentStatus::Inactive);
}

#[test]
fn canary_sends_its_share_then_everything() {
    let mut world = deploying(
        10,
        serde_json::json!({"strategy": "CANARY",
            "canaryConfiguration": {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 2}}),
    );
    let mut splits = Vec::new();
    run_until(&mut world, 80, |w| {
        let t = w.plans.last().unwrap().traffic.clone().unwrap();
        if splits.last() != Some(&t.production) {
            splits.push(t.production.clone());
        }
        w.plans.last().unwrap().steady
    });
    assert_eq!(
        splits,
        vec![
            vec![("ecs-svc/1".to_string(), 100.0)],
            vec![
                ("ecs-svc/1".to_string(), 80.0),
                ("ecs-svc/2".to_string(), 20.0)
            ],
            vec![("ecs-svc/2".to_string(), 100.0)],
        ]
    );
    assert!(world.events.contains(&Event::TrafficShifted {
        deployment: "ecs-svc/2".into(),
        percent: 20.0
    }));
}

#[test]
fn linear_steps_through_the_shares() {
    let mut world = deploying(
        4,
        serde_json::json!({"strategy": "LINEAR",
            "linearConfiguration": {"stepPercent": 25.0, "stepBakeTimeInMinutes": 1}}),
    );
    let mut greens = Vec::new();
    run_until(&mut world, 80, |w| {
        let t = w.plans.last().unwrap().traffic.clone().unwrap();
        let green = t
            .production
            .iter()
            .find(|(d, _)| d == "ecs-svc/2")
            .map_or(0.0, |(_, p)| *p);
        if greens.last() != Some(&green) {
            greens.push(green);
        }
        w.plans.last().unwrap().steady
    });
    assert_eq!(greens, vec![0.0, 25.0, 50.0, 75.0, 100.0]);
}

#[test]
fn a_stop_request_returns_production_to_blue_at_once_and_scales_green_away() {
    let mut world = deploying(
        4,
        serde_json::json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 10}),
    );
    run_until(&mut world, 40, |w| in_stage(w, Stage::BakeTime));
    world.advance();
    world.input.stop_request = Some(StopRequest {
        deployment: "ecs-svc/2".into(),
        stop_type: None,
    });
    let plan = world.step().clone();
    assert_eq!(
        plan.traffic,
        Some(Traffic::all_to("ecs-svc/1")),
        "all back at once"
    );
    let blue = plan.primary();
    assert_eq!(
        (blue.id.as_str(), blue.status),
        ("ecs-svc/1", DeploymentStatus::Primary)
    );
    let green = plan
        .deployments
        .iter()
        .find(|d| d.id == "ecs-svc/2")
        .unwrap();
    assert_eq!(green.rollout_state, Some(RolloutState::Failed));
    assert_eq!(
        green.service_deployment_status,
        Some(ServiceDeploymentStatus::RollbackInProgress)
    );
    assert!(
        plan.stops.is_empty() && plan.starts.is_empty(),
        "this pass moves the traffic only"
    );
    world.advance();
    let plan = world.step().clone();
    assert_eq!(plan.stops.len(), 4, "then green's tasks go");
    assert!(
        plan.starts.is_empty(),
        "blue's tasks still run: nothing to start"
    );
    world.advance();
    let plan = world.step().clone();
    let green = plan
        .deployments
        .iter()
        .find(|d| d.id == "ecs-svc/2")
        .unwrap();
    assert_eq!(
        green.service_deployment_status,
        Some(ServiceDeploymentStatus::RollbackSuccessful)
    );
    assert!(plan.steady, "steady on blue, not deploying web:2 again");
    assert!(plan.deployments.iter().all(|d| d.id != "ecs-svc/3"));
}

#[test]
fn a_stop_request_in_clean_up_is_rejected() {
    let mut world = deploying(4, serde_json::json!({"strategy": "BLUE_GREEN"}));
    run_until(&mut world, 40, |w| in_stage(w, Stage::CleanUp));
    world.input.stop_request = Some(StopRequest {
        deployment: "ecs-svc/2".into(),
        stop_type: None,
    });
    let plan = plan(&world.input);
    assert!(
        plan.stop_request_rejected
            .clone()
            .unwrap()
            .contains("CLEAN_UP")
    );
    assert_eq!(plan.primary().id, "ecs-svc/2");
}

#[test]
fn the_circuit_breaker_returns_to_blue_without_a_new_deployment() {
    let mut world = deploying(4, serde_json::json!({"strategy": "BLUE_GREEN"}));
    world.input.circuit_breaker = DeploymentCircuitBreaker {
        enable: true,
        rollback: true,
        ..Default::default()
    };
    world.broken.push(TD2.into());
    run_until(&mut world, 40, |w| w.input.deployments[0].id == "ecs-svc/1");
    assert!(world.events.contains(&Event::RollingBack {
        deployment: "ecs-svc/2".into(),
        to: "ecs-svc/1".into()
    }));
    assert_eq!(
        world.plans.last().unwrap().traffic,
        Some(Traffic::all_to("ecs-svc/1"))
    );
    assert_eq!(alive_of(&world, "ecs-svc/1"), 4, "blue never stopped");
    for _ in 0..5 {
        world.advance();
        world.step();
    }
    assert!(world.input.deployments.iter().all(|d| d.id != "ecs-svc/3"));
}

#[test]
fn a_failed_hook_rolls_back() {
    let mut world = deploying(2, serde_json::json!({"strategy": "BLUE_GREEN"}));
    world
        .input
        .hooks
        .insert(Stage::PostScaleUp, HookVerdict::Pending);
    run_until(&mut world, 40, |w| in_stage(w, Stage::PostScaleUp));
    world.advance();
    world.step();
    assert!(
        in_stage(&world, Stage::PostScaleUp),
        "the pending hook holds"
    );
    world.input.hooks.insert(
        Stage::PostScaleUp,
        HookVerdict::Failed("exit code 1".into()),
    );
    world.advance();
    let plan = world.step().clone();
    assert_eq!(plan.primary().id, "ecs-svc/1");
    assert!(plan.events.iter().any(|e| matches!(
        e,
        Event::HookFailed {
            stage: "POST_SCALE_UP",
            ..
        }
    )));
    let green = plan
        .deployments
        .iter()
        .find(|d| d.id == "ecs-svc/2")
        .unwrap();
    assert!(
        green
            .rollout_state_reason
            .as_deref()
            .unwrap()
            .contains("exit code 1")
    );
}

/// A service's first deployment has no blue: a failed hook fails it (ECS: FAILED), it does not stay
/// IN_PROGRESS at its stage, and it starts nothing more.
#[test]
fn a_failed_hook_fails_a_first_deployment() {
    let mut world = World::steady(2, 100, 200);
    world.input.strategy = Some(settings(serde_json::json!({"strategy": "BLUE_GREEN"})));
    world.input.deployments.clear();
    world.input.tasks.clear();
    world.input.previously_steady = false;
    world.input.hooks.insert(
        Stage::PostScaleUp,
        HookVerdict::Failed("exit code 1".into()),
    );
    run_until(&mut world, 40, |w| {
        w.input.deployments.first().and_then(|d| d.rollout_state) == Some(RolloutState::Failed)
    });
    let primary = &world.input.deployments[0];
    assert_eq!(primary.lifecycle_stage, Some(Stage::PostScaleUp));
    assert!(
        primary
            .rollout_state_reason
            .as_deref()
            .unwrap()
            .contains("exit code 1")
    );
    assert!(
        world
            .events
            .iter()
            .any(|e| matches!(e, Event::HookFailed { .. }))
    );
    assert!(
        world
            .events
            .iter()
            .any(|e| matches!(e, Event::DeploymentFailed { .. }))
    );
    let alive = world.input.tasks.iter().filter(|t| t.is_alive()).count();
    world.advance();
    let plan = world.step().clone();
    assert!(
        plan.starts.is_empty(),
        "a failed first deployment starts nothing more"
    );
    assert_eq!(
        world.input.tasks.iter().filter(|t| t.is_alive()).count(),
        alive
    );
}

#[test]
fn a_rolling_service_keeps_its_load_balancer_selecting_every_task() {
    let mut world = World::steady(3, 100, 200);
    world.input.task_definition = TD2.into();
    let plan = world.step();
    assert_eq!(plan.traffic, None);
    assert!(plan.primary().strategy.is_none());
}

proptest! {
    /// Any strategy, size and failure: within blue + green at 100 % each (the simulation checks
    /// 2 × desiredCount alive), and every deployment ends, completed or rolled back.
    #[test]
    fn every_staged_deployment_ends_within_the_bounds(
        desired in 1usize..7, strategy in 0usize..3, broken in any::<bool>(), bake in 0i32..3,
        stop_at in proptest::option::of(0usize..30),
    ) {
        let json = match strategy {
            0 => serde_json::json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": bake}),
            1 => serde_json::json!({"strategy": "CANARY", "bakeTimeInMinutes": bake,
                "canaryConfiguration": {"canaryBakeTimeInMinutes": bake}}),
            _ => serde_json::json!({"strategy": "LINEAR", "bakeTimeInMinutes": bake,
                "linearConfiguration": {"stepPercent": 30.0, "stepBakeTimeInMinutes": bake}}),
        };
        let mut world = deploying(desired, json);
        world.input.circuit_breaker = DeploymentCircuitBreaker { enable: true, rollback: true, ..Default::default() };
        if broken { world.broken.push(TD2.into()); }
        let mut ended = false;
        for i in 0..120 {
            if Some(i) == stop_at {
                world.input.stop_request = Some(StopRequest { deployment: "ecs-svc/2".into(), stop_type: None });
            }
            // Production traffic only to a revision with a healthy task (when one has any), as
            // the tasks were when planned.
            let before = world.input.tasks.clone();
            let healthy = |d: &str| before.iter().any(|t: &TaskView| t.deployment == d && t.is_healthy());
            let plan = world.step().clone();
            if let Some(t) = &plan.traffic && (healthy("ecs-svc/1") || healthy("ecs-svc/2")) {
                for (d, _) in &t.production {
                    prop_assert!(healthy(d), "production to {d} with no healthy task: {:?}", t);
                }
            }
            if plan.steady { ended = true; break; }
            world.advance();
        }
        prop_assert!(ended, "{:#?}", world.input.deployments);
        let green = world.input.deployments.iter().find(|d| d.id == "ecs-svc/2").unwrap();
        prop_assert!(matches!(green.rollout_state, Some(RolloutState::Completed) | Some(RolloutState::Failed)));
    }
}

#[test]
fn a_rolling_deployment_in_progress_keeps_every_task_serving_when_the_service_turns_blue_green() {
    let mut world = World::steady(3, 100, 200);
    world.input.task_definition = TD2.into();
    world.step();
    world.advance();
    // Switched to BLUE_GREEN while ecs-svc/2 rolls: it finishes ROLLING, every ready task serving.
    world.input.strategy = Some(settings(serde_json::json!({"strategy": "BLUE_GREEN"})));
    assert_eq!(world.step().traffic, None);
    run_until(&mut world, 20, |w| w.plans.last().unwrap().steady);
    assert_eq!(
        world.plans.last().unwrap().traffic,
        Some(Traffic::all_to("ecs-svc/2")),
        "then the load balancer selects the PRIMARY's tasks"
    );
}
