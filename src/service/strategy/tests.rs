//! The stage machine, stage by stage and strategy by strategy.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::api::service::{CanaryConfiguration, DeploymentConfiguration, LinearConfiguration};

const MINUTE: Duration = Duration::from_secs(60);

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

fn settings(json: serde_json::Value) -> Settings {
    let config: DeploymentConfiguration = serde_json::from_value(json).unwrap();
    Settings::from_config(Some(&config), MINUTE).expect("a traffic-shifting strategy")
}

fn blue_green() -> Settings {
    settings(serde_json::json!({"strategy": "BLUE_GREEN"}))
}

/// A deployment of 4 tasks being walked through its stages.
struct Walk {
    settings: Settings,
    green: Revision,
    blue: Option<Revision>,
    others: usize,
    stage: Option<Stage>,
    entered: Option<Timestamp>,
    recorded: Option<f64>,
    hooks: BTreeMap<Stage, HookVerdict>,
    now: Timestamp,
}

impl Walk {
    fn new(settings: Settings) -> Self {
        Walk {
            settings,
            green: Revision::default(),
            blue: Some(Revision {
                healthy: 4,
                alive: 4,
            }),
            others: 0,
            stage: None,
            entered: None,
            recorded: None,
            hooks: BTreeMap::new(),
            now: at(0),
        }
    }

    fn step(&mut self) -> Output {
        let out = step(&Input {
            settings: &self.settings,
            desired: 4,
            green: self.green,
            blue: self.blue,
            others_alive: self.others,
            stage: self.stage,
            entered_at: self.entered,
            recorded_percent: self.recorded,
            hooks: &self.hooks,
            now: self.now,
        });
        self.stage = Some(out.stage);
        self.entered = Some(out.entered_at);
        self.recorded = Some(out.production_percent);
        // The world follows: green's tasks start healthy, blue's stop.
        self.green = Revision {
            healthy: out.green_target,
            alive: out.green_target,
        };
        if let Some(b) = &mut self.blue {
            b.healthy = out.blue_target;
            b.alive = out.blue_target;
        }
        out
    }

    /// Steps until `stage` is entered.
    fn until(&mut self, stage: Stage) -> Output {
        for _ in 0..20 {
            let out = self.step();
            if out.stage == stage {
                return out;
            }
        }
        panic!("{stage:?} not reached, at {:?}", self.stage);
    }

    fn wait(&mut self, secs: i64) {
        self.now += SignedDuration::from_secs(secs);
    }
}

#[test]
fn a_blue_green_deployment_enters_each_stage_in_ecs_order_one_per_pass() {
    let mut w = Walk::new(blue_green());
    let mut entered = Vec::new();
    for _ in 0..30 {
        let out = w.step();
        for e in &out.events {
            if let StageEvent::Entered(s) = e {
                entered.push(*s);
            }
        }
        assert!(
            out.events.len() <= 1,
            "one stage per pass: {:?}",
            out.events
        );
        if out.completed {
            assert_eq!(out.status, ServiceDeploymentStatus::Successful);
            break;
        }
        assert_eq!(out.status, ServiceDeploymentStatus::InProgress);
    }
    assert_eq!(entered, Stage::ALL.to_vec());
}

#[test]
fn green_scales_up_beside_blue_and_scale_up_waits_for_it_to_be_healthy() {
    let mut w = Walk::new(blue_green());
    let out = w.step();
    assert_eq!(
        (out.stage, out.green_target, out.blue_target),
        (Stage::ReconcileService, 0, 4)
    );
    let out = w.until(Stage::ScaleUp);
    assert_eq!((out.green_target, out.blue_target), (4, 4));
    // Green's tasks are not healthy yet: SCALE_UP holds.
    w.green = Revision {
        healthy: 2,
        alive: 4,
    };
    let out = step(&Input {
        settings: &w.settings,
        desired: 4,
        green: w.green,
        blue: w.blue,
        others_alive: 0,
        stage: w.stage,
        entered_at: w.entered,
        recorded_percent: w.recorded,
        hooks: &w.hooks,
        now: w.now,
    });
    assert_eq!(out.stage, Stage::ScaleUp);
    assert_eq!(out.production_percent, 0.0);
}

#[test]
fn reconcile_service_waits_for_other_revisions_to_go() {
    let mut w = Walk::new(blue_green());
    w.others = 2;
    assert_eq!(w.step().stage, Stage::ReconcileService);
    assert_eq!(w.step().stage, Stage::ReconcileService);
    w.others = 0;
    assert_eq!(w.step().stage, Stage::PreScaleUp);
}

#[test]
fn test_traffic_reaches_green_before_production_traffic() {
    let mut w = Walk::new(blue_green());
    let out = w.until(Stage::PostScaleUp);
    assert!(!out.test_to_green);
    let out = w.until(Stage::TestTrafficShift);
    assert!(out.test_to_green);
    assert_eq!(out.production_percent, 0.0);
    let out = w.until(Stage::PreProductionTrafficShift);
    assert_eq!(out.production_percent, 0.0);
    let out = w.step();
    assert_eq!(out.stage, Stage::ProductionTrafficShift);
    assert_eq!(out.production_percent, 100.0, "BLUE_GREEN: all at once");
}

