//! BLUE_GREEN, LINEAR and CANARY deployments: a pure stage machine over ECS's lifecycle stages.
//!
//! The planner calls [`step`] on each pass of a deployment in progress with the service's
//! [`Settings`], the task counts of blue (the COMPLETED deployment being replaced) and green (the
//! new PRIMARY), the stage reached and when it was entered (kept in `status.deployments[]`), the
//! lifecycle hooks' verdicts and `now`; it returns the stage to be in, how many tasks each revision
//! runs, the traffic split and when to look again. At most one stage is entered per pass, so every
//! stage is written to status and announced before the next one starts.
//!
//! Stages, in ECS order, and what each does here:
//! RECONCILE_SERVICE (other revisions than blue and green scale to 0), PRE_SCALE_UP, SCALE_UP (green
//! to desiredCount beside blue; done when all of green is healthy), POST_SCALE_UP,
//! TEST_TRAFFIC_SHIFT (test traffic to green), POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT,
//! PRODUCTION_TRAFFIC_SHIFT (BLUE_GREEN: 100 % at once; CANARY: canaryPercent, then after
//! canaryBakeTimeInMinutes 100 %; LINEAR: stepPercent more after each stepBakeTimeInMinutes),
//! POST_PRODUCTION_TRAFFIC_SHIFT, BAKE_TIME (bakeTimeInMinutes with blue still at full size),
//! CLEAN_UP (blue to 0; the deployment completes when blue has no task left).
//!
//! A stage is left when its own work is done and its hooks succeeded; a failed hook asks for a
//! rollback ([`Output::rollback`]), which the planner carries out (production traffic back to blue
//! at once, green scaled away) at any stage before CLEAN_UP.

pub mod split;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::service::{DeploymentConfiguration, DeploymentStrategy, ServiceDeploymentStatus};

/// ECS deployment lifecycle stages, in order.
pub use crate::api::service::ServiceDeploymentLifecycleStage as Stage;

impl Stage {
    pub fn next(self) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| *s > self)
    }
}

/// How production traffic moves in PRODUCTION_TRAFFIC_SHIFT.
#[derive(Clone, Debug, PartialEq)]
pub enum Shift {
    /// BLUE_GREEN: all at once.
    AllAtOnce,
    /// CANARY: `percent` first, the rest after `bake`.
    Canary { percent: f64, bake: Duration },
    /// LINEAR: `step` percent more after each `bake` (no wait after 100 %).
    Linear { step: f64, bake: Duration },
}

/// A service's traffic-shifting settings, minutes already turned into durations.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub strategy: DeploymentStrategy,
    pub shift: Shift,
    /// `bakeTimeInMinutes`.
    pub bake_time: Duration,
}

/// ECS defaults.
pub const DEFAULT_CANARY_PERCENT: f64 = 5.0;
pub const DEFAULT_CANARY_BAKE_MINUTES: i32 = 10;
pub const DEFAULT_STEP_PERCENT: f64 = 10.0;
pub const DEFAULT_STEP_BAKE_MINUTES: i32 = 6;

impl Settings {
    /// The settings of `config` (None for ROLLING), one minute lasting `minute` (60 s, shorter only
    /// for tests: the operator's `--deployment-minute-seconds`).
    pub fn from_config(config: Option<&DeploymentConfiguration>, minute: Duration) -> Option<Self> {
        let config = config?;
        let minutes = |m: Option<i32>, default: i32| {
            minute.saturating_mul(u32::try_from(m.unwrap_or(default).max(0)).unwrap_or(0))
        };
        let shift = match config.strategy() {
            DeploymentStrategy::Rolling => return None,
            DeploymentStrategy::BlueGreen => Shift::AllAtOnce,
            DeploymentStrategy::Canary => {
                let c = config.canary_configuration.clone().unwrap_or_default();
                Shift::Canary {
                    percent: c.canary_percent.unwrap_or(DEFAULT_CANARY_PERCENT),
                    bake: minutes(c.canary_bake_time_in_minutes, DEFAULT_CANARY_BAKE_MINUTES),
                }
            }
            DeploymentStrategy::Linear => {
                let c = config.linear_configuration.clone().unwrap_or_default();
                Shift::Linear {
                    step: c.step_percent.unwrap_or(DEFAULT_STEP_PERCENT),
                    bake: minutes(c.step_bake_time_in_minutes, DEFAULT_STEP_BAKE_MINUTES),
                }
            }
        };
        Some(Settings {
            strategy: config.strategy(),
            shift,
            bake_time: minutes(config.bake_time_in_minutes, 0),
        })
    }

