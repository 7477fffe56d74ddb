//! Service: keeps `desiredCount` tasks of a task definition running, in the shape of the ECS
//! CreateService request, with the ECS DescribeServices view in `status`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{
    AnyValue, CapacityProviderStrategyItem, LaunchType, NetworkConfiguration, Opaque,
    PropagateTags, Tag,
};
use super::placement::{PlacementConstraint, PlacementStrategy};
pub use super::service_state::{
    DeploymentStatus, RolloutState, ServiceDeploymentLifecycleStage, ServiceDeploymentStatus,
    ServiceState,
};
use super::{TASK_DEFINITION_REF_MESSAGE, TASK_DEFINITION_REF_RULE};

/// Keeps `desiredCount` tasks running, replaces failed ones, balances them across zones, deploys new
/// revisions with ECS rolling deployments, and wires them to a load balancer.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "ecs.operator.dev",
    version = "v1alpha1",
    kind = "Service",
    namespaced,
    status = "ServiceStatus",
    shortname = "ecssvc",
    category = "ecs",
    scale = r#"{"specReplicasPath":".spec.desiredCount","statusReplicasPath":".status.runningCount","labelSelectorPath":".status.selector"}"#,
    printcolumn = r#"{"name":"Task Definition","type":"string","jsonPath":".status.taskDefinition","description":"family:revision of the PRIMARY deployment"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".spec.desiredCount"}"#,
    printcolumn = r#"{"name":"Running","type":"integer","jsonPath":".status.runningCount"}"#,
    printcolumn = r#"{"name":"Pending","type":"integer","jsonPath":".status.pendingCount"}"#,
    printcolumn = r#"{"name":"Rollout","type":"string","jsonPath":".status.rolloutState","description":"rolloutState of the PRIMARY deployment"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new("!has(self.spec.serviceName) || self.spec.serviceName == self.metadata.name").message("serviceName must match metadata.name: the object name is the service name"),
    validation = Rule::new("size(self.metadata.name) <= 52").message("a service name can have up to 52 characters (task and load balancer names are derived from it)"),
)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.schedulingStrategy == 'DAEMON' || has(self.desiredCount)").message("desiredCount is required for a REPLICA service"),
    validation = Rule::new("!has(self.deploymentConfiguration) || !has(self.deploymentConfiguration.minimumHealthyPercent) || !has(self.deploymentConfiguration.maximumPercent) || self.deploymentConfiguration.minimumHealthyPercent <= self.deploymentConfiguration.maximumPercent").message("deploymentConfiguration minimumHealthyPercent must be less than or equal to maximumPercent"),
    validation = Rule::new("self.schedulingStrategy != 'DAEMON' || !has(self.placementStrategy) || size(self.placementStrategy) == 0").message("placementStrategy is not supported for a DAEMON service"),
    validation = Rule::new("!has(self.loadBalancers) || self.loadBalancers.all(l, self.loadBalancers.exists_one(o, o.containerName == l.containerName && o.containerPort == l.containerPort))").message("each loadBalancers entry must name a different containerName/containerPort"),
    validation = Rule::new(format!("!({TRAFFIC_SHIFTING}) || !has(self.deploymentController) || self.deploymentController.type == 'ECS'")).message("strategy BLUE_GREEN, LINEAR and CANARY need deploymentController ECS"),
    validation = Rule::new(format!("!({TRAFFIC_SHIFTING}) || !has(self.loadBalancers) || self.loadBalancers.all(l, has(l.advancedConfiguration))")).message("with strategy BLUE_GREEN, LINEAR or CANARY each loadBalancers entry needs advancedConfiguration (alternateTargetGroupArn)"),
    validation = Rule::new(format!("!({TRAFFIC_SHIFTING}) || self.schedulingStrategy != 'DAEMON'")).message("strategy BLUE_GREEN, LINEAR and CANARY need schedulingStrategy REPLICA"),
)]
pub struct ServiceSpec {
    /// The service name. Optional here: `metadata.name` is the service name; when given it must equal it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub service_name: Option<String>,
    /// Accepted; the Kubernetes cluster is the ECS cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub cluster: Option<String>,
    /// `family` (follows the latest ACTIVE revision) or `family:revision` (pinned), of a
    /// TaskDefinition in the same namespace.
    #[schemars(length(min = 1, max = 266))]
    #[x_kube(validation = Rule::new(TASK_DEFINITION_REF_RULE).message(TASK_DEFINITION_REF_MESSAGE))]
    pub task_definition: String,
    /// How many tasks to keep running (REPLICA). Also the scale subresource: `kubectl scale` and a
    /// HorizontalPodAutoscaler set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 5000))]
    pub desired_count: Option<i32>,
    /// `REPLICA` (default): desiredCount tasks; `DAEMON`: one task per eligible node.
    #[serde(default = "default_scheduling_strategy")]
    pub scheduling_strategy: SchedulingStrategy,
    /// Rolling deployment settings and the circuit breaker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    /// `ECS` (rolling, the default). `CODE_DEPLOY` and `EXTERNAL` are accepted and reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_controller: Option<DeploymentController>,
    /// Load balancers → a Kubernetes Service selecting this service's ready tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5))]
    pub load_balancers: Option<Vec<LoadBalancer>>,
    /// Service discovery → a headless Kubernetes Service (a DNS name for the tasks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1))]
    pub service_registries: Option<Vec<ServiceRegistry>>,
    /// Seconds after a task starts during which failed health checks are ignored (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2147483647))]
    pub health_check_grace_period_seconds: Option<i32>,
    /// Placement constraints (at most 10 with the task definition's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub placement_constraints: Option<Vec<PlacementConstraint>>,
    /// Placement strategies (at most 5). Default: spread over zones, then nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5))]
    pub placement_strategy: Option<Vec<PlacementStrategy>>,
    /// `ENABLED`: move tasks back into balance across zones when they drift. Unset: as ECS decides
    /// for a new service, `ENABLED` when the service is compatible (REPLICA, spread on zones first or no
    /// strategy, …), otherwise `DISABLED`; `status.availabilityZoneRebalancing` shows the value in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone_rebalancing: Option<AvailabilityZoneRebalancing>,
    /// Redeploy without a spec change: change the value (for example to a timestamp) to start a new
    /// deployment. `true`/`false` as in UpdateService work too: each change of value redeploys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_new_deployment: Option<AnyValue>,
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
    /// Accepted; not honoured (no service-linked IAM role).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub role: Option<String>,
    /// Accepted; pods get their network from the cluster's CNI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_configuration: Option<NetworkConfiguration>,
    /// Accepted; tags are copied to tasks as annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagate_tags: Option<PropagateTags>,
    /// Accepted; not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    /// ECS Exec. Accepted; use `kubectl exec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_execute_command: Option<bool>,
    /// Service Connect. Accepted; not honoured (use the load balancer or service registry Services).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_configuration: Option<Opaque>,
    /// Volumes configured at launch. Accepted; not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub volume_configurations: Option<Vec<Opaque>>,
    /// VPC Lattice. Accepted; not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub vpc_lattice_configurations: Option<Vec<Opaque>>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 50))]
    pub tags: Option<Vec<Tag>>,
    /// Idempotency token. Accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub client_token: Option<String>,
}