#[test]
fn bake_time_keeps_blue_at_full_size_then_clean_up_removes_it() {
    let mut w = Walk::new(settings(
        serde_json::json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}),
    ));
    let out = w.until(Stage::BakeTime);
    assert_eq!(out.blue_target, 4);
    assert_eq!(out.production_percent, 100.0);
    assert_eq!(out.wake_at, Some(w.now + SignedDuration::from_mins(5)));
    w.wait(299);
    assert_eq!(w.step().stage, Stage::BakeTime, "not before 5 minutes");
    w.wait(1);
    let out = w.step();
    assert_eq!((out.stage, out.blue_target), (Stage::CleanUp, 0));
    assert!(!out.completed);
    let out = w.step();
    assert!(out.completed, "blue is gone");
}

#[test]
fn canary_sends_canary_percent_then_the_rest_after_its_bake_time() {
    let mut w = Walk::new(settings(serde_json::json!({"strategy": "CANARY",
        "canaryConfiguration": {"canaryPercent": 12.5, "canaryBakeTimeInMinutes": 3}})));
    let out = w.until(Stage::ProductionTrafficShift);
    assert_eq!(out.production_percent, 12.5);
    assert_eq!(out.wake_at, Some(w.now + SignedDuration::from_mins(3)));
    w.wait(179);
    let out = w.step();
    assert_eq!(
        (out.stage, out.production_percent),
        (Stage::ProductionTrafficShift, 12.5)
    );
    w.wait(1);
    let out = w.step();
    assert_eq!(
        (out.stage, out.production_percent),
        (Stage::PostProductionTrafficShift, 100.0)
    );
}

#[test]
fn canary_defaults_are_five_percent_for_ten_minutes() {
    let s = settings(serde_json::json!({"strategy": "CANARY"}));
    assert_eq!(
        s.shift,
        Shift::Canary {
            percent: 5.0,
            bake: 10 * MINUTE
        }
    );
    let s = settings(serde_json::json!({"strategy": "LINEAR"}));
    assert_eq!(
        s.shift,
        Shift::Linear {
            step: 10.0,
            bake: 6 * MINUTE
        }
    );
    assert_eq!(s.bake_time, Duration::ZERO);
    assert_eq!(
        Settings::from_config(
            Some(&DeploymentConfiguration {
                strategy: Some(DeploymentStrategy::Rolling),
                ..Default::default()
            }),
            MINUTE
        ),
        None
    );
    let _ = (
        CanaryConfiguration::default(),
        LinearConfiguration::default(),
    );
}

#[test]
fn linear_moves_step_percent_after_each_step_bake_time_and_does_not_wait_after_100() {
    let mut w = Walk::new(settings(serde_json::json!({"strategy": "LINEAR",
        "linearConfiguration": {"stepPercent": 30.0, "stepBakeTimeInMinutes": 2}})));
    let out = w.until(Stage::ProductionTrafficShift);
    assert_eq!(out.production_percent, 30.0);
    let mut seen = vec![30.0];
    for _ in 0..3 {
        w.wait(120);
        let out = w.step();
        seen.push(out.production_percent);
        if out.stage != Stage::ProductionTrafficShift {
            assert_eq!(out.stage, Stage::PostProductionTrafficShift);
            assert_eq!(out.wake_at, None);
        } else {
            assert!(
                out.events
                    .contains(&StageEvent::Shifted(out.production_percent))
            );
        }
    }
    assert_eq!(seen, vec![30.0, 60.0, 90.0, 100.0]);
}

#[test]
fn linear_with_no_step_bake_time_shifts_everything_at_once() {
    let s = settings(serde_json::json!({"strategy": "LINEAR",
        "linearConfiguration": {"stepPercent": 3.0, "stepBakeTimeInMinutes": 0}}));
    assert_eq!(s.production_share(Duration::ZERO), (100.0, None));
    let s = settings(serde_json::json!({"strategy": "LINEAR",
        "linearConfiguration": {"stepPercent": 3.3, "stepBakeTimeInMinutes": 1}}));
    assert_eq!(s.production_share(2 * MINUTE), (9.9, Some(3 * MINUTE)));
}

