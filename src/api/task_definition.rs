//! TaskDefinition: the blueprint of a task, in the shape of the ECS RegisterTaskDefinition request.
//!
//! Field names are spelled as the ECS API JSON spells them, so a real ECS task definition pastes into
//! `spec`. Every field ECS accepts is here, also those Kubernetes cannot honour: they are accepted and
//! reported in `status.notHonoured`, never silently pruned.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{KeyValuePair, Tag};
use super::placement::PlacementConstraint;
use super::words::ecs_words;

/// The blueprint of a task: one or more containers that run together as one Pod.
///
/// `metadata.name` is the task definition family. Every change to `spec` registers a new immutable
/// revision (`status.latestRevision`); tasks and services name `family` (the latest ACTIVE revision) or
/// `family:revision`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ecs.operator.dev",
    version = "v1alpha1",
    kind = "TaskDefinition",
    namespaced,
    status = "TaskDefinitionStatus",
    shortname = "ecstd",
    category = "ecs",
    printcolumn = r#"{"name":"Revision","type":"integer","jsonPath":".status.latestRevision","description":"Latest registered revision"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.status","description":"ACTIVE when the latest revision can be used"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("the task definition family is metadata.name: it may contain only lowercase letters, digits and hyphens (the ECS family characters that Kubernetes names allow)"),
    validation = Rule::new("!has(self.spec.family) || self.spec.family == self.metadata.name").message("family must match metadata.name: the object name is the task definition family"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.containerDefinitions.all(c, self.containerDefinitions.exists_one(o, o.name == c.name))").message("container names must be unique within a task definition"),
    validation = Rule::new("self.containerDefinitions.exists(c, !has(c.essential) || c.essential)").message("at least one essential container is required: set essential to true on one container"),
    validation = Rule::new("self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, self.containerDefinitions.exists(o, o.name == d.containerName)))").message("dependsOn containerName must name a container of this task definition"),
    validation = Rule::new("self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, d.containerName != c.name))").message("a container cannot depend on itself"),
    validation = Rule::new("self.containerDefinitions.all(c, !has(c.dependsOn) || c.dependsOn.all(d, !(d.condition in ['COMPLETE', 'SUCCESS']) || self.containerDefinitions.exists(o, o.name == d.containerName && has(o.essential) && !o.essential)))").message("a dependsOn condition of COMPLETE or SUCCESS requires the dependency container to be non-essential (essential: false)"),
    validation = Rule::new("self.containerDefinitions.all(c, !has(c.mountPoints) || c.mountPoints.all(m, !has(m.sourceVolume) || (has(self.volumes) && self.volumes.exists(v, v.name == m.sourceVolume))))").message("mountPoints sourceVolume must name a volume of this task definition"),
    validation = Rule::new("self.containerDefinitions.all(c, !has(c.volumesFrom) || c.volumesFrom.all(v, self.containerDefinitions.exists(o, o.name == v.sourceContainer)))").message("volumesFrom sourceContainer must name a container of this task definition"),
    validation = Rule::new("!has(self.volumes) || self.volumes.all(v, self.volumes.exists_one(o, o.name == v.name))").message("volume names must be unique within a task definition"),
    validation = Rule::new("!has(self.networkMode) || self.networkMode != 'none' || self.containerDefinitions.all(c, !has(c.portMappings) || size(c.portMappings) == 0)").message("portMappings are not supported when networkMode is none"),
    validation = Rule::new("!has(self.networkMode) || !(self.networkMode in ['host', 'awsvpc']) || self.containerDefinitions.all(c, !has(c.portMappings) || c.portMappings.all(p, !has(p.hostPort) || !has(p.containerPort) || p.hostPort == p.containerPort))").message("with networkMode host or awsvpc, hostPort must be omitted or equal to containerPort"),
    validation = Rule::new("!has(self.placementConstraints) || self.placementConstraints.all(p, p.type == 'memberOf')").message("task definition placementConstraints support only type memberOf"),
)]
pub struct TaskDefinitionSpec {
    /// The family. Optional here: `metadata.name` is the family; when given it must equal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub family: Option<String>,
    /// The containers of the task (1 to 10).
    #[schemars(length(max = 10))]
    #[x_kube(validation = Rule::new("size(self) >= 1").message("containerDefinitions needs at least one container"))]
    pub container_definitions: Vec<ContainerDefinition>,
    /// The identity of the task's containers. On Kubernetes: the ServiceAccount of the task's pod, named
    /// directly (`my-sa`) or by the role name of an IAM role ARN (`arn:aws:iam::123456789012:role/my-sa`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub task_role_arn: Option<String>,
    /// The ECS agent's identity for image pulls, logs and secrets. Not honoured: the kubelet pulls
    /// images (use imagePullSecrets on the ServiceAccount) and the operator reads no secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub execution_role_arn: Option<String>,
    /// `bridge` (default), `host`, `awsvpc` or `none`. `host` → hostNetwork; the others give the pod
    /// its own network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    /// Data volumes the containers can mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub volumes: Option<Vec<Volume>>,
    /// Placement constraints (`memberOf` only) applied to every task of this definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    /// Launch types the definition is validated against: `EC2`, `FARGATE`, `EXTERNAL`,
    /// `MANAGED_INSTANCES`. Accepted; Kubernetes nodes are the only capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4))]
    pub requires_compatibilities: Option<Vec<Compatibility>>,
    /// Task CPU units (1024 = 1 vCPU), as ECS accepts it: "256", "1024", "1 vCPU", "0.5 vcpu".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub cpu: Option<String>,
    /// Task memory in MiB ("512") or with a unit ("1GB", "2 GB").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub memory: Option<String>,
    /// Tags. Copied to the task's pod as annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub tags: Option<Vec<Tag>>,
    /// `host` shares the node's PID namespace (hostPID); `task` shares one namespace between the task's
    /// containers (shareProcessNamespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<PidMode>,
    /// `host` → hostIPC; `task` is the pod default; `none` is not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<IpcMode>,
    /// App Mesh proxy configuration. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_configuration: Option<ProxyConfiguration>,
    /// Elastic Inference accelerators. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub inference_accelerators: Option<Vec<InferenceAccelerator>>,
    /// Ephemeral storage for the task (21–200 GiB) → an ephemeral-storage limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// CPU architecture and OS family → `kubernetes.io/arch` and `kubernetes.io/os` node selectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatform>,
    /// AWS Fault Injection Service. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_fault_injection: Option<bool>,
}

