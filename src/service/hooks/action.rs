//! ContinueServiceDeployment as an annotation on the Service: `ecs.operator.dev/lifecycle-hook-action:
//! <deployment id>/<STAGE>=CONTINUE|ROLLBACK` (e.g. `ecs-svc/3/POST_TEST_TRAFFIC_SHIFT=CONTINUE`), which
//! `kubectl ecs continue-deployment` sets. Pure.

use crate::api::{LifecycleHookAction, LifecycleStage};

/// A parsed action: which deployment and stage it is for, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookAction {
    pub deployment: String,
    pub stage: LifecycleStage,
    pub action: LifecycleHookAction,
}

/// The condition/Event reason of an annotation that is not an action.
pub const INVALID_ACTION_REASON: &str = "InvalidLifecycleHookAction";

/// Parses the annotation's value; the error says what a valid one looks like.
pub fn parse(value: &str) -> Result<HookAction, String> {
    let bad = |why: &str| {
        format!(
            "{} {value:?}: {why}; expected '<deployment id>/<lifecycle stage>=CONTINUE' or '=ROLLBACK', e.g. 'ecs-svc/3/POST_TEST_TRAFFIC_SHIFT=CONTINUE'",
            crate::labels::LIFECYCLE_HOOK_ACTION
        )
    };
    let (target, action) = value.trim().split_once('=').ok_or_else(|| bad("no '='"))?;
    let action = match action {
        "CONTINUE" => LifecycleHookAction::Continue,
        "ROLLBACK" => LifecycleHookAction::Rollback,
        _ => return Err(bad("the action is neither CONTINUE nor ROLLBACK")),
    };
    let (deployment, stage) = target.rsplit_once('/').ok_or_else(|| bad("no stage"))?;
    let stage = LifecycleStage::parse(stage).ok_or_else(|| bad("unknown lifecycle stage"))?;
    if deployment.is_empty() {
        return Err(bad("no deployment id"));
    }
    Ok(HookAction {
        deployment: deployment.to_string(),
        stage,
        action,
    })
}

/// The annotation value for an action.
pub fn format(deployment: &str, stage: LifecycleStage, action: LifecycleHookAction) -> String {
    format!("{deployment}/{stage}={}", action.as_str())
}

/// The annotation value for ContinueServiceDeployment(`deployment`, `hook_id`, `action`): the hook id
/// (`ecs-svc/N/<STAGE>/<index>`) must be of that deployment.
pub fn for_hook_id(deployment: &str, hook_id: &str, action: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "hookId {hook_id:?} is not a hook of {deployment}: expected {deployment}/<lifecycle stage>/<index>, as the service's lifecycleHookDetails show it"
        )
    };
    let (rest, index) = hook_id.rsplit_once('/').ok_or_else(bad)?;
    let (of, stage) = rest.rsplit_once('/').ok_or_else(bad)?;
    if of != deployment || index.parse::<u32>().is_err() {
        return Err(bad());
    }
    let stage = LifecycleStage::parse(stage).ok_or_else(bad)?;
    let action = match action {
        "CONTINUE" => LifecycleHookAction::Continue,
        "ROLLBACK" => LifecycleHookAction::Rollback,
        _ => {
            return Err(format!(
                "action {action:?} is neither CONTINUE nor ROLLBACK"
            ));
        }
    };
    Ok(format(deployment, stage, action))
}
