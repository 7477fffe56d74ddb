//! BLUE_GREEN, LINEAR and CANARY deployments in the planner: the stage machine
//! ([`crate::service::strategy`]) decides the stage, the traffic and how many tasks blue and green
//! run; this module keeps those counts (replacing failed tasks of either revision) and rolls back by
//! making blue the PRIMARY again.
//!
//! Bounds: blue keeps desiredCount tasks until CLEAN_UP and green scales to desiredCount beside it,
//! so at most 2 × desiredCount tasks are alive (stopping ones included); minimumHealthyPercent and
//! maximumPercent do not apply (ECS: they are ROLLING settings).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::service::{
    Deployment, DeploymentStatus, DeploymentStrategy, RolloutState, ServiceDeploymentStatus,
};
use crate::service::strategy::{self, Stage, Traffic};

use super::Start;
use super::deployments::is_rollout;
use super::events::Event;
use super::tasks::TaskView;
use super::work::{Ctx, Outcome, Work, scale_in_key};

/// Whether `d` deploys with a traffic-shifting strategy.
pub(crate) fn is_staged(d: &Deployment) -> bool {
    d.strategy.is_some_and(|s| s != DeploymentStrategy::Rolling)
}

/// The stage `d` reached.
pub(crate) fn stage(d: &Deployment) -> Option<Stage> {
    d.lifecycle_stage
}

/// Blue: the newest COMPLETED deployment other than the PRIMARY that still counts (not INACTIVE).
pub(crate) fn blue<'a>(deployments: &'a [Deployment], primary: &str) -> Option<&'a Deployment> {
    deployments
        .iter()
        .filter(|d| {
            d.id != primary
                && d.status != DeploymentStatus::Inactive
                && is_rollout(d, RolloutState::Completed)
        })
        .max_by_key(|d| super::deployments::deployment_number(&d.id))
}

/// Whether the PRIMARY can still go back to blue: a staged deployment in progress, before CLEAN_UP,
/// with a blue.
pub(crate) fn can_roll_back(deployments: &[Deployment]) -> bool {
    let p = &deployments[0];
    is_staged(p)
        && is_rollout(p, RolloutState::InProgress)
        && stage(p).is_none_or(|s| s < Stage::CleanUp)
        && blue(deployments, &p.id).is_some()
}

/// Whether the PRIMARY is a staged deployment past the point of rollback (CLEAN_UP).
pub(crate) fn cleaning_up(primary: &Deployment) -> bool {
    is_staged(primary) && stage(primary) == Some(Stage::CleanUp)
}

/// Rolls back to blue: the failed PRIMARY (green) gets `reason` and gives way; blue, whose tasks
/// still run, is the PRIMARY again and takes all production traffic at once. The service does not
/// deploy green's task definition again by itself (as after a circuit breaker rollback).
pub(crate) fn roll_back(
    deployments: &mut Vec<Deployment>,
    reason: String,
    now: Timestamp,
    events: &mut Vec<Event>,
) {
    let Some(blue_id) = blue(deployments, &deployments[0].id).map(|b| b.id.clone()) else {
        return;
    };
    let green = &mut deployments[0];
    green.rollout_state = Some(RolloutState::Failed);
    green.rollout_state_reason = Some(reason);
    green.status = DeploymentStatus::Active;
    green.service_deployment_status = Some(ServiceDeploymentStatus::RollbackInProgress);
    green.production_traffic_percent = Some(0.0);
    green.test_traffic_percent = Some(0.0);
    let green_id = green.id.clone();
    let green_td = green.task_definition.clone();
    let i = deployments
        .iter()
        .position(|d| d.id == blue_id)
        .expect("blue is listed");
    let mut b = deployments.remove(i);
    b.status = DeploymentStatus::Primary;
    b.rolled_back_from = Some(green_td).filter(|td| *td != b.task_definition);
    b.production_traffic_percent = Some(100.0);
    b.test_traffic_percent = Some(100.0);
    b.updated_at = Some(Time(now));
    events.push(Event::RollingBack {
        deployment: green_id,
        to: b.id.clone(),
    });
    deployments.insert(0, b);
}

/// A rollback is over once green has no task left.
pub(crate) fn finish_rollbacks(deployments: &mut [Deployment], tasks: &[TaskView]) {
    for d in deployments.iter_mut() {
        if d.service_deployment_status == Some(ServiceDeploymentStatus::RollbackInProgress)
            && !tasks.iter().any(|t| t.deployment == d.id && t.is_alive())
        {
            d.service_deployment_status = Some(ServiceDeploymentStatus::RollbackSuccessful);
        }
    }
}