/// One container of the task, in the shape of the ECS ContainerDefinition.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.memory) || !has(self.memoryReservation) || self.memory > self.memoryReservation").message("memory must be greater than memoryReservation when both are set"),
    validation = Rule::new("!has(self.portMappings) || self.portMappings.all(p, has(p.containerPort) || has(p.containerPortRange))").message("each portMappings entry needs a containerPort (or a containerPortRange)"),
)]
pub struct ContainerDefinition {
    /// Container name: up to 255 letters, digits, hyphens and underscores, unique in the task.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_-]+$')").message("container name may contain only letters, digits, hyphens and underscores"))]
    pub name: String,
    /// Image: `repository[:tag]` or `repository@sha256:digest`.
    #[schemars(length(min = 1, max = 1024))]
    pub image: String,
    /// Private registry credentials (a Secrets Manager ARN). Not honoured: use imagePullSecrets on the
    /// task's ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<RepositoryCredentials>,
    /// CPU units (1024 = 1 vCPU) → CPU request in millicores (1024 units = 1000m). A share, not a cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 196608))]
    pub cpu: Option<i32>,
    /// Hard memory limit in MiB → memory limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 6, max = 2147483647))]
    pub memory: Option<i32>,
    /// Soft memory limit in MiB → memory request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 6, max = 2147483647))]
    pub memory_reservation: Option<i32>,
    /// Legacy Docker links. Not honoured: containers of a task share localhost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub links: Option<Vec<String>>,
    /// Ports the container listens on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub port_mappings: Option<Vec<PortMapping>>,
    /// Default true. When an essential container stops, the whole task stops.
    #[serde(default = "default_true", skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    /// Restart the container in place when it exits (off by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<ContainerRestartPolicy>,
    /// Docker ENTRYPOINT → the Kubernetes container `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub entry_point: Option<Vec<String>>,
    /// Docker CMD → the Kubernetes container `args`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub command: Option<Vec<String>>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub environment: Option<Vec<KeyValuePair>>,
    /// S3 environment files. Not honoured: use `environment` or `secrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub environment_files: Option<Vec<EnvironmentFile>>,
    /// Volume mounts (at most 40).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 40))]
    pub mount_points: Option<Vec<MountPoint>>,
    /// Mount all volumes of another container of the task (at most 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5))]
    pub volumes_from: Option<Vec<VolumeFrom>>,
    /// Linux-specific options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    /// Secrets exposed as environment variables. `valueFrom` names a Secret of the task's namespace as
    /// `secret-name:key` (or a Secrets Manager ARN, whose secret name and JSON key are used the same way).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1000))]
    pub secrets: Option<Vec<Secret>>,
    /// Containers this one waits for before it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub depends_on: Option<Vec<ContainerDependency>>,
    /// Seconds this container may take, from its own start, to reach what the containers depending on
    /// it wait for (COMPLETE, SUCCESS or HEALTHY); past it they give up and the task stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 3600))]
    pub start_timeout: Option<i32>,
    /// Seconds between SIGTERM and SIGKILL when the task stops (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub stop_timeout: Option<i32>,
    /// Image digest resolution: `enabled` (default) or `disabled`. Enabled, every task of one service
    /// deployment runs the digest its first RUNNING task pulled (`image@sha256:…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_consistency: Option<VersionConsistency>,
    /// Container hostname. Honoured when the task has one container (the pod hostname).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub hostname: Option<String>,
    /// `uid`, `uid:gid` (numeric → securityContext runAsUser/runAsGroup). User names cannot be resolved
    /// before the container starts and are reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub user: Option<String>,
    /// Working directory → `workingDir`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub working_directory: Option<String>,
    /// Disable networking. Not honoured (a pod always has networking).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_networking: Option<bool>,
    /// Privileged → securityContext.privileged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    /// Read-only root filesystem → securityContext.readOnlyRootFilesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    /// DNS servers → pod dnsConfig.nameservers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 3))]
    pub dns_servers: Option<Vec<String>>,
    /// DNS search domains → pod dnsConfig.searches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub dns_search_domains: Option<Vec<String>>,
    /// Extra /etc/hosts entries → pod hostAliases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100))]
    pub extra_hosts: Option<Vec<HostEntry>>,
    /// Docker security options (SELinux/AppArmor labels). Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub docker_security_options: Option<Vec<String>>,
    /// Keep stdin open → `stdin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<bool>,
    /// Allocate a TTY → `tty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_terminal: Option<bool>,
    /// Docker labels → the pod annotation `ecs.operator.dev/docker-labels.<container>` as JSON (pods
    /// have no per-container labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_labels: Option<BTreeMap<String, String>>,
    /// Resource limits (ulimits). Not honoured: Kubernetes has no per-container ulimits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub ulimits: Option<Vec<Ulimit>>,
    /// Log driver configuration. Not honoured: container logs go to the node's log pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    /// Container health check → probes; an unhealthy essential container stops the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Namespaced kernel parameters → pod securityContext.sysctls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub system_controls: Option<Vec<SystemControl>>,
    /// GPU or inference accelerator requirements. `GPU` → an `nvidia.com/gpu` limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub resource_requirements: Option<Vec<ResourceRequirement>>,
    /// FireLens log router. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firelens_configuration: Option<FirelensConfiguration>,
    /// Active Directory credential specs. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub credential_specs: Option<Vec<String>>,
}

