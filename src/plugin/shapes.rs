//! The objects in the JSON shapes of the AWS CLI's `aws ecs describe-*` output, so scripts written
//! against it keep working: same field names, absent fields left out, events newest first, only the
//! deployments ECS would still list (no INACTIVE history).
//!
//! ARNs: ECS names objects by ARN; here the region is `kubernetes`, the account `000000000000` and the
//! ECS cluster the namespace, so the last path segment of every ARN is the object's name (what
//! `${taskArn##*/}` in a script gets) and every verb accepts a name or such an ARN.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use serde_json::{Map, Value, json};

use crate::api::service::{DeploymentStatus, ServiceState};
use crate::api::task::{HealthStatus, LastStatus};
use crate::api::task_definition::{TaskDefinitionSpec, TaskDefinitionStatus};
use crate::api::{Service, Task};

const PREFIX: &str = "arn:aws:ecs:kubernetes:000000000000";

pub fn cluster_arn(namespace: &str) -> String {
    format!("{PREFIX}:cluster/{namespace}")
}

pub fn task_arn(namespace: &str, name: &str) -> String {
    format!("{PREFIX}:task/{namespace}/{name}")
}

pub fn service_arn(namespace: &str, name: &str) -> String {
    format!("{PREFIX}:service/{namespace}/{name}")
}

/// A service deployment: `…:service-deployment/<namespace>/<service>/<N>` for deployment `ecs-svc/N`.
pub fn service_deployment_arn(namespace: &str, service: &str, deployment: &str) -> String {
    let n = deployment.strip_prefix("ecs-svc/").unwrap_or(deployment);
    format!("{PREFIX}:service-deployment/{namespace}/{service}/{n}")
}

/// The (service, deployment id `ecs-svc/N`) of a service deployment ARN (its last segment may also
/// be written `ecs-svc/N`).
pub fn service_deployment_of(arn: &str) -> Option<(&str, String)> {
    let (_, tail) = arn.split_once(":service-deployment/")?;
    let mut parts = tail.splitn(3, '/');
    let (_namespace, service, id) = (parts.next()?, parts.next()?, parts.next()?);
    let n = id.strip_prefix("ecs-svc/").unwrap_or(id);
    if service.is_empty() || n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((service, format!("ecs-svc/{n}")))
}

/// A GetTaskProtection / UpdateTaskProtection `protectedTasks[]` entry, from the task's annotation
/// at `now` (what the planner honours).
pub fn protected_task(task: &Task, now: k8s_openapi::jiff::Timestamp) -> Value {
    let protection = crate::task::protection::Protection::read(Some(task.annotations()), now);
    compact(json!({
        "taskArn": task_arn(&task.namespace().unwrap_or_default(), &task.name_any()),
        "protectionEnabled": protection.until().is_some(),
        "expirationDate": protection.until().map(|t| t.to_string()),
    }))
}

/// `family:revision` → its ARN; a bare family is left as it is (not resolved yet).
pub fn task_definition_arn(reference: &str) -> String {
    if reference.contains(':') {
        format!("{PREFIX}:task-definition/{reference}")
    } else {
        reference.to_string()
    }
}

/// A name given as a name or as an ARN of any of the shapes above.
pub fn name_of(given: &str) -> &str {
    if given.starts_with("arn:") {
        given.rsplit('/').next().unwrap_or(given)
    } else {
        given
    }
}

/// A task definition given as `family`, `family:revision` or an ARN.
pub fn task_definition_of(given: &str) -> &str {
    match given.split_once(":task-definition/") {
        Some((_, tail)) if given.starts_with("arn:") => tail,
        _ => given,
    }
}

fn time(t: &Option<Time>) -> Value {
    t.as_ref()
        .map_or(Value::Null, |t| Value::String(t.0.to_string()))
}

