//! Deployment lifecycle hooks (ECS `DeploymentLifecycleHook`) and their state during a deployment (ECS
//! `DeploymentLifecycleHookDetail`, as DescribeServiceDeployments shows it in `lifecycleHookDetails`).
//!
//! Where ECS invokes a Lambda function, a hook here runs a task: `hookTargetArn` names a TaskDefinition of
//! the service's namespace, and the task's essential containers exiting 0 is the hook's `SUCCEEDED`. A
//! `PAUSE` hook waits for ContinueServiceDeployment, given as an annotation on the Service.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::Opaque;

/// A task definition reference a hook may name: `family`, `family:revision`, or an ECS task definition
/// ARN ending in either. Lambda functions cannot run here.
pub(crate) const HOOK_TARGET_RULE: &str = "self.matches('^(arn:aws[-a-z]*:ecs:[-a-z0-9]*:[0-9]*:task-definition/)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(:[1-9][0-9]{0,8})?$')";
pub(crate) const HOOK_TARGET_MESSAGE: &str = "hookTargetArn must name a TaskDefinition in this namespace: 'family', 'family:revision' or arn:aws:ecs:<region>:<account>:task-definition/family:revision (Lambda functions are not supported: run the hook's logic as a task)";

/// A deployment lifecycle hook: a task run, or a pause, at the given stages of a deployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("has(self.targetType) && self.targetType == 'PAUSE' ? !has(self.hookTargetArn) : has(self.hookTargetArn)").message("a PAUSE hook names no hookTargetArn; every other hook needs one (the TaskDefinition the hook runs)"),
    validation = Rule::new("!(has(self.targetType) && self.targetType == 'PAUSE') || !has(self.hookDetails)").message("hookDetails is passed to the hook's task: a PAUSE hook runs none"),
)]
pub struct LifecycleHook {
    /// `AWS_LAMBDA` (the default: ECS's word for a hook that runs its target, here a task) or `PAUSE`
    /// (the deployment waits for ContinueServiceDeployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<LifecycleHookTargetType>,
    /// The TaskDefinition the hook runs as a task: `family` (its latest ACTIVE revision),
    /// `family:revision`, or `arn:aws:ecs:…:task-definition/family:revision`. Not for PAUSE hooks.
    // 330: an ECS task definition ARN (about 70 characters) around a family of up to 255 and a revision;
    // the bound also keeps the rule's regular expression within the CEL cost budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 330))]
    #[x_kube(validation = Rule::new(HOOK_TARGET_RULE).message(HOOK_TARGET_MESSAGE))]
    pub hook_target_arn: Option<String>,
    /// Accepted; the hook's task runs with its task definition's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub role_arn: Option<String>,
    /// The stages at which the hook runs (each at most once: a set).
    #[schemars(length(min = 1, max = 7), extend("x-kubernetes-list-type" = "set"))]
    pub lifecycle_stages: Vec<LifecycleStage>,
    /// A JSON object passed to the hook's task in `ECS_LIFECYCLE_HOOK_DETAILS`. Not for PAUSE hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_details: Option<Opaque>,
    /// How long the hook may take, and what then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_configuration: Option<LifecycleHookTimeoutConfiguration>,
}

impl LifecycleHook {
    pub fn is_pause(&self) -> bool {
        self.target_type == Some(LifecycleHookTargetType::Pause)
    }

    /// `timeoutConfiguration.timeoutInMinutes`, default 1440 (24 hours).
    pub fn timeout_minutes(&self) -> i64 {
        self.timeout_configuration
            .as_ref()
            .and_then(|t| t.timeout_in_minutes)
            .map_or(1440, i64::from)
    }

    /// `timeoutConfiguration.action`, default ROLLBACK.
    pub fn timeout_action(&self) -> LifecycleHookAction {
        self.timeout_configuration
            .as_ref()
            .and_then(|t| t.action)
            .unwrap_or(LifecycleHookAction::Rollback)
    }
}