fn default_true() -> Option<bool> {
    Some(true)
}

/// A port the container listens on.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// The container port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub container_port: Option<i32>,
    /// The host port (bridge: absent or 0 means none on Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub host_port: Option<i32>,
    /// `tcp` (default) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<TransportProtocol>,
    /// Port name → the container port name (lowercased; at most 15 characters on Kubernetes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub name: Option<String>,
    /// `http`, `http2` or `grpc` → the Service port appProtocol.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<AppProtocol>,
    /// A port range such as "8000-8010". Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub container_port_range: Option<String>,
}

/// `tcp` or `udp`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TransportProtocol {
    Tcp,
    Udp,
}

/// Application protocol of a port.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppProtocol {
    Http,
    Http2,
    Grpc,
}

/// The task's network mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    Bridge,
    Host,
    Awsvpc,
    None,
}

/// Launch type compatibility.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    Ec2,
    Fargate,
    External,
    ManagedInstances,
}

/// PID namespace mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PidMode {
    Host,
    Task,
}

/// IPC namespace mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IpcMode {
    Host,
    Task,
    None,
}

/// Image digest resolution.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VersionConsistency {
    Enabled,
    Disabled,
}

/// Restart a container in place when it exits.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRestartPolicy {
    /// Whether the policy is on.
    pub enabled: bool,
    /// Exit codes that do not trigger a restart → a container restart rule restarting on every other
    /// exit code; an essential container exiting with one stops the task (also as a native sidecar,
    /// which Kubernetes always restarts; reported as not honoured on a non-essential sidecar).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub ignored_exit_codes: Option<Vec<i32>>,
    /// Seconds a container must run before a restart is attempted (60–1800, default 300). An essential
    /// container exiting sooner stops the task; not honoured on a non-essential container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 1800))]
    pub restart_attempt_period: Option<i32>,
}