    /// Green's share of production traffic `elapsed` after PRODUCTION_TRAFFIC_SHIFT started, and
    /// when it changes next (after the start).
    pub fn production_share(&self, elapsed: Duration) -> (f64, Option<Duration>) {
        match &self.shift {
            Shift::AllAtOnce => (100.0, None),
            Shift::Canary { percent, bake } => {
                if *percent >= 100.0 || elapsed >= *bake {
                    (100.0, None)
                } else {
                    (*percent, Some(*bake))
                }
            }
            Shift::Linear { step, bake } => {
                let step = step.max(0.1);
                let steps_done = if bake.is_zero() {
                    u32::MAX
                } else {
                    u32::try_from(elapsed.as_nanos() / bake.as_nanos()).unwrap_or(u32::MAX)
                };
                let share = step * f64::from(steps_done.saturating_add(1));
                if share >= 100.0 - 1e-9 {
                    (100.0, None)
                } else {
                    // Tenths, as ECS counts them (3 × 3.3 is 9.9, not 9.899…).
                    (
                        (share * 10.0).round() / 10.0,
                        Some(bake.saturating_mul(steps_done + 1)),
                    )
                }
            }
        }
    }
}

/// A lifecycle hook's answer for a stage (several hooks of a stage: the worst counts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookVerdict {
    Succeeded,
    /// Still running, or waiting for a continue/rollback action.
    Pending,
    /// Roll back, and why.
    Failed(String),
}

/// One revision's tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Revision {
    /// Healthy tasks (RUNNING and passing health checks).
    pub healthy: usize,
    /// Tasks not stopped and not stopping.
    pub alive: usize,
}

/// What a pass knows.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub settings: &'a Settings,
    pub desired: usize,
    pub green: Revision,
    /// None when there is no COMPLETED deployment to replace (a service's first deployment).
    pub blue: Option<Revision>,
    /// Tasks still alive of other deployments (neither blue nor green).
    pub others_alive: usize,
    /// The stage reached, as recorded; None: the deployment has just started.
    pub stage: Option<Stage>,
    pub entered_at: Option<Timestamp>,
    /// Green's production share as last recorded.
    pub recorded_percent: Option<f64>,
    /// Verdicts of the hooks of each stage; a stage without hooks is absent (it succeeds).
    pub hooks: &'a BTreeMap<Stage, HookVerdict>,
    pub now: Timestamp,
}

/// Something to announce.
#[derive(Clone, Debug, PartialEq)]
pub enum StageEvent {
    /// The deployment entered `stage`.
    Entered(Stage),
    /// Green's production share changed to `percent` within PRODUCTION_TRAFFIC_SHIFT.
    Shifted(f64),
}

/// What to be and do.
#[derive(Clone, Debug, PartialEq)]
pub struct Output {
    pub stage: Stage,
    pub entered_at: Timestamp,
    /// Tasks green and blue should run.
    pub green_target: usize,
    pub blue_target: usize,
    /// Green's share of production traffic (blue has the rest), in percent.
    pub production_percent: f64,
    /// Test traffic goes to green (otherwise to blue).
    pub test_to_green: bool,
    /// Plan again then (a bake or a traffic step ends).
    pub wake_at: Option<Timestamp>,
    pub events: Vec<StageEvent>,
    /// The ECS ServiceDeployment status.
    pub status: ServiceDeploymentStatus,
    /// All stages done: the deployment is COMPLETED.
    pub completed: bool,
    /// A hook failed: roll back, and why.
    pub rollback: Option<String>,
}