/// The stage machine's pass for the PRIMARY (green), written onto it; None when the PRIMARY is
/// not a staged deployment in progress.
pub(crate) fn step(
    deployments: &mut [Deployment],
    input: &super::Input,
    desired: usize,
) -> Option<strategy::Output> {
    let green = &deployments[0];
    if !is_staged(green) || !is_rollout(green, RolloutState::InProgress) {
        return None;
    }
    // The service's current settings; a service switched back to ROLLING mid-way finishes the
    // deployment as BLUE_GREEN (all at once, no bake).
    let fallback = strategy::Settings {
        strategy: DeploymentStrategy::BlueGreen,
        shift: strategy::Shift::AllAtOnce,
        bake_time: std::time::Duration::ZERO,
    };
    let settings = input.strategy.as_ref().unwrap_or(&fallback);
    let blue = blue(deployments, &green.id);
    let revision = |id: &str| strategy::Revision {
        healthy: input
            .tasks
            .iter()
            .filter(|t| t.deployment == id && t.is_healthy())
            .count(),
        alive: input
            .tasks
            .iter()
            .filter(|t| t.deployment == id && t.is_alive() && !t.desired_stopped)
            .count(),
    };
    let others_alive = input
        .tasks
        .iter()
        .filter(|t| t.is_alive())
        .filter(|t| t.deployment != green.id && blue.is_none_or(|b| b.id != t.deployment))
        .count();
    let out = strategy::step(&strategy::Input {
        settings,
        desired,
        green: revision(&green.id),
        blue: blue.map(|b| revision(&b.id)),
        others_alive,
        stage: stage(green),
        entered_at: green.lifecycle_stage_entered_at.as_ref().map(|t| t.0),
        recorded_percent: green.production_traffic_percent,
        hooks: &input.hooks,
        now: input.now,
    });
    let blue_id = blue.map(|b| b.id.clone());
    let green = &mut deployments[0];
    green.lifecycle_stage = Some(out.stage);
    green.lifecycle_stage_entered_at = Some(Time(out.entered_at));
    green.service_deployment_status = Some(out.status);
    green.production_traffic_percent = Some(out.production_percent);
    green.test_traffic_percent = Some(if out.test_to_green { 100.0 } else { 0.0 });
    if let Some(b) = deployments
        .iter_mut()
        .find(|d| Some(&d.id) == blue_id.as_ref())
    {
        b.production_traffic_percent = Some(100.0 - out.production_percent);
        b.test_traffic_percent = Some(if out.test_to_green { 0.0 } else { 100.0 });
    }
    Some(out)
}

/// Keeps green at `out.green_target` and blue at `out.blue_target` tasks, every other deployment at
/// 0: unhealthy tasks are replaced, surplus tasks stopped, missing ones started (blue's first),
/// within 2 × desiredCount alive tasks.
pub(crate) fn plan_replica<'a>(
    ctx: &Ctx<'a>,
    work: &mut Work<'a>,
    blue: Option<&Deployment>,
    out: &strategy::Output,
) -> Outcome {
    let tasks = work.tasks;
    let primary = ctx.primary;
    let mut targets: Vec<(&Deployment, usize)> = Vec::new();
    if let Some(b) = blue {
        targets.push((b, out.blue_target));
    }
    targets.push((primary, out.green_target));
    let alive = tasks.iter().filter(|t| t.is_alive()).count();
    let mut room = (2 * ctx.desired).saturating_sub(alive);
    // Tasks of neither blue nor green go (RECONCILE_SERVICE).
    let others: Vec<&TaskView> = tasks
        .iter()
        .filter(|t| t.is_live() && !targets.iter().any(|(d, _)| d.id == t.deployment))
        .collect();
    work.stop_in_order(&others, others.len(), scale_in_key);
    for (d, target) in &targets {
        let mine: Vec<&TaskView> = tasks
            .iter()
            .filter(|t| t.is_live() && t.deployment == d.id)
            .collect();
        let (unhealthy, good): (Vec<&TaskView>, Vec<&TaskView>) =
            mine.into_iter().partition(|t| t.is_unhealthy());
        work.stop_in_order(&unhealthy, unhealthy.len(), scale_in_key);
        work.stop_in_order(&good, good.len().saturating_sub(*target), scale_in_key);
        let missing = target.saturating_sub(good.len()).min(room);
        if d.id != primary.id || ctx.launch == super::work::Launch::Allowed {
            room -= missing;
            let mut launches = super::zones::Launches::of(ctx.input, good.iter().copied());
            for _ in 0..missing {
                work.starts.push(Start {
                    deployment: d.id.clone(),
                    task_definition: d.task_definition.clone(),
                    zone: launches.next(),
                    rebalancing: false,
                    node: None,
                });
            }
        }
    }
    let primary_healthy = tasks
        .iter()
        .filter(|t| t.deployment == primary.id && t.is_healthy())
        .count();
    Outcome {
        primary_healthy,
        launch_blocked: ctx.launch != super::work::Launch::Allowed
            && primary_healthy < out.green_target,
        old_targets: Some(
            blue.map(|b| BTreeMap::from([(b.id.clone(), out.blue_target)]))
                .unwrap_or_default(),
        ),
    }
}

/// Where production and test traffic go: None while the PRIMARY is a ROLLING deployment, unless the
/// service now uses a traffic-shifting strategy and that deployment has COMPLETED (a ROLLING load
/// balancer selects every ready task, as before strategies existed; a rolling deployment in progress
/// keeps it so).
pub(crate) fn traffic(
    service_staged: bool,
    deployments: &[Deployment],
    out: Option<&strategy::Output>,
) -> Option<Traffic> {
    let primary = &deployments[0];
    if !(is_staged(primary) || service_staged && is_rollout(primary, RolloutState::Completed)) {
        return None;
    }
    let blue = out.and_then(|_| blue(deployments, &primary.id));
    Some(match (out, blue) {
        (Some(out), Some(blue)) => Traffic {
            production: [
                (blue.id.clone(), 100.0 - out.production_percent),
                (primary.id.clone(), out.production_percent),
            ]
            .into_iter()
            .filter(|(_, p)| *p > 0.0)
            .collect(),
            test: if out.test_to_green {
                primary.id.clone()
            } else {
                blue.id.clone()
            },
        },
        _ => Traffic::all_to(&primary.id),
    })
}