/// A volume mount.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MountPoint {
    /// Name of a volume of the task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub source_volume: Option<String>,
    /// Path in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub container_path: Option<String>,
    /// Mount read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// Mount the volumes of another container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeFrom {
    /// The container whose volumes are mounted.
    #[schemars(length(max = 255))]
    pub source_container: String,
    /// Mount them read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// A secret exposed as an environment variable.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// Environment variable name.
    #[schemars(length(min = 1, max = 255))]
    pub name: String,
    /// `secret-name:key` of a Secret in the task's namespace, or a Secrets Manager / SSM ARN.
    #[schemars(length(min = 1, max = 2048))]
    pub value_from: String,
}

/// A startup dependency on another container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDependency {
    /// The container depended on.
    #[schemars(length(min = 1, max = 255))]
    pub container_name: String,
    /// `START`, `COMPLETE`, `SUCCESS` or `HEALTHY`.
    pub condition: DependencyCondition,
}

/// When a dependency is satisfied.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DependencyCondition {
    /// The dependency has started.
    #[default]
    Start,
    /// The dependency has exited, with any exit code.
    Complete,
    /// The dependency has exited with code 0.
    Success,
    /// The dependency passed its health check.
    Healthy,
}

/// Linux-specific container options.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinuxParameters {
    /// Capabilities to add or drop → securityContext.capabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<KernelCapabilities>,
    /// Host devices. Not honoured (use a device plugin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub devices: Option<Vec<Device>>,
    /// Run an init process as PID 1 → pod shareProcessNamespace (the pause container reaps zombies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_process_enabled: Option<bool>,
    /// /dev/shm size in MiB → a memory-backed emptyDir mounted at /dev/shm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2147483647))]
    pub shared_memory_size: Option<i32>,
    /// tmpfs mounts → memory-backed emptyDirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub tmpfs: Option<Vec<Tmpfs>>,
    /// Swap in MiB. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2147483647))]
    pub max_swap: Option<i32>,
    /// Swappiness 0–100. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub swappiness: Option<i32>,
}

/// Linux capabilities.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KernelCapabilities {
    /// Capabilities to add, e.g. `NET_ADMIN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub add: Option<Vec<String>>,
    /// Capabilities to drop, e.g. `ALL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub drop: Option<Vec<String>>,
}

/// A host device.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Path on the host.
    #[schemars(length(max = 4096))]
    pub host_path: String,
    /// Path in the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub container_path: Option<String>,
    /// `read`, `write`, `mknod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 3))]
    pub permissions: Option<Vec<String>>,
}

/// A tmpfs mount.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Tmpfs {
    /// Path in the container.
    #[schemars(length(max = 4096))]
    pub container_path: String,
    /// Size in MiB → the emptyDir sizeLimit.
    #[schemars(range(min = 1, max = 2147483647))]
    pub size: i32,
    /// Mount options. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub mount_options: Option<Vec<String>>,
}

/// An /etc/hosts entry.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostEntry {
    /// Host name.
    #[schemars(length(max = 255))]
    pub hostname: String,
    /// IP address.
    #[schemars(length(max = 64))]
    pub ip_address: String,
}

