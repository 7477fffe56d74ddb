//! Deployment lifecycle hooks (ECS `deploymentConfiguration.lifecycleHooks`): what the hooks of one stage
//! of a deployment need next, decided from plain data ([`evaluate`]), and the Tasks they run
//! ([`tasks`], the I/O).
//!
//! A hook that runs a target runs a standalone Task of the TaskDefinition `hookTargetArn` names; its
//! essential containers all exiting 0 is `SUCCEEDED`, anything else `FAILED`. A `PAUSE` hook is
//! `AWAITING_ACTION` until ContinueServiceDeployment ([`action`]). Either times out after
//! `timeoutConfiguration.timeoutInMinutes` into `TIMED_OUT`, followed by its `action`. A stage succeeds
//! once every hook at it has (a timeout with CONTINUE counts as done), and fails as soon as one fails.

pub mod action;
pub mod target;
pub mod tasks;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::Task;
use crate::api::lifecycle_hook::{
    LifecycleHook, LifecycleHookAction, LifecycleHookDetail, LifecycleHookStatus,
    LifecycleHookTargetType, LifecycleStage,
};
use crate::api::task::LastStatus;
pub use action::HookAction;

/// A hook Task as the evaluator needs it.
#[derive(Clone, Debug, PartialEq)]
pub enum HookTask {
    /// Not STOPPED yet.
    Running,
    /// STOPPED: the exit codes of its essential containers (None: never ran or no code) and why.
    Stopped {
        essential_exit_codes: Vec<(String, Option<i32>)>,
        stopped_reason: Option<String>,
    },
    /// It could not be created (e.g. its task definition does not resolve): why.
    NotCreated(String),
}

impl HookTask {
    /// The view of a Task.
    pub fn of(task: &Task) -> HookTask {
        let status = task.status.clone().unwrap_or_default();
        if status.last_status != Some(LastStatus::Stopped) {
            return HookTask::Running;
        }
        HookTask::Stopped {
            essential_exit_codes: status
                .containers
                .iter()
                .filter(|c| c.essential != Some(false))
                .map(|c| (c.name.clone(), c.exit_code))
                .collect(),
            stopped_reason: status.stopped_reason,
        }
    }
}

/// One task a stage's hooks need started.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskToCreate {
    /// Deterministic: [`target::task_name`].
    pub name: String,
    pub hook_id: String,
    /// `family` or `family:revision`.
    pub task_definition: String,
    /// The deployment id (the task's `startedBy`).
    pub deployment: String,
    /// Set in every container of the task: the hook's payload (see [`environment`]).
    pub environment: Vec<(String, String)>,
}

/// What a stage needs next.
#[derive(Clone, Debug, PartialEq)]
pub enum StageOutcome {
    /// Start these tasks, then evaluate again when tasks change (and by the earliest `expiresAt`).
    Run(Vec<TaskToCreate>),
    /// Nothing to do before `until` (the earliest hook timeout) unless a task or an action comes.
    Wait { until: Time },
    /// Every hook at the stage is done: the deployment may go on.
    Succeeded,
    /// A hook failed: the deployment rolls back.
    Failed { reason: String },
}

/// What [`evaluate`] decided. The caller acts first (creates the tasks of [`StageOutcome::Run`], stops
/// `stop`) and stores `details` after: a pass whose writes failed decides the same again next time.
#[derive(Clone, Debug, PartialEq)]
pub struct StageEvaluation {
    pub outcome: StageOutcome,
    /// The details of every hook at this stage, to store in status (unchanged ones compare equal).
    pub details: Vec<LifecycleHookDetail>,
    /// Hook tasks to stop: timed out, or still running when another hook failed the stage.
    pub stop: Vec<String>,
    /// Whether `action` was applied (then it is recorded in `details` and is done with).
    pub action_applied: bool,
}

/// The input of [`evaluate`]: one stage of one deployment.
#[derive(Clone, Copy, Debug)]
pub struct StageInput<'a> {
    pub service: &'a str,
    /// `ecs-svc/N`.
    pub deployment: &'a str,
    pub stage: LifecycleStage,
    /// `deploymentConfiguration.lifecycleHooks`, all of them (indexes are positions in this list).
    pub hooks: &'a [LifecycleHook],
    /// Hook tasks that exist, by name.
    pub tasks: &'a BTreeMap<String, HookTask>,
    /// The hook details stored so far (any deployment or stage; the others are ignored).
    pub previous: &'a [LifecycleHookDetail],
    /// The parsed ContinueServiceDeployment annotation, if any.
    pub action: Option<&'a HookAction>,
    pub now: Timestamp,
}