/// CEL: the service deploys with a traffic-shifting strategy (not ROLLING).
const TRAFFIC_SHIFTING: &str = "has(self.deploymentConfiguration) && has(self.deploymentConfiguration.strategy) && self.deploymentConfiguration.strategy != 'ROLLING'";

fn default_scheduling_strategy() -> SchedulingStrategy {
    SchedulingStrategy::Replica
}

/// How the service places tasks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SchedulingStrategy {
    /// desiredCount tasks.
    #[default]
    Replica,
    /// One task per eligible node.
    Daemon,
}

/// Zone rebalancing.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AvailabilityZoneRebalancing {
    #[default]
    Enabled,
    Disabled,
}

/// Deployment settings: the strategy, its bounds and the circuit breaker.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.canaryConfiguration) || (has(self.strategy) && self.strategy == 'CANARY')").message("canaryConfiguration is only valid with strategy CANARY"),
    validation = Rule::new("!has(self.linearConfiguration) || (has(self.strategy) && self.strategy == 'LINEAR')").message("linearConfiguration is only valid with strategy LINEAR"),
)]
pub struct DeploymentConfiguration {
    /// Upper limit on RUNNING + PENDING tasks during a deployment, in percent of desiredCount
    /// (REPLICA default 200, DAEMON 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 2147483647))]
    pub maximum_percent: Option<i32>,
    /// Lower limit on healthy tasks during a deployment, in percent of desiredCount (REPLICA default
    /// 100, DAEMON 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub minimum_healthy_percent: Option<i32>,
    /// Stop a failing deployment, optionally rolling back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    /// CloudWatch alarms. Accepted; not honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarms: Option<DeploymentAlarms>,
    /// `ROLLING` (the default): tasks are replaced within minimumHealthyPercent/maximumPercent.
    /// `BLUE_GREEN`, `LINEAR`, `CANARY` (REPLICA services): the new revision (green) is scaled up beside
    /// the current one (blue), takes test traffic, then production traffic (at once, in steps, or a
    /// canary share first), and blue is removed after `bakeTimeInMinutes` (docs/deployments.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
    /// BLUE_GREEN, LINEAR, CANARY: minutes blue keeps running after all production traffic reached
    /// green, so that a rollback is instant (0-1440, default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1440))]
    pub bake_time_in_minutes: Option<i32>,
    /// BLUE_GREEN, LINEAR, CANARY: hooks run at lifecycle stages of a deployment (a task of a
    /// TaskDefinition, or a PAUSE until ContinueServiceDeployment); a failed one rolls back
    /// (docs/deployments.md). ROLLING deployments have no lifecycle stages and run none (ECS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 10))]
    pub lifecycle_hooks: Option<Vec<crate::api::lifecycle_hook::LifecycleHook>>,
    /// LINEAR: the production traffic step and the wait between steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear_configuration: Option<LinearConfiguration>,
    /// CANARY: the canary share of production traffic and how long it bakes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary_configuration: Option<CanaryConfiguration>,
}