/// A ulimit.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ulimit {
    /// e.g. `nofile`.
    #[schemars(length(max = 32))]
    pub name: String,
    /// Soft limit.
    pub soft_limit: i64,
    /// Hard limit.
    pub hard_limit: i64,
}

/// Log driver configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogConfiguration {
    /// e.g. `awslogs`, `json-file`.
    #[schemars(length(max = 64))]
    pub log_driver: String,
    /// Driver options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
    /// Secrets for the driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub secret_options: Option<Vec<Secret>>,
}

/// A container health check, as Docker runs it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!(self.command[0] in ['CMD', 'CMD-SHELL']) || size(self.command) >= 2").message("healthCheck command needs a command after CMD or CMD-SHELL"),
)]
pub struct HealthCheck {
    /// `["CMD", "executable", "arg", …]` or `["CMD-SHELL", "shell command"]`. Any other first word is
    /// accepted, as ECS accepts it, and ignored, as Docker ignores it: the container has no health check
    /// (reported in the TaskDefinition's `status.notHonoured`).
    #[schemars(length(min = 1, max = 100))]
    pub command: Vec<String>,
    /// Seconds between checks (5–300, default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 5, max = 300))]
    pub interval: Option<i32>,
    /// Seconds before a check fails (2–60, default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2, max = 60))]
    pub timeout: Option<i32>,
    /// Consecutive failures before UNHEALTHY (1–10, default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub retries: Option<i32>,
    /// Grace period in seconds during which failures do not count (0–300, default off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 300))]
    pub start_period: Option<i32>,
}

/// A namespaced kernel parameter.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SystemControl {
    /// e.g. `net.core.somaxconn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub namespace: Option<String>,
    /// Value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub value: Option<String>,
}

/// A GPU or accelerator requirement.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirement {
    /// Number of GPUs, or the accelerator device name.
    #[schemars(length(max = 64))]
    pub value: String,
    /// `GPU` or `InferenceAccelerator`.
    #[serde(rename = "type")]
    #[schemars(length(max = 64))]
    pub type_: String,
}

/// FireLens log router configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FirelensConfiguration {
    /// `fluentd` or `fluentbit`.
    #[serde(rename = "type")]
    #[schemars(length(max = 32))]
    pub type_: String,
    /// Options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<BTreeMap<String, String>>,
}

/// Private registry credentials.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryCredentials {
    /// Secrets Manager ARN.
    #[schemars(length(max = 2048))]
    pub credentials_parameter: String,
}

/// An S3 environment file.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentFile {
    /// S3 object ARN.
    #[schemars(length(max = 2048))]
    pub value: String,
    /// `s3`.
    #[serde(rename = "type")]
    #[schemars(length(max = 16))]
    pub type_: String,
}

/// A data volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Volume name, referenced by mountPoints sourceVolume.
    #[schemars(length(min = 1, max = 255))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_-]+$')").message("volume name may contain only letters, digits, hyphens and underscores"))]
    pub name: String,
    /// A host path → hostPath. Without `sourcePath`, a scratch volume (emptyDir).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostVolumeProperties>,
    /// Provided when the task is launched. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configured_at_launch: Option<bool>,
    /// A Docker volume → emptyDir (scope `task`); driver `persistentVolumeClaim` with driverOpts
    /// `claimName` → that PersistentVolumeClaim of the task's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_volume_configuration: Option<DockerVolumeConfiguration>,
    /// Amazon EFS. Not honoured: use a PersistentVolumeClaim (see dockerVolumeConfiguration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<EfsVolumeConfiguration>,
    /// FSx for Windows File Server. Not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fsx_windows_file_server_volume_configuration:
        Option<FsxWindowsFileServerVolumeConfiguration>,
}

/// A host volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostVolumeProperties {
    /// Path on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub source_path: Option<String>,
}

/// A Docker volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DockerVolumeConfiguration {
    /// `task` or `shared`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub scope: Option<String>,
    /// Create the volume if missing (shared scope).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoprovision: Option<bool>,
    /// Volume driver; `persistentVolumeClaim` selects a PersistentVolumeClaim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub driver: Option<String>,
    /// Driver options; for `persistentVolumeClaim`: `claimName` (and optional `readOnly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_opts: Option<BTreeMap<String, String>>,
    /// Volume labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// An Amazon EFS volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EfsVolumeConfiguration {
    /// File system id.
    #[schemars(length(max = 255))]
    pub file_system_id: String,
    /// Root directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub root_directory: Option<String>,
    /// `ENABLED` or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub transit_encryption: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<i32>,
    /// Access point and IAM authorization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_config: Option<EfsAuthorizationConfig>,
}