#[test]
fn a_pending_hook_holds_its_stage_and_a_failed_one_asks_for_a_rollback() {
    let mut w = Walk::new(blue_green());
    w.hooks
        .insert(Stage::PostTestTrafficShift, HookVerdict::Pending);
    let out = w.until(Stage::PostTestTrafficShift);
    assert_eq!(out.rollback, None);
    for _ in 0..3 {
        assert_eq!(w.step().stage, Stage::PostTestTrafficShift);
    }
    w.hooks.insert(
        Stage::PostTestTrafficShift,
        HookVerdict::Failed("smoke test failed".into()),
    );
    let out = w.step();
    assert_eq!(out.rollback.as_deref(), Some("smoke test failed"));
    assert_eq!(out.production_percent, 0.0);
    w.hooks
        .insert(Stage::PostTestTrafficShift, HookVerdict::Succeeded);
    assert_eq!(w.step().stage, Stage::PreProductionTrafficShift);
}

#[test]
fn a_failed_hook_in_clean_up_does_not_roll_back() {
    let mut w = Walk::new(blue_green());
    w.hooks
        .insert(Stage::CleanUp, HookVerdict::Failed("late".into()));
    w.blue = Some(Revision {
        healthy: 4,
        alive: 4,
    });
    let out = w.until(Stage::CleanUp);
    assert_eq!(out.rollback, None);
    assert_eq!(w.step().rollback, None);
}

#[test]
fn without_blue_the_first_deployment_walks_the_stages_with_all_traffic_on_green() {
    let mut w = Walk::new(settings(serde_json::json!({"strategy": "CANARY",
        "bakeTimeInMinutes": 60, "canaryConfiguration": {"canaryBakeTimeInMinutes": 60}})));
    w.blue = None;
    let out = w.until(Stage::PostScaleUp);
    assert_eq!(out.production_percent, 100.0, "green is all there is");
    // No canary bake and no bake time: nothing to hold, no time passes.
    let out = w.until(Stage::CleanUp);
    assert_eq!(out.blue_target, 0);
    assert!(w.step().completed);
}

proptest! {
    /// Whatever the counts and the stage, production traffic goes to a revision with a healthy
    /// task whenever either has one; no revision is asked for more than desiredCount tasks.
    #[test]
    fn production_traffic_never_goes_where_no_task_is_healthy(
        stage in 0usize..11, green_healthy in 0usize..5, blue_healthy in 0usize..5,
        has_blue in any::<bool>(), strategy in 0usize..3, elapsed in 0i64..3600,
    ) {
        let s = match strategy {
            0 => blue_green(),
            1 => settings(serde_json::json!({"strategy": "CANARY", "canaryConfiguration": {"canaryBakeTimeInMinutes": 5}})),
            _ => settings(serde_json::json!({"strategy": "LINEAR", "linearConfiguration": {"stepBakeTimeInMinutes": 1}})),
        };
        let hooks = BTreeMap::new();
        let blue = has_blue.then_some(Revision { healthy: blue_healthy, alive: 4 });
        let out = step(&Input {
            settings: &s,
            desired: 4,
            green: Revision { healthy: green_healthy, alive: 4 },
            blue,
            others_alive: 0,
            stage: Some(Stage::ALL[stage]),
            entered_at: Some(at(0)),
            recorded_percent: None,
            hooks: &hooks,
            now: at(elapsed),
        });
        let blue_healthy = blue.map_or(0, |b| b.healthy);
        if green_healthy + blue_healthy > 0 {
            if out.production_percent > 0.0 { prop_assert!(green_healthy > 0); }
            if out.production_percent < 100.0 { prop_assert!(blue_healthy > 0); }
        }
        prop_assert!((0.0..=100.0).contains(&out.production_percent));
        prop_assert!(out.green_target <= 4 && out.blue_target <= 4);
        if !has_blue { prop_assert_eq!(out.blue_target, 0); }
    }

    /// When tasks become healthy and hooks answer (success after a while), every deployment
    /// completes, for any settings.
    #[test]
    fn every_deployment_completes_when_tasks_and_hooks_answer(
        strategy in 0usize..3, percent_tenths in 30u32..=1000, bake in 0i32..4,
        pending in proptest::collection::vec(0usize..11, 0..4), has_blue in any::<bool>(),
    ) {
        let percent = f64::from(percent_tenths) / 10.0;
        let s = match strategy {
            0 => settings(serde_json::json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": bake})),
            1 => settings(serde_json::json!({"strategy": "CANARY", "bakeTimeInMinutes": bake,
                "canaryConfiguration": {"canaryPercent": percent, "canaryBakeTimeInMinutes": bake}})),
            _ => settings(serde_json::json!({"strategy": "LINEAR", "bakeTimeInMinutes": bake,
                "linearConfiguration": {"stepPercent": percent, "stepBakeTimeInMinutes": bake}})),
        };
        let mut w = Walk::new(s);
        if !has_blue { w.blue = None; }
        for p in &pending { w.hooks.insert(Stage::ALL[*p], HookVerdict::Pending); }
        let mut done = false;
        for pass in 0..500 {
            // Hooks answer after a while.
            if pass == 50 { w.hooks.clear(); }
            let out = w.step();
            if out.completed { done = true; break; }
            w.wait(30);
        }
        prop_assert!(done, "stuck in {:?}", w.stage);
    }
}