impl DeploymentConfiguration {
    /// The strategy, ROLLING when unset.
    pub fn strategy(&self) -> DeploymentStrategy {
        self.strategy.unwrap_or(DeploymentStrategy::Rolling)
    }
}

/// CEL: a percentage given in steps of 0.1 (as ECS validates doubles such as 5.0 or 12.5).
const TENTHS_RULE: &str = "(self * 10.0) - double(int(self * 10.0 + 0.5)) < 0.000001 && double(int(self * 10.0 + 0.5)) - (self * 10.0) < 0.000001";

/// LINEAR deployment settings (ECS LinearConfiguration).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LinearConfiguration {
    /// Percent of production traffic moved to green in each step: multiples of 0.1 from 3.0 to
    /// 100.0 (default 10.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3.0, max = 100.0))]
    #[x_kube(validation = Rule::new(TENTHS_RULE).message("stepPercent must be a multiple of 0.1"))]
    pub step_percent: Option<f64>,
    /// Minutes between steps, 0-1440 (default 6); not after the step that reaches 100 %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1440))]
    pub step_bake_time_in_minutes: Option<i32>,
}

/// CANARY deployment settings (ECS CanaryConfiguration).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryConfiguration {
    /// Percent of production traffic green gets first: multiples of 0.1 from 0.1 to 100.0
    /// (default 5.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.1, max = 100.0))]
    #[x_kube(
        validation = Rule::new(TENTHS_RULE).message("canaryPercent must be a multiple of 0.1"),
        // The schema minimum is compared as a whole number when the value is one (0 passes 0.1).
        validation = Rule::new("self >= 0.1").message("canaryPercent must be greater than or equal to 0.1"),
    )]
    pub canary_percent: Option<f64>,
    /// Minutes the canary share runs before the rest moves, 0-1440 (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1440))]
    pub canary_bake_time_in_minutes: Option<i32>,
}

/// The deployment circuit breaker.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentCircuitBreaker {
    /// Turn the breaker on.
    pub enable: bool,
    /// On failure, roll back to the last COMPLETED deployment.
    pub rollback: bool,
    /// How many failed tasks fail the deployment (default `BOUNDED_PERCENT` 50: ceil(50 % ×
    /// desiredCount) within [3, 200]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_configuration: Option<ThresholdConfiguration>,
    /// `true` (default): a task of the deployment that becomes healthy resets the failure count to
    /// 0; `false`: failures add up over the whole deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_on_healthy_task: Option<bool>,
}

impl DeploymentCircuitBreaker {
    /// `resetOnHealthyTask`, default true.
    pub fn resets_on_healthy_task(&self) -> bool {
        self.reset_on_healthy_task.unwrap_or(true)
    }
}