/// One pass of the stage machine.
pub fn step(input: &Input<'_>) -> Output {
    let now = input.now;
    let mut events = Vec::new();
    let (mut stage, mut entered_at) = match (input.stage, input.entered_at) {
        (Some(stage), Some(at)) => (stage, at),
        (Some(stage), None) => (stage, now),
        (None, _) => {
            events.push(StageEvent::Entered(Stage::ReconcileService));
            (Stage::ReconcileService, now)
        }
    };
    let mut rollback = None;
    let mut completed = false;
    match input.hooks.get(&stage) {
        // The deployment has just started: RECONCILE_SERVICE is recorded first.
        _ if input.stage.is_none() => {}
        Some(HookVerdict::Failed(why)) if stage < Stage::CleanUp => rollback = Some(why.clone()),
        Some(HookVerdict::Pending) => {}
        _ => {
            if stage_done(input, stage, entered_at) {
                match stage.next() {
                    Some(next) => {
                        stage = next;
                        entered_at = now;
                        events.push(StageEvent::Entered(next));
                    }
                    None => completed = true,
                }
            }
        }
    }
    let (percent, next_change) = share(input, stage, entered_at);
    if stage == Stage::ProductionTrafficShift
        && percent < 100.0
        && input.recorded_percent != Some(percent)
    {
        events.push(StageEvent::Shifted(percent));
    }
    let wake_at = match stage {
        Stage::ProductionTrafficShift if input.blue.is_some() => {
            next_change.map(|d| add(entered_at, d))
        }
        Stage::BakeTime if input.blue.is_some() => Some(add(entered_at, input.settings.bake_time)),
        _ => None,
    }
    .filter(|at| *at > now);
    let scaled = stage >= Stage::ScaleUp;
    Output {
        stage,
        entered_at,
        green_target: if scaled { input.desired } else { 0 },
        blue_target: match input.blue {
            Some(_) if stage < Stage::CleanUp => input.desired,
            _ => 0,
        },
        production_percent: safe_share(input, percent),
        test_to_green: stage >= Stage::TestTrafficShift,
        wake_at,
        events,
        status: if completed {
            ServiceDeploymentStatus::Successful
        } else {
            ServiceDeploymentStatus::InProgress
        },
        completed,
        rollback,
    }
}

/// Whether `stage`'s own work is done.
fn stage_done(input: &Input<'_>, stage: Stage, entered_at: Timestamp) -> bool {
    let elapsed = elapsed(entered_at, input.now);
    match stage {
        // Without blue there is nothing to shift from or to hold: a first deployment does not wait.
        Stage::ProductionTrafficShift | Stage::BakeTime if input.blue.is_none() => true,
        Stage::ReconcileService => input.others_alive == 0,
        Stage::ScaleUp => input.green.healthy >= input.desired,
        Stage::ProductionTrafficShift => input.settings.production_share(elapsed).0 >= 100.0,
        Stage::BakeTime => elapsed >= input.settings.bake_time,
        Stage::CleanUp => input.blue.is_none_or(|b| b.alive == 0),
        _ => true,
    }
}

/// Green's planned production share in `stage`, and when it changes next (from the stage start).
fn share(input: &Input<'_>, stage: Stage, entered_at: Timestamp) -> (f64, Option<Duration>) {
    match stage {
        s if s < Stage::ProductionTrafficShift => (0.0, None),
        Stage::ProductionTrafficShift => input
            .settings
            .production_share(elapsed(entered_at, input.now)),
        _ => (100.0, None),
    }
}

/// Production traffic never goes to a revision with no healthy task while the other has one.
fn safe_share(input: &Input<'_>, planned: f64) -> f64 {
    let blue_healthy = input.blue.map_or(0, |b| b.healthy);
    if input.green.healthy == 0 && blue_healthy > 0 {
        0.0
    } else if blue_healthy == 0 && input.green.healthy > 0 {
        100.0
    } else {
        planned
    }
}

fn elapsed(from: Timestamp, to: Timestamp) -> Duration {
    Duration::try_from(to.duration_since(from)).unwrap_or_default()
}

fn add(at: Timestamp, d: Duration) -> Timestamp {
    at.checked_add(d).unwrap_or(at)
}

/// Where traffic goes, by deployment id: what the load balancer Services (and a Gateway API route)
/// are made to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Traffic {
    /// Production traffic: each deployment's percent (only those above 0).
    pub production: Vec<(String, f64)>,
    /// The deployment taking test traffic (the alternate target group).
    pub test: String,
}

impl Traffic {
    /// Everything to one deployment.
    pub fn all_to(deployment: &str) -> Self {
        Traffic {
            production: vec![(deployment.to_owned(), 100.0)],
            test: deployment.to_owned(),
        }
    }
}
