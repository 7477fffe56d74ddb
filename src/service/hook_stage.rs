//! The lifecycle hooks of the stage a BLUE_GREEN, LINEAR or CANARY deployment is in, run once per
//! Service pass: the hook tasks, the stored `lifecycleHookDetails` and the ContinueServiceDeployment
//! annotation go through [`hooks::evaluate`]; its tasks are created or stopped here, and the stage's
//! verdict goes to the planner's stage machine, which holds the stage while it is pending and rolls back
//! when it failed. ROLLING deployments have no lifecycle stages: ECS runs hooks only for the others.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::hooks::{self, StageOutcome, action};
use super::strategy::{HookVerdict, Stage};
use crate::api::Service;
use crate::api::lifecycle_hook::{LifecycleHookDetail, LifecycleHookStatus, LifecycleStage};
use crate::api::service::{Deployment, DeploymentStrategy, RolloutState};
use crate::context::Context;
use crate::error::Error;
use crate::labels;

/// What a pass learnt from the hooks.
#[derive(Debug, Default)]
pub struct HookPass {
    /// The verdict of the PRIMARY's current stage (absent: no hooks there).
    pub verdicts: BTreeMap<Stage, HookVerdict>,
    /// The PRIMARY's id and all its hook details, to store in its status entry.
    pub details: Option<(String, Vec<LifecycleHookDetail>)>,
    /// Events: (warning, reason, message).
    pub events: Vec<(bool, &'static str, String)>,
    /// An action annotation that is not one: (reason, message) for the conditions.
    pub problem: Option<(&'static str, String)>,
    /// Look again then (the earliest hook timeout).
    pub wake: Option<Duration>,
}

/// Runs the hooks of the PRIMARY's current stage (see the module doc).
pub async fn run(
    ctx: &Context,
    svc: &Service,
    deployments: &[Deployment],
    now: Timestamp,
) -> Result<HookPass, Error> {
    let mut pass = HookPass::default();
    let parsed = svc
        .annotations()
        .get(labels::LIFECYCLE_HOOK_ACTION)
        .map(|v| action::parse(v));
    // A value that is not an action is reported and otherwise ignored.
    let action = match parsed {
        Some(Err(why)) => {
            pass.problem = Some((action::INVALID_ACTION_REASON, why));
            None
        }
        Some(Ok(a)) => Some(a),
        None => None,
    };
    let all_hooks = svc
        .spec
        .deployment_configuration
        .as_ref()
        .and_then(|c| c.lifecycle_hooks.clone())
        .unwrap_or_default();
    let Some((primary, stage, hook_stage)) = current_stage(deployments) else {
        return Ok(pass);
    };
    if !all_hooks
        .iter()
        .any(|h| h.lifecycle_stages.contains(&hook_stage))
    {
        return Ok(pass);
    }
    let service = svc.name_any();
    let mut tasks = hooks::tasks::hook_tasks(ctx, svc).await?;
    let evaluate = |tasks: &BTreeMap<String, hooks::HookTask>| {
        hooks::evaluate(&hooks::StageInput {
            service: &service,
            deployment: &primary.id,
            stage: hook_stage,
            hooks: &all_hooks,
            tasks,
            previous: &primary.lifecycle_hook_details,
            action: action.as_ref(),
            now,
        })
    };
    let mut evaluation = evaluate(&tasks);
    if let StageOutcome::Run(create) = &evaluation.outcome {
        let not_created = hooks::tasks::create(ctx, svc, create).await?;
        if !not_created.is_empty() {
            // Decided now, so the failure is recorded in this pass.
            tasks.extend(not_created);
            evaluation = evaluate(&tasks);
        }
    }
    for name in &evaluation.stop {
        let id = evaluation
            .details
            .iter()
            .find(|d| d.task_name.as_ref() == Some(name))
            .map_or(name.as_str(), |d| d.hook_id.as_str());
        hooks::tasks::stop(
            ctx,
            svc,
            std::slice::from_ref(name),
            &hooks::stop_reason(id),
        )
        .await?;
    }
    let namespace = svc.namespace().unwrap_or_default();
    pass.events = announcements(
        &namespace,
        &service,
        &primary.lifecycle_hook_details,
        &evaluation.details,
        &evaluation.outcome,
    );
    let verdict = match &evaluation.outcome {
        StageOutcome::Succeeded => HookVerdict::Succeeded,
        StageOutcome::Failed { reason } => HookVerdict::Failed(reason.clone()),
        StageOutcome::Run(_) => HookVerdict::Pending,
        StageOutcome::Wait { until } => {
            pass.wake = Some(
                Duration::try_from(until.0.duration_since(now))
                    .unwrap_or_default()
                    .max(Duration::from_secs(1)),
            );
            HookVerdict::Pending
        }
    };
    pass.verdicts.insert(stage, verdict);
    let mut details: Vec<LifecycleHookDetail> = primary
        .lifecycle_hook_details
        .iter()
        .filter(|d| d.lifecycle_stage != hook_stage)
        .cloned()
        .collect();
    details.extend(evaluation.details);
    pass.details = Some((primary.id.clone(), details));
    Ok(pass)
}

/// The PRIMARY, its stage and that stage as a hook stage, when it is a traffic-shifting deployment in
/// progress at a stage that takes hooks.
fn current_stage(deployments: &[Deployment]) -> Option<(&Deployment, Stage, LifecycleStage)> {
    let primary = deployments.first()?;
    let staged = primary
        .strategy
        .is_some_and(|s| s != DeploymentStrategy::Rolling);
    if !staged || primary.rollout_state != Some(RolloutState::InProgress) {
        return None;
    }
    let stage = primary.lifecycle_stage?;
    let hook_stage = LifecycleStage::parse(stage.as_str())?;
    Some((primary, stage, hook_stage))
}

/// The Events of what changed between the stored details and the evaluated ones: a hook started,
/// waits for an action (with the command that gives it), succeeded, failed or timed out. Pure.
pub fn announcements(
    namespace: &str,
    service: &str,
    previous: &[LifecycleHookDetail],
    next: &[LifecycleHookDetail],
    outcome: &StageOutcome,
) -> Vec<(bool, &'static str, String)> {
    let mut out = Vec::new();
    for d in next {
        let before = previous.iter().find(|p| p.hook_id == d.hook_id);
        if before.map(|b| b.status) == Some(d.status) {
            continue;
        }
        let who = format!(
            "(service {service}) (deployment {}) lifecycle hook {} at {}",
            deployment_of(&d.hook_id),
            d.hook_id,
            d.lifecycle_stage
        );
        match d.status {
            LifecycleHookStatus::InProgress => {
                let task = match outcome {
                    StageOutcome::Run(create) => create
                        .iter()
                        .find(|t| t.hook_id == d.hook_id)
                        .map(|t| format!(" (task {} of {})", t.name, t.task_definition)),
                    _ => None,
                };
                out.push((
                    false,
                    "LifecycleHookStarted",
                    format!("{who} started{}.", task.unwrap_or_default()),
                ));
            }
            LifecycleHookStatus::AwaitingAction => out.push((
                false,
                "LifecycleHookAwaitingAction",
                format!(
                    "{who} is paused until {}: kubectl ecs continue-service-deployment -n {namespace} --service-deployment-arn {} --hook-id {} --action CONTINUE (or --action ROLLBACK).",
                    d.expires_at.0,
                    crate::plugin::shapes::service_deployment_arn(
                        namespace,
                        service,
                        deployment_of(&d.hook_id)
                    ),
                    d.hook_id
                ),
            )),
            LifecycleHookStatus::Succeeded => out.push((
                false,
                "LifecycleHookSucceeded",
                format!("{who} succeeded."),
            )),
            LifecycleHookStatus::Failed => out.push((
                true,
                "LifecycleHookFailed",
                format!(
                    "{who} failed: {}.",
                    d.reason.as_deref().unwrap_or("no reason given")
                ),
            )),
            LifecycleHookStatus::TimedOut => out.push((
                true,
                "LifecycleHookTimedOut",
                format!(
                    "{who} timed out; its timeout action is {}.",
                    d.timeout_action.as_str()
                ),
            )),
        }
    }
    out
}

/// `ecs-svc/N` of a hook id `ecs-svc/N/<STAGE>/<index>`.
fn deployment_of(hook_id: &str) -> &str {
    hook_id.rsplitn(3, '/').nth(2).unwrap_or(hook_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::lifecycle_hook::{LifecycleHookAction, LifecycleHookTargetType};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn detail(status: LifecycleHookStatus) -> LifecycleHookDetail {
        let t = Time(Timestamp::from_second(1_800_000_000).unwrap());
        LifecycleHookDetail {
            hook_id: "ecs-svc/3/POST_TEST_TRAFFIC_SHIFT/0".into(),
            lifecycle_stage: LifecycleStage::PostTestTrafficShift,
            hook_index: 0,
            target_type: LifecycleHookTargetType::Pause,
            target_arn: None,
            status,
            task_name: None,
            started_at: t.clone(),
            ended_at: None,
            expires_at: t,
            timeout_action: LifecycleHookAction::Rollback,
            action: None,
            reason: None,
        }
    }

    fn reasons(
        previous: &[LifecycleHookDetail],
        next: &[LifecycleHookDetail],
    ) -> Vec<&'static str> {
        announcements("shop", "web", previous, next, &StageOutcome::Succeeded)
            .into_iter()
            .map(|(_, r, _)| r)
            .collect()
    }

    #[test]
    fn a_pause_says_how_to_continue_once() {
        let paused = detail(LifecycleHookStatus::AwaitingAction);
        let events = announcements(
            "shop",
            "web",
            &[],
            std::slice::from_ref(&paused),
            &StageOutcome::Succeeded,
        );
        assert_eq!(events.len(), 1);
        assert!(
            events[0].2.contains(
                "kubectl ecs continue-service-deployment -n shop --service-deployment-arn arn:aws:ecs:kubernetes:000000000000:service-deployment/shop/web/3 --hook-id ecs-svc/3/POST_TEST_TRAFFIC_SHIFT/0 --action CONTINUE"
            ),
            "{}",
            events[0].2
        );
        assert!(events[0].2.contains("(deployment ecs-svc/3)"));
        // Unchanged: nothing new to say.
        assert!(reasons(std::slice::from_ref(&paused), std::slice::from_ref(&paused)).is_empty());
    }

    #[test]
    fn every_end_is_announced() {
        let before = [detail(LifecycleHookStatus::InProgress)];
        assert_eq!(
            reasons(&before, &[detail(LifecycleHookStatus::Succeeded)]),
            ["LifecycleHookSucceeded"]
        );
        assert_eq!(
            reasons(&before, &[detail(LifecycleHookStatus::Failed)]),
            ["LifecycleHookFailed"]
        );
        assert_eq!(
            reasons(&before, &[detail(LifecycleHookStatus::TimedOut)]),
            ["LifecycleHookTimedOut"]
        );
        assert_eq!(
            reasons(&[], &[detail(LifecycleHookStatus::InProgress)]),
            ["LifecycleHookStarted"]
        );
    }

    #[test]
    fn only_a_staged_deployment_in_progress_at_a_hook_stage_runs_hooks() {
        let d = |strategy, stage, rollout| Deployment {
            id: "ecs-svc/3".into(),
            strategy: Some(strategy),
            lifecycle_stage: Some(stage),
            rollout_state: Some(rollout),
            ..Default::default()
        };
        let ip = RolloutState::InProgress;
        assert!(
            current_stage(&[d(DeploymentStrategy::BlueGreen, Stage::PostScaleUp, ip)]).is_some()
        );
        assert!(current_stage(&[d(DeploymentStrategy::Rolling, Stage::PostScaleUp, ip)]).is_none());
        assert!(current_stage(&[d(DeploymentStrategy::Canary, Stage::BakeTime, ip)]).is_none());
        assert!(
            current_stage(&[d(
                DeploymentStrategy::Linear,
                Stage::PostScaleUp,
                RolloutState::Completed
            )])
            .is_none()
        );
    }
}