/// The circuit breaker's failure threshold: `type` and `value` together.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type == 'COUNT' || self.value <= 100").message("thresholdConfiguration value is a percentage (1-100) for BOUNDED_PERCENT and UNBOUNDED_PERCENT"),
)]
pub struct ThresholdConfiguration {
    /// `BOUNDED_PERCENT`: ceil(value % × desiredCount) within [3, 200]; `UNBOUNDED_PERCENT`:
    /// ceil(value % × desiredCount), at least 1; `COUNT`: value failed tasks.
    #[serde(rename = "type")]
    pub type_: ThresholdType,
    /// A percentage of desiredCount (1-100) or, for `COUNT`, the number of failed tasks.
    #[schemars(range(min = 1, max = 2147483647))]
    pub value: i32,
}

impl Default for ThresholdConfiguration {
    /// ECS: `BOUNDED_PERCENT` 50.
    fn default() -> Self {
        Self {
            type_: ThresholdType::BoundedPercent,
            value: 50,
        }
    }
}

/// How the circuit breaker reads `value`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ThresholdType {
    #[default]
    BoundedPercent,
    UnboundedPercent,
    Count,
}

/// Deployment alarms.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAlarms {
    /// Alarm names.
    #[schemars(length(max = 10))]
    pub alarm_names: Vec<String>,
    /// Turn alarms on.
    pub enable: bool,
    /// Roll back when an alarm fires.
    pub rollback: bool,
}

/// Deployment strategy.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStrategy {
    Rolling,
    BlueGreen,
    Linear,
    Canary,
}

/// The deployment controller.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentController {
    /// `ECS`, `CODE_DEPLOY` or `EXTERNAL`.
    #[serde(rename = "type")]
    pub type_: DeploymentControllerType,
}

/// Deployment controller type.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentControllerType {
    #[default]
    Ecs,
    CodeDeploy,
    External,
}

/// A load balancer for the service's tasks.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancer {
    /// Target group ARN. On Kubernetes the target group is the Kubernetes Service; its name is the
    /// last path segment of the ARN's target group name, or `<service>-<containerName>` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub target_group_arn: Option<String>,
    /// Classic load balancer name: used as the Kubernetes Service name when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub load_balancer_name: Option<String>,
    /// The container that receives traffic.
    #[schemars(length(min = 1, max = 255))]
    pub container_name: String,
    /// Its port, which must be in the container's portMappings.
    #[schemars(range(min = 1, max = 65535))]
    pub container_port: i32,
    /// BLUE_GREEN, LINEAR, CANARY: the alternate target group (the test Service, selecting green)
    /// and the listener rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_configuration: Option<AdvancedConfiguration>,
}

/// A load balancer's blue/green settings (ECS AdvancedConfiguration).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedConfiguration {
    /// The alternate target group: the test Kubernetes Service, named like `targetGroupArn`'s (the
    /// ARN's target group name). It selects green from TEST_TRAFFIC_SHIFT on.
    #[schemars(length(min = 1, max = 2048))]
    pub alternate_target_group_arn: String,
    /// The production listener rule: a Gateway API HTTPRoute in the namespace (its name, or an ARN
    /// ending in it) whose weights between the production and the alternate Service carry the
    /// shift. Unset: the production Service's endpoints carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub production_listener_rule: Option<String>,
    /// The test listener rule: an HTTPRoute (as `productionListenerRule`) sending all its traffic to
    /// the alternate Service. Unset: the alternate Service is the test listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub test_listener_rule: Option<String>,
    /// Accepted; not honoured (no IAM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub role_arn: Option<String>,
}

/// Service discovery registration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRegistry {
    /// Cloud Map service ARN; its service name names the headless Kubernetes Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub registry_arn: Option<String>,
    /// Port for SRV records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub port: Option<i32>,
    /// Container for SRV records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub container_name: Option<String>,
    /// Container port for SRV records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 65535))]
    pub container_port: Option<i32>,
}

