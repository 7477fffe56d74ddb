//! Label and annotation keys the operator puts on what it creates.

/// Marks every object the operator creates; watches are restricted to it.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGER: &str = "ecs-operator";
/// `MANAGED_BY=MANAGER`, as a label selector.
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=ecs-operator";

/// On a pod: the name of its Task.
pub const TASK: &str = "ecs.operator.dev/task";
/// On pods and ControllerRevisions: the task definition family.
pub const TASK_DEFINITION: &str = "ecs.operator.dev/task-definition";
/// On pods: the task definition revision the task runs.
pub const REVISION: &str = "ecs.operator.dev/revision";
/// On Tasks and pods of a Service: the service name.
pub const SERVICE: &str = "ecs.operator.dev/service";
/// The task group (`service:web`, `family:web`) as a label value; see [`crate::placement::group_label_value`].
pub use crate::placement::GROUP_LABEL as GROUP;

/// On a TaskDefinition: revisions that are deregistered (INACTIVE), e.g. `"1,2,5"`.
pub const INACTIVE_REVISIONS: &str = "ecs.operator.dev/inactive-revisions";
/// On a pod: the ECS facts about its containers the task lifecycle needs (JSON).
pub const CONTAINERS: &str = "ecs.operator.dev/containers";
/// On a pod: the task definition it was built from, `family:revision`.
pub const TASK_DEFINITION_REF: &str = "ecs.operator.dev/task-definition";
/// On a Task of a Service: the availability zone it should preferably run in (the service's zone
/// balance); unlike a memberOf constraint, it never keeps the task from starting elsewhere.
pub const PREFERRED_ZONE: &str = "ecs.operator.dev/preferred-zone";
/// On a Task of a Service: the zone it was started in to rebalance the service (it is pinned there);
/// a service's own zone constraint looks the same, so the pin alone does not tell.
pub const REBALANCING_ZONE: &str = "ecs.operator.dev/rebalancing-zone";
/// On a Task of a Service: the images its deployment pinned to a digest (ECS `versionConsistency`), as a
/// JSON object from ECS container name to `image@sha256:…`; the pod runs those instead of the tags.
pub const PINNED_IMAGES: &str = "ecs.operator.dev/pinned-images";
/// On a Task of a Service: task scale-in protection (ECS UpdateTaskProtection), the RFC 3339 time it
/// expires. Until then, scale-in, deployments and AZ rebalancing do not stop the task.
pub const SCALE_IN_PROTECTION: &str = "ecs.operator.dev/scale-in-protection";
/// On a Service: stop this deployment (`ecs-svc/N`, ECS StopServiceDeployment); acted on once.
pub const STOP_DEPLOYMENT: &str = "ecs.operator.dev/stop-deployment";
/// On a Service: how to stop the deployment named by [`STOP_DEPLOYMENT`] (`ROLLBACK`, the default).
pub const STOP_DEPLOYMENT_TYPE: &str = "ecs.operator.dev/stop-deployment-type";
/// On a Task run by a deployment lifecycle hook: the service's name. Not [`SERVICE`]: a hook task is no
/// task of the service (it is not counted, replaced or load balanced).
pub const LIFECYCLE_HOOK_OF: &str = "ecs.operator.dev/lifecycle-hook-of";
/// On a hook's Task: the hook run's id, `<deployment id>/<STAGE>/<hook index>`.
pub const LIFECYCLE_HOOK_ID: &str = "ecs.operator.dev/lifecycle-hook-id";
/// On a Service: ContinueServiceDeployment for a PAUSE hook, `<deployment id>/<STAGE>=CONTINUE|ROLLBACK`.
pub const LIFECYCLE_HOOK_ACTION: &str = "ecs.operator.dev/lifecycle-hook-action";