/// EFS authorization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EfsAuthorizationConfig {
    /// Access point id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub access_point_id: Option<String>,
    /// `ENABLED` or `DISABLED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub iam: Option<String>,
}

/// An FSx for Windows File Server volume.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FsxWindowsFileServerVolumeConfiguration {
    /// File system id.
    #[schemars(length(max = 255))]
    pub file_system_id: String,
    /// Root directory.
    #[schemars(length(max = 4096))]
    pub root_directory: String,
    /// Credentials and domain.
    pub authorization_config: FsxAuthorizationConfig,
}

/// FSx authorization.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FsxAuthorizationConfig {
    /// Secrets Manager or SSM ARN.
    #[schemars(length(max = 2048))]
    pub credentials_parameter: String,
    /// Domain.
    #[schemars(length(max = 255))]
    pub domain: String,
}

/// App Mesh proxy configuration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyConfiguration {
    /// `APPMESH`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub type_: Option<String>,
    /// The proxy container.
    #[schemars(length(max = 255))]
    pub container_name: String,
    /// Properties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub properties: Option<Vec<KeyValuePair>>,
}

/// An Elastic Inference accelerator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InferenceAccelerator {
    /// Device name.
    #[schemars(length(max = 255))]
    pub device_name: String,
    /// Device type.
    #[schemars(length(max = 255))]
    pub device_type: String,
}

/// Ephemeral storage of the task.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EphemeralStorage {
    /// Size in GiB (21–200).
    #[schemars(range(min = 21, max = 200))]
    pub size_in_gi_b: i32,
}

/// Runtime platform.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimePlatform {
    /// `X86_64` or `ARM64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub cpu_architecture: Option<String>,
    /// `LINUX` or a `WINDOWS_SERVER_…` family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub operating_system_family: Option<String>,
}

/// What the operator has registered for a TaskDefinition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinitionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The newest registered revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<i64>,
    /// The newest ACTIVE revision: what `family` alone resolves to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_active_revision: Option<i64>,
    /// `ACTIVE` when the latest revision is ACTIVE, else `INACTIVE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskDefinitionState>,
    /// Every registered revision, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<RevisionStatus>,
    /// Fields that are accepted but have no Kubernetes equivalent, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_honoured: Vec<NotHonouredField>,
    /// `Ready` (a usable revision is registered) and friends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

ecs_words! {
    /// ECS task definition `status` (DeleteTaskDefinitions' DELETE_IN_PROGRESS has no counterpart
    /// here: a revision is never deleted while its TaskDefinition exists).
    #[derive(Default)]
    pub enum TaskDefinitionState {
        #[default]
        Active = "ACTIVE",
        Inactive = "INACTIVE",
    }
}

/// One registered revision.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    /// Revision number, 1, 2, 3…, never reused.
    pub revision: i64,
    /// `ACTIVE` or `INACTIVE` (deregistered).
    pub status: TaskDefinitionState,
    /// When it was registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_at: Option<Time>,
    /// When it was deregistered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistered_at: Option<Time>,
}

/// A field that was accepted but is not honoured on Kubernetes.
#[derive(
    Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct NotHonouredField {
    /// JSON path of the field, e.g. `containerDefinitions[0].logConfiguration`.
    pub field: String,
    /// Why it has no effect.
    pub reason: String,
}

#[cfg(test)]
mod state_tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_stored_status_word_decodes_and_is_written_back_unchanged() {
        for word in ["ACTIVE", "INACTIVE"] {
            let stored = json!({"status": word, "revisions": [{"revision": 1, "status": word}]});
            let decoded: TaskDefinitionStatus = serde_json::from_value(stored.clone()).unwrap();
            assert_eq!(serde_json::to_value(&decoded).unwrap(), stored);
        }
        let unknown = json!({"revisions": [{"revision": 1, "status": "DELETE_IN_PROGRESS"}]});
        assert!(serde_json::from_value::<TaskDefinitionStatus>(unknown).is_err());
    }
}