/// The environment of a hook's task: the payload ECS passes to a Lambda hook, as variables.
pub fn environment(
    service: &str,
    deployment: &str,
    stage: LifecycleStage,
    hook_id: &str,
    hook: &LifecycleHook,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("ECS_SERVICE_NAME".to_string(), service.to_string()),
        (
            "ECS_SERVICE_DEPLOYMENT_ID".to_string(),
            deployment.to_string(),
        ),
        ("ECS_LIFECYCLE_STAGE".to_string(), stage.to_string()),
        ("ECS_LIFECYCLE_HOOK_ID".to_string(), hook_id.to_string()),
    ];
    if let Some(details) = &hook.hook_details {
        env.push((
            "ECS_LIFECYCLE_HOOK_DETAILS".to_string(),
            serde_json::to_string(&details.0).unwrap_or_default(),
        ));
    }
    env
}

/// Decides the next step of the hooks at `input.stage`.
pub fn evaluate(input: &StageInput<'_>) -> StageEvaluation {
    let now = Time(crate::time::truncate(input.now));
    let mut details = Vec::new();
    let mut create = Vec::new();
    let mut stop = Vec::new();
    let mut action_applied = false;
    let action = input
        .action
        .filter(|a| a.deployment == input.deployment && a.stage == input.stage);

    for (index, hook) in input.hooks.iter().enumerate() {
        if !hook.lifecycle_stages.contains(&input.stage) {
            continue;
        }
        let id = target::hook_id(input.deployment, input.stage, index);
        let previous = input.previous.iter().find(|d| d.hook_id == id);
        let mut detail = previous.cloned().unwrap_or_else(|| LifecycleHookDetail {
            hook_id: id.clone(),
            lifecycle_stage: input.stage,
            hook_index: index as u32,
            target_type: hook.target_type.unwrap_or_default(),
            target_arn: hook.hook_target_arn.clone(),
            status: if hook.is_pause() {
                LifecycleHookStatus::AwaitingAction
            } else {
                LifecycleHookStatus::InProgress
            },
            task_name: None,
            started_at: now.clone(),
            ended_at: None,
            expires_at: Time(now.0 + SignedDuration::from_mins(hook.timeout_minutes())),
            timeout_action: hook.timeout_action(),
            action: None,
            reason: None,
        });
        if detail.status.is_final() {
            details.push(detail);
            continue;
        }
        let end = |d: &mut LifecycleHookDetail, status, reason: Option<String>| {
            d.status = status;
            d.ended_at = Some(now.clone());
            d.reason = reason;
        };
        if hook.is_pause() {
            if let Some(a) = action {
                detail.action = Some(a.action);
                action_applied = true;
                match a.action {
                    LifecycleHookAction::Continue => {
                        end(&mut detail, LifecycleHookStatus::Succeeded, None)
                    }
                    LifecycleHookAction::Rollback => end(
                        &mut detail,
                        LifecycleHookStatus::Failed,
                        Some("rolled back by ContinueServiceDeployment action ROLLBACK".into()),
                    ),
                }
            } else if input.now >= detail.expires_at.0 {
                time_out(&mut detail, &now);
            }
            details.push(detail);
            continue;
        }

        let name = target::task_name(input.service, input.deployment, input.stage, index);
        let definition = hook
            .hook_target_arn
            .as_deref()
            .ok_or_else(|| "the hook names no hookTargetArn".to_string())
            .and_then(target::task_definition);
        match (definition, input.tasks.get(&name)) {
            (Err(why), _) => end(&mut detail, LifecycleHookStatus::Failed, Some(why)),
            (Ok(_), Some(HookTask::NotCreated(why))) => end(
                &mut detail,
                LifecycleHookStatus::Failed,
                Some(format!("hook task {name} could not start: {why}")),
            ),
            (
                Ok(_),
                Some(HookTask::Stopped {
                    essential_exit_codes,
                    stopped_reason,
                }),
            ) => {
                detail.task_name = Some(name.clone());
                let failed: Vec<String> = essential_exit_codes
                    .iter()
                    .filter(|(_, code)| *code != Some(0))
                    .map(|(c, code)| match code {
                        Some(code) => format!("{c} exited with {code}"),
                        None => format!("{c} did not run to an exit code"),
                    })
                    .collect();
                if essential_exit_codes.is_empty() || !failed.is_empty() {
                    let why = match (failed.is_empty(), stopped_reason) {
                        (false, _) => failed.join(", "),
                        (true, Some(r)) => r.clone(),
                        (true, None) => "no essential container ran".to_string(),
                    };
                    end(
                        &mut detail,
                        LifecycleHookStatus::Failed,
                        Some(format!("hook task {name}: {why}")),
                    );
                } else {
                    end(&mut detail, LifecycleHookStatus::Succeeded, None);
                }
            }
            (Ok(_), Some(HookTask::Running)) => {
                detail.task_name = Some(name.clone());
                if input.now >= detail.expires_at.0 {
                    time_out(&mut detail, &now);
                    stop.push(name);
                }
            }
            // Seen before and gone now: someone deleted it.
            (Ok(_), None) if detail.task_name.is_some() => end(
                &mut detail,
                LifecycleHookStatus::Failed,
                Some(format!("hook task {name} was deleted before it finished")),
            ),
            (Ok(definition), None) => {
                if input.now >= detail.expires_at.0 {
                    time_out(&mut detail, &now);
                } else {
                    create.push(TaskToCreate {
                        name,
                        hook_id: id.clone(),
                        task_definition: definition,
                        deployment: input.deployment.to_string(),
                        environment: environment(
                            input.service,
                            input.deployment,
                            input.stage,
                            &id,
                            hook,
                        ),
                    });
                }
            }
        }
        details.push(detail);
    }

    let failed = details.iter().find(|d| {
        d.status == LifecycleHookStatus::Failed
            || (d.status == LifecycleHookStatus::TimedOut
                && d.timeout_action == LifecycleHookAction::Rollback)
    });
    let outcome = if let Some(f) = failed {
        // The stage is over: hook tasks still running have nothing left to decide.
        for d in &details {
            if !d.status.is_final()
                && d.target_type != LifecycleHookTargetType::Pause
                && let Some(name) = &d.task_name
            {
                stop.push(name.clone());
            }
        }
        StageOutcome::Failed {
            reason: failure_reason(f),
        }
    } else if !create.is_empty() {
        StageOutcome::Run(create)
    } else if let Some(until) = details
        .iter()
        .filter(|d| !d.status.is_final())
        .map(|d| d.expires_at.clone())
        .min_by_key(|t| t.0)
    {
        StageOutcome::Wait { until }
    } else {
        StageOutcome::Succeeded
    };
    StageEvaluation {
        outcome,
        details,
        stop,
        action_applied,
    }
}