/// The service as ECS DescribeServices shows it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// ACTIVE, DRAINING or INACTIVE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceState>,
    /// The desired count the service works towards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_count: Option<i32>,
    /// Tasks RUNNING.
    #[serde(default)]
    pub running_count: i32,
    /// Tasks PENDING (not yet RUNNING).
    #[serde(default)]
    pub pending_count: i32,
    /// The PRIMARY deployment's task definition, `family:revision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition: Option<String>,
    /// The PRIMARY deployment's rolloutState.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_state: Option<RolloutState>,
    /// The `availabilityZoneRebalancing` in use: the one given, or the ECS default for this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone_rebalancing: Option<AvailabilityZoneRebalancing>,
    /// Tasks receiving load balancer traffic: RUNNING and healthy (only with `loadBalancers`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_targets: Option<i32>,
    /// Label selector of the service's task pods (for the scale subresource and HPA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Deployments, PRIMARY first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deployments: Vec<Deployment>,
    /// Latest service events, newest first (at most 50; all are also Kubernetes Events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<ServiceEvent>,
    /// `Ready` (steady state), `Progressing`, `Degraded` and `TasksPlaced`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The deployment id of the last stop request (annotation `ecs.operator.dev/stop-deployment`)
    /// acted on: a request is acted on once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub handled_stop_request: Option<String>,
}

/// One deployment of the service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// `ecs-svc/N`.
    pub id: String,
    /// PRIMARY (the newest), ACTIVE (being replaced) or INACTIVE.
    pub status: DeploymentStatus,
    /// `family:revision`.
    pub task_definition: String,
    /// Tasks this deployment should run.
    #[serde(default)]
    pub desired_count: i32,
    /// Tasks PENDING.
    #[serde(default)]
    pub pending_count: i32,
    /// Tasks RUNNING.
    #[serde(default)]
    pub running_count: i32,
    /// Consecutive failed tasks (circuit breaker).
    #[serde(default)]
    pub failed_tasks: i32,
    /// IN_PROGRESS, COMPLETED or FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_state: Option<RolloutState>,
    /// Why, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout_state_reason: Option<String>,
    /// When the deployment was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// When it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Time>,
    /// `stoppedAt` of the newest failed task counted in `failedTasks`: with `lastFailureTasks`, what
    /// makes each failure count once, across reconciles and operator restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_at: Option<Time>,
    /// The counted failed tasks that stopped at `lastFailureAt` (several can stop in one second).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 200))]
    pub last_failure_tasks: Vec<String>,
    /// On a deployment started by a circuit breaker rollback: the task definition of the deployment
    /// that failed. The service does not deploy it again by itself; another `taskDefinition` or a new
    /// `forceNewDeployment` value does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_from: Option<String>,
    /// The service's `forceNewDeployment` value (as JSON) when the deployment started: a different
    /// value starts a new deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_new_deployment: Option<String>,
    /// The strategy this deployment runs with (the service's when it started; unset: ROLLING).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
    /// BLUE_GREEN, LINEAR, CANARY: the ECS lifecycle stage reached (RECONCILE_SERVICE … CLEAN_UP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<ServiceDeploymentLifecycleStage>,
    /// When [`Deployment::lifecycle_stage`] (or its latest traffic step) was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage_entered_at: Option<Time>,
    /// BLUE_GREEN, LINEAR, CANARY: the ECS ServiceDeployment status (PENDING, IN_PROGRESS,
    /// SUCCESSFUL, ROLLBACK_IN_PROGRESS, ROLLBACK_SUCCESSFUL, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_deployment_status: Option<ServiceDeploymentStatus>,
    /// BLUE_GREEN, LINEAR, CANARY: percent of production traffic sent to this deployment's tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub production_traffic_percent: Option<f64>,
    /// BLUE_GREEN, LINEAR, CANARY: percent of test traffic sent to this deployment's tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_traffic_percent: Option<f64>,
    /// BLUE_GREEN, LINEAR, CANARY: the lifecycle hooks run so far in this deployment (ECS
    /// DescribeServiceDeployments `lifecycleHookDetails`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 70))]
    pub lifecycle_hook_details: Vec<crate::api::lifecycle_hook::LifecycleHookDetail>,
    /// ECS versionConsistency: the image each container of this deployment runs, pinned to the
    /// digest its first RUNNING task reported (`image@sha256:…`), by ECS container name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pinned_images: BTreeMap<String, String>,
}

/// A service event.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEvent {
    /// Event id.
    pub id: String,
    /// When it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// What happened, in ECS words.
    pub message: String,
}