/// Drops nulls, empty arrays and empty objects: the AWS CLI leaves absent fields out.
fn compact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, compact(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(compact).collect()),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// A DescribeTasks `tasks[]` entry.
pub fn task(task: &Task) -> Value {
    let ns = task.namespace().unwrap_or_default();
    let name = task.name_any();
    let arn = task_arn(&ns, &name);
    let st = task.status.clone().unwrap_or_default();
    let definition = st
        .task_definition
        .clone()
        .unwrap_or_else(|| task.spec.task_definition.clone());
    let containers: Vec<Value> = st
        .containers
        .iter()
        .map(|c| {
            json!({
                "containerArn": format!("{PREFIX}:container/{ns}/{name}/{}", c.name),
                "taskArn": arn,
                "name": c.name,
                "image": c.image,
                "imageDigest": c.image_digest,
                "runtimeId": c.runtime_id,
                "lastStatus": c.last_status,
                "exitCode": c.exit_code,
                "reason": c.reason,
                "healthStatus": c.health_status,
                "networkBindings": c.network_bindings.iter().map(|b| json!({
                    "bindIP": b.bind_ip,
                    "containerPort": b.container_port,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    compact(json!({
        "taskArn": arn,
        "clusterArn": cluster_arn(&ns),
        "taskDefinitionArn": task_definition_arn(&definition),
        "containerInstanceArn": st.container_instance.as_ref().map(|n| format!("{PREFIX}:container-instance/{ns}/{n}")),
        "availabilityZone": st.availability_zone,
        "lastStatus": st.last_status.unwrap_or(LastStatus::Provisioning),
        // What is asked for, as StopTask's own answer shows it at once.
        "desiredStatus": task.spec.desired_status,
        "healthStatus": st.health_status.unwrap_or(HealthStatus::Unknown),
        "cpu": st.cpu,
        "memory": st.memory,
        "containers": containers,
        "startedBy": st.started_by.clone().or_else(|| task.spec.started_by.clone()),
        "group": st.group.clone().or_else(|| task.spec.group.clone()),
        "stopCode": st.stop_code,
        "stoppedReason": st.stopped_reason,
        "createdAt": time(&st.created_at.clone().or_else(|| task.creation_timestamp())),
        "pullStartedAt": time(&st.pull_started_at),
        "pullStoppedAt": time(&st.pull_stopped_at),
        "startedAt": time(&st.started_at),
        "stoppingAt": time(&st.stopping_at),
        "executionStoppedAt": time(&st.execution_stopped_at),
        "stoppedAt": time(&st.stopped_at),
        "version": st.version,
        "launchType": "EC2",
        "overrides": task.spec.overrides,
        "tags": task.spec.tags,
    }))
}

/// A DescribeServices `services[]` entry.
pub fn service(service: &Service) -> Value {
    let ns = service.namespace().unwrap_or_default();
    let name = service.name_any();
    let st = service.status.clone().unwrap_or_default();
    let spec = &service.spec;
    let deployments: Vec<Value> = st
        .deployments
        .iter()
        .filter(|d| d.status != DeploymentStatus::Inactive)
        .map(|d| {
            json!({
                "id": d.id,
                "status": d.status,
                "taskDefinition": task_definition_arn(&d.task_definition),
                "desiredCount": d.desired_count,
                "pendingCount": d.pending_count,
                "runningCount": d.running_count,
                "failedTasks": d.failed_tasks,
                "createdAt": time(&d.created_at),
                "updatedAt": time(&d.updated_at),
                "launchType": "EC2",
                "rolloutState": d.rollout_state,
                "rolloutStateReason": d.rollout_state_reason,
            })
        })
        .collect();
    // Kept oldest first in status; ECS lists the newest first.
    let events: Vec<Value> = st
        .events
        .iter()
        .rev()
        .map(|e| json!({"id": e.id, "createdAt": time(&e.created_at), "message": e.message}))
        .collect();
    let definition = st
        .task_definition
        .clone()
        .unwrap_or_else(|| spec.task_definition.clone());
    // What is asked for (UpdateService's answer shows it at once); DAEMON: the nodes counted.
    let desired = spec.desired_count.or(st.desired_count).unwrap_or(0);
    compact(json!({
        "serviceArn": service_arn(&ns, &name),
        "serviceName": name,
        "clusterArn": cluster_arn(&ns),
        "loadBalancers": spec.load_balancers,
        "serviceRegistries": spec.service_registries,
        "status": st.status.unwrap_or(ServiceState::Active),
        "desiredCount": desired,
        "runningCount": st.running_count,
        "pendingCount": st.pending_count,
        "launchType": "EC2",
        "taskDefinition": task_definition_arn(&definition),
        "deploymentConfiguration": spec.deployment_configuration,
        "deployments": deployments,
        "events": events,
        "createdAt": service.creation_timestamp().map(|t| t.0.to_string()),
        "placementConstraints": spec.placement_constraints,
        "placementStrategy": spec.placement_strategy,
        "healthCheckGracePeriodSeconds": spec.health_check_grace_period_seconds,
        "schedulingStrategy": spec.scheduling_strategy,
        "deploymentController": spec.deployment_controller,
        // The value in use (status), as DescribeServices reports it even when CreateService omitted it.
        "availabilityZoneRebalancing": st
            .availability_zone_rebalancing
            .unwrap_or_else(|| crate::service::az_rebalancing::effective(spec)),
        "enableExecuteCommand": spec.enable_execute_command.unwrap_or(false),
        "tags": spec.tags,
    }))
}

/// The DescribeTaskDefinition output for `family:revision` registered as `spec`.
pub fn task_definition(
    family: &str,
    revision: i64,
    spec: &TaskDefinitionSpec,
    status: &TaskDefinitionStatus,
) -> Value {
    let mut body = serde_json::to_value(spec).expect("a spec always serializes");
    let tags = body
        .as_object_mut()
        .and_then(|b| b.remove("tags"))
        .unwrap_or(json!([]));
    let registered = status.revisions.iter().find(|r| r.revision == revision);
    let extra = json!({
        "taskDefinitionArn": format!("{PREFIX}:task-definition/{family}:{revision}"),
        "family": family,
        "revision": revision,
        "status": registered.map_or("ACTIVE", |r| r.status.as_str()),
        "registeredAt": registered.map_or(Value::Null, |r| time(&r.registered_at)),
        "deregisteredAt": registered.map_or(Value::Null, |r| time(&r.deregistered_at)),
        "compatibilities": ["EC2"],
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    compact(json!({"taskDefinition": body, "tags": tags}))
}

/// The AWS CLI `services-stable` waiter's test, on a DescribeServices entry: one deployment, and as
/// many tasks running as desired. `current` says the status describes the latest spec (its
/// observedGeneration), so a change just applied is not taken for stable.
pub fn is_stable(described: &Value, current: bool) -> bool {
    current
        && described["deployments"].as_array().map_or(0, Vec::len) == 1
        && described["runningCount"] == described["desiredCount"]
}

/// One line about a service's progress, for `wait services-stable`.
pub fn progress(described: &Value) -> String {
    let deployments: Vec<String> = described["deployments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            format!(
                "{} {} {}",
                d["id"].as_str().unwrap_or_default(),
                d["status"].as_str().unwrap_or_default(),
                d["rolloutState"].as_str().unwrap_or_default()
            )
        })
        .collect();
    format!(
        "{}: {}/{} running, {} pending; {}",
        described["serviceName"].as_str().unwrap_or_default(),
        described["runningCount"],
        described["desiredCount"],
        described["pendingCount"].as_i64().unwrap_or(0),
        deployments.join(", ")
    )
}

#[cfg(test)]
mod tests;
