//! Task: one running instance of a task definition, in the shape of the ECS RunTask request, with the
//! ECS DescribeTasks view of its life in `status`. One Task is one Pod.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::TASK_DEFINITION_REF_MESSAGE;
use super::TASK_DEFINITION_REF_RULE;
use super::common::{
    CapacityProviderStrategyItem, KeyValuePair, LaunchType, NetworkConfiguration, PropagateTags,
    Tag,
};
use super::placement::{PlacementConstraint, PlacementStrategy};
use super::task_definition::{EnvironmentFile, EphemeralStorage, ResourceRequirement};
pub use super::task_state::{ContainerLastStatus, HealthStatus, LastStatus, StopCode};

/// One running instance of a task definition: one Pod. A stopped Task is never restarted or replaced.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ecs.operator.dev",
    version = "v1alpha1",
    kind = "Task",
    namespaced,
    status = "TaskStatus",
    shortname = "ecstask",
    category = "ecs",
    printcolumn = r#"{"name":"Task Definition","type":"string","jsonPath":".status.taskDefinition","description":"family:revision the task runs"}"#,
    printcolumn = r#"{"name":"Last Status","type":"string","jsonPath":".status.lastStatus"}"#,
    printcolumn = r#"{"name":"Desired Status","type":"string","jsonPath":".spec.desiredStatus"}"#,
    printcolumn = r#"{"name":"Health","type":"string","jsonPath":".status.healthStatus"}"#,
    printcolumn = r#"{"name":"Zone","type":"string","jsonPath":".status.availabilityZone"}"#,
    printcolumn = r#"{"name":"Stop Code","type":"string","jsonPath":".status.stopCode","priority":1}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("size(self.metadata.name) <= 63").message("a task name can have up to 63 characters (it names the task's pod)"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.taskDefinition == oldSelf.taskDefinition").message("taskDefinition of a task cannot change: stop this task and run a new one"),
    validation = Rule::new("has(self.overrides) == has(oldSelf.overrides) && (!has(self.overrides) || self.overrides == oldSelf.overrides)").message("overrides of a task cannot change: stop this task and run a new one"),
    validation = Rule::new("oldSelf.desiredStatus != 'STOPPED' || self.desiredStatus == 'STOPPED'").message("a stopped task cannot be started again: run a new task"),
    validation = Rule::new("!has(self.count) || self.count == 1").message("count must be 1: one Task is one task; create several Tasks (or a Service) to run more"),
)]
pub struct TaskSpec {
    /// `family` (its latest ACTIVE revision, resolved once when the task starts) or `family:revision`,
    /// of a TaskDefinition in the same namespace.
    #[schemars(length(min = 1, max = 266))]
    #[x_kube(validation = Rule::new(TASK_DEFINITION_REF_RULE).message(TASK_DEFINITION_REF_MESSAGE))]
    pub task_definition: String,
    /// `RUNNING` (default) or `STOPPED`. Setting `STOPPED` stops the task (ECS StopTask).
    #[serde(default = "default_desired_status")]
    pub desired_status: DesiredStatus,
    /// The StopTask reason: becomes `status.stoppedReason` when the task is stopped by its user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub reason: Option<String>,
    /// Accepted; the Kubernetes cluster is the ECS cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub cluster: Option<String>,
    /// Per-task changes to the task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<TaskOverride>,
    /// Placement constraints, added to the task definition's (at most 10 in all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    /// Placement strategies (at most 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5))]
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    /// Free-form origin of the task, e.g. a job id (up to 128 characters). A Service sets its
    /// deployment id here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub started_by: Option<String>,
    /// Task group (default `family:<family>`; service tasks are in `service:<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub group: Option<String>,
    /// RunTask `count`. Only 1 is accepted: each Task object is one task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub count: Option<i32>,
    /// Accepted; Kubernetes nodes are the only capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch_type: Option<LaunchType>,
    /// Accepted; Kubernetes nodes are the only capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub capacity_provider_strategy: Option<Vec<CapacityProviderStrategyItem>>,
    /// Accepted; Fargate platform versions do not apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub platform_version: Option<String>,
    /// Accepted; pods get their network from the cluster's CNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    /// Accepted; not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    /// ECS Exec. Accepted; use `kubectl exec` on the task's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_execute_command: Option<bool>,
    /// Accepted; tags are copied to the pod as annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<PropagateTags>,
    /// Accepted; not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub reference_id: Option<String>,
    /// Tags, copied to the pod as annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub tags: Option<Vec<Tag>>,
    /// Idempotency token. Accepted; the object name already makes a Task unique.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub client_token: Option<String>,
}