fn time_out(detail: &mut LifecycleHookDetail, now: &Time) {
    detail.status = LifecycleHookStatus::TimedOut;
    detail.ended_at = Some(now.clone());
    detail.reason = Some(format!(
        "the hook did not finish by {}: {}",
        detail.expires_at.0,
        detail.timeout_action.as_str()
    ));
}

fn failure_reason(detail: &LifecycleHookDetail) -> String {
    format!(
        "lifecycle hook {} ({}) {}: {}",
        detail.hook_index,
        detail.lifecycle_stage,
        match detail.status {
            LifecycleHookStatus::TimedOut => "TIMED_OUT",
            _ => "FAILED",
        },
        detail.reason.as_deref().unwrap_or("no reason given")
    )
}

/// Whether a Task was started by a lifecycle hook. Such a task never carries the service label the
/// service's task list selects on, and its owner reference to the Service is not a controller one, so
/// the service never counts, replaces or load balances it.
pub fn is_hook_task(task: &Task) -> bool {
    use kube::ResourceExt;
    task.labels().contains_key(crate::labels::LIFECYCLE_HOOK_OF)
}

/// A running hook task's stop: the reason its `status.stoppedReason` gets.
pub fn stop_reason(hook_id: &str) -> String {
    format!("lifecycle hook {hook_id} timed out or its stage failed")
}