/// What a hook does.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleHookTargetType {
    /// Runs `hookTargetArn` (ECS: a Lambda function; here a TaskDefinition, run as a task).
    #[default]
    AwsLambda,
    /// Waits for ContinueServiceDeployment (CONTINUE or ROLLBACK) or the timeout.
    Pause,
}

/// The stages of a deployment at which hooks can run (ECS `DeploymentLifecycleHook.lifecycleStages`).
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleStage {
    /// A new deployment starts while more than one service revision is ACTIVE.
    ReconcileService,
    /// Before the new (green) revision's tasks start.
    PreScaleUp,
    /// The green tasks run; blue serves all production traffic.
    PostScaleUp,
    /// Test traffic moves to green.
    TestTrafficShift,
    /// Green serves all test traffic.
    PostTestTrafficShift,
    /// Production traffic moves to green.
    ProductionTrafficShift,
    /// Green serves all production traffic.
    PostProductionTrafficShift,
}

impl LifecycleStage {
    /// The ECS name, `POST_SCALE_UP`.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleStage::ReconcileService => "RECONCILE_SERVICE",
            LifecycleStage::PreScaleUp => "PRE_SCALE_UP",
            LifecycleStage::PostScaleUp => "POST_SCALE_UP",
            LifecycleStage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            LifecycleStage::PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
            LifecycleStage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            LifecycleStage::PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
        }
    }

    /// From the ECS name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    pub const ALL: [LifecycleStage; 7] = [
        LifecycleStage::ReconcileService,
        LifecycleStage::PreScaleUp,
        LifecycleStage::PostScaleUp,
        LifecycleStage::TestTrafficShift,
        LifecycleStage::PostTestTrafficShift,
        LifecycleStage::ProductionTrafficShift,
        LifecycleStage::PostProductionTrafficShift,
    ];
}

impl std::fmt::Display for LifecycleStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ECS `DeploymentLifecycleHookTimeoutConfiguration`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleHookTimeoutConfiguration {
    /// Minutes the hook may take (1-20160, default 1440).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 20160))]
    pub timeout_in_minutes: Option<i32>,
    /// What happens then: `ROLLBACK` (default) or `CONTINUE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<LifecycleHookAction>,
}

/// ContinueServiceDeployment's `action`, and a timeout's.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleHookAction {
    /// The deployment goes on to its next stage.
    Continue,
    /// The deployment rolls back to the previous service revision.
    Rollback,
}

impl LifecycleHookAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleHookAction::Continue => "CONTINUE",
            LifecycleHookAction::Rollback => "ROLLBACK",
        }
    }
}

/// A hook's state in a deployment (ECS `DeploymentLifecycleHookDetail`, with the stage and the task).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleHookDetail {
    /// `<deployment id>/<stage>/<hook index>`, e.g. `ecs-svc/3/POST_SCALE_UP/0`: one run of one hook.
    pub hook_id: String,
    pub lifecycle_stage: LifecycleStage,
    /// The hook's position in `deploymentConfiguration.lifecycleHooks`.
    pub hook_index: u32,
    pub target_type: LifecycleHookTargetType,
    /// The task definition the hook runs (not for PAUSE hooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arn: Option<String>,
    pub status: LifecycleHookStatus,
    /// The hook's Task, once it was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_name: Option<String>,
    pub started_at: Time,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Time>,
    /// When the hook times out.
    pub expires_at: Time,
    pub timeout_action: LifecycleHookAction,
    /// The ContinueServiceDeployment action that ended a PAUSE hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<LifecycleHookAction>,
    /// Why the hook ended as it did (or cannot run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// ECS hook statuses.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleHookStatus {
    /// A PAUSE hook waits for ContinueServiceDeployment.
    AwaitingAction,
    /// The hook's task runs.
    InProgress,
    Succeeded,
    Failed,
    /// The timeout passed; `timeoutAction` says what followed.
    TimedOut,
}

impl LifecycleHookStatus {
    /// The hook is over: its detail never changes again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            LifecycleHookStatus::Succeeded
                | LifecycleHookStatus::Failed
                | LifecycleHookStatus::TimedOut
        )
    }
}