fn default_desired_status() -> DesiredStatus {
    DesiredStatus::Running
}

/// What the user wants the task to be.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DesiredStatus {
    #[default]
    Running,
    Stopped,
}

impl DesiredStatus {
    /// The ECS word, `RUNNING` or `STOPPED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DesiredStatus::Running => "RUNNING",
            DesiredStatus::Stopped => "STOPPED",
        }
    }
}

impl std::fmt::Display for DesiredStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-task changes to the task definition (RunTask `overrides`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskOverride {
    /// Per-container changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub container_overrides: Option<Vec<ContainerOverride>>,
    /// Task CPU units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub cpu: Option<String>,
    /// Task memory in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub memory: Option<String>,
    /// Task role → ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub task_role_arn: Option<String>,
    /// Not honoured (see the task definition field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub execution_role_arn: Option<String>,
    /// Ephemeral storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub inference_accelerator_overrides: Option<Vec<InferenceAcceleratorOverride>>,
}

/// Per-container changes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerOverride {
    /// The container to change.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// Replaces the container's `command` (Docker CMD → Kubernetes args).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub command: Option<Vec<String>>,
    /// Added to (and overriding) the container's environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub environment: Option<Vec<KeyValuePair>>,
    /// Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    /// CPU units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 196608))]
    pub cpu: Option<i32>,
    /// Hard memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 6, max = 2147483647))]
    pub memory: Option<i32>,
    /// Soft memory limit, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 6, max = 2147483647))]
    pub memory_reservation: Option<i32>,
    /// GPU requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
}

/// An inference accelerator override.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferenceAcceleratorOverride {
    /// Device name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub device_name: Option<String>,
    /// Device type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub device_type: Option<String>,
}

/// The task as ECS DescribeTasks shows it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The resolved task definition, `family:revision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// PROVISIONING, PENDING, ACTIVATING, RUNNING, DEACTIVATING, STOPPING, DEPROVISIONING or STOPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<LastStatus>,
    /// RUNNING or STOPPED: what the task is heading for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_status: Option<DesiredStatus>,
    /// HEALTHY, UNHEALTHY or UNKNOWN, from the essential containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<HealthStatus>,
    /// Why the task stopped: TaskFailedToStart, EssentialContainerExited, UserInitiated,
    /// ServiceSchedulerInitiated, SpotInterruption, TerminationNotice or InfrastructureHealth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<StopCode>,
    /// The reason in words, e.g. "Essential container in task exited".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// The task's containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerStatus>,
    /// The zone of the node the task runs on (`topology.kubernetes.io/zone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// The node (ECS container instance) the task runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance: Option<String>,
    /// The task's pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// The task group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Who started the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// Task CPU units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Task memory MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// When the task was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// When image pulls started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Time>,
    /// When image pulls finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Time>,
    /// When the task reached RUNNING.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the task started stopping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<Time>,
    /// When the containers stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<Time>,
    /// When the task reached STOPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Time>,
    /// Increases with each change of lastStatus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// `Ready` (the task is RUNNING and healthy), `Stopped` and, once the annotation
    /// `ecs.operator.dev/scale-in-protection` was set, `ScaleInProtection`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Task scale-in protection (ECS GetTaskProtection's ProtectedTask), from the annotation
    /// `ecs.operator.dev/scale-in-protection`; absent while the annotation never was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protection: Option<TaskProtection>,
}

/// ECS ProtectedTask: whether scale-in and deployments may stop the task, and until when not.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskProtection {
    /// The task is protected: scale-in, deployments and AZ rebalancing do not stop it.
    pub protection_enabled: bool,
    /// When the protection ends (while enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<Time>,
}

/// One container of a task, as ECS DescribeTasks shows it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    /// Container name.
    pub name: String,
    /// Image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Image digest, once pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// Container runtime id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    /// PENDING, RUNNING or STOPPED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<ContainerLastStatus>,
    /// Exit code once stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Why it stopped, e.g. "OutOfMemoryError: Container killed due to memory usage".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// HEALTHY, UNHEALTHY or UNKNOWN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<HealthStatus>,
    /// Whether the container is essential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    /// Port bindings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_bindings: Vec<NetworkBinding>,
}

/// A container port binding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NetworkBinding {
    /// The pod IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_ip: Option<String>,
    /// Container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<i32>,
    /// Host port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i32>,
    /// `tcp` or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}
