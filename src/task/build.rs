//! Builds the pod of a task: pure.
//!
//! The pod is named after its Task (at most one pod per Task: a second create gets 409), owned by it,
//! labelled for watches and selection, and annotated with the ECS facts the lifecycle needs later
//! (so a running task never depends on its task definition still existing).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde::{Deserialize, Serialize};

use crate::api::task_definition::DependencyCondition;
use crate::api::{Task, TaskDefinitionSpec};
use crate::labels;
use crate::placement::{group_label_value, pod_placement};
use crate::translate::{ContainerRole, translate};

/// What the lifecycle needs to know about one container (pod annotation [`labels::CONTAINERS`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerMeta {
    /// The ECS container name.
    pub name: String,
    /// The Kubernetes container name.
    pub k8s_name: String,
    pub essential: bool,
    /// `regular`, `sidecar` (native sidecar) or `init` (runs to completion first).
    pub role: String,
    /// Seconds after the container starts by which a health check must have passed, or it is
    /// UNHEALTHY (startPeriod + interval × retries + timeout). None: no health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unhealthy_after: Option<i64>,
    /// ECS startTimeout: seconds the container may take, from its own start, to reach
    /// `awaitedAs` (enforced only with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<i64>,
    /// What the containers that depend on this one wait for: `COMPLETE` (it exits) or `HEALTHY`
    /// (its startup probe passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaited_as: Option<String>,
    /// The ECS container restartPolicy lets the kubelet restart it: a restart is not the container
    /// stopping.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart_in_place: bool,
    /// ECS restartPolicy.ignoredExitCodes: exits ECS does not restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored_exit_codes: Vec<i32>,
    /// ECS restartPolicy.restartAttemptPeriod: ECS restarts the container only after it ran this many
    /// seconds. None: the ECS default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_attempt_period: Option<i64>,
}

/// A pod for `task`, running `family:revision` whose registered spec is `spec`.
pub fn build_pod(
    task: &Task,
    family: &str,
    revision: i64,
    spec: &TaskDefinitionSpec,
) -> Result<(Pod, Vec<ContainerMeta>), String> {
    let mut template = translate(spec, task.spec.overrides.as_ref()).map_err(|e| e.to_string())?;
    let group = group_of(task, family);
    let group_value = group_label_value(&group);

    // Placement: the definition's memberOf constraints and the task's own, spread over the task's group.
    let selector = BTreeMap::from([(labels::GROUP.to_string(), group_value.clone())]);
    let constraints: Vec<_> = spec
        .placement_constraints
        .iter()
        .flatten()
        .chain(task.spec.placement_constraints.iter().flatten())
        .cloned()
        .collect();
    let strategies = task.spec.placement_strategy.clone().unwrap_or_default();
    pod_placement(&constraints, &strategies, &selector)
        .and_then(|p| p.apply_to(&mut template.spec))
        .map_err(|e| e.to_string())?;
    if let Some(zone) = task.annotations().get(labels::PREFERRED_ZONE) {
        prefer_zone(&mut template.spec, zone);
    }

    // ECS versionConsistency: a service task runs the images its deployment pinned.
    if task.labels().contains_key(labels::SERVICE) {
        let pins: BTreeMap<String, String> = task
            .annotations()
            .get(labels::PINNED_IMAGES)
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_default();
        pin_images(&mut template, &pins);
    }

    let containers: Vec<ContainerMeta> = template
        .containers
        .iter()
        .map(|c| {
            let def = spec
                .container_definitions
                .iter()
                .find(|d| d.name == c.ecs_name);
            let unhealthy_after = def
                .and_then(|d| d.health_check.as_ref())
                .filter(|_| c.health_check)
                .map(|h| {
                    i64::from(h.start_period.unwrap_or(0))
                        + i64::from(h.interval.unwrap_or(30)) * i64::from(h.retries.unwrap_or(3))
                        + i64::from(h.timeout.unwrap_or(5))
                });
            ContainerMeta {
                name: c.ecs_name.clone(),
                k8s_name: c.k8s_name.clone(),
                essential: c.essential,
                role: match c.role {
                    ContainerRole::Regular => "regular",
                    ContainerRole::Sidecar => "sidecar",
                    ContainerRole::Init => "init",
                }
                .to_string(),
                unhealthy_after,
                start_timeout: c.start_timeout.map(i64::from),
                awaited_as: c.awaited.map(|a| {
                    match a {
                        DependencyCondition::Healthy => "HEALTHY",
                        _ => "COMPLETE",
                    }
                    .to_string()
                }),
                restart_in_place: c.restart_in_place,
                ignored_exit_codes: if c.restart_in_place {
                    c.ignored_exit_codes.clone()
                } else {
                    Vec::new()
                },
                restart_attempt_period: c
                    .restart_in_place
                    .then_some(i64::from(c.restart_attempt_period)),
            }
        })
        .collect();

    let mut pod_labels = BTreeMap::from([
        (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
        (labels::TASK.to_string(), task.name_any()),
        (labels::TASK_DEFINITION.to_string(), family.to_string()),
        (labels::REVISION.to_string(), revision.to_string()),
        (labels::GROUP.to_string(), group_value),
    ]);
    // A service's tasks carry its name; the load balancer Service selects on it.
    if let Some(service) = task.labels().get(labels::SERVICE) {
        pod_labels.insert(labels::SERVICE.to_string(), service.clone());
    }
    let mut annotations = template.annotations;
    annotations.insert(
        labels::CONTAINERS.to_string(),
        serde_json::to_string(&containers).expect("serializable"),
    );
    annotations.insert(
        labels::TASK_DEFINITION_REF.to_string(),
        format!("{family}:{revision}"),
    );
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(task.name_any()),
            namespace: task.namespace(),
            labels: Some(pod_labels),
            annotations: Some(annotations),
            owner_references: Some(vec![
                task.controller_owner_ref(&())
                    .expect("a stored object has a uid"),
            ]),
            ..Default::default()
        },
        spec: Some(template.spec),
        status: None,
    };
    Ok((pod, containers))
}

/// Replaces the image of each container named (by its ECS name) in `pins`.
fn pin_images(template: &mut crate::translate::PodTemplate, pins: &BTreeMap<String, String>) {
    for info in &template.containers {
        let Some(image) = pins.get(&info.ecs_name) else {
            continue;
        };
        let spec = &mut template.spec;
        if let Some(c) = spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
            .find(|c| c.name == info.k8s_name)
        {
            c.image = Some(image.clone());
        }
    }
}

/// Adds a preferred (never required) node affinity for `zone`: the scheduler favours it, and places
/// the pod elsewhere when it has no room.
fn prefer_zone(spec: &mut k8s_openapi::api::core::v1::PodSpec, zone: &str) {
    use k8s_openapi::api::core::v1::{
        Affinity, NodeSelectorRequirement, NodeSelectorTerm, PreferredSchedulingTerm,
    };
    let term = PreferredSchedulingTerm {
        weight: 100,
        preference: NodeSelectorTerm {
            match_expressions: Some(vec![NodeSelectorRequirement {
                key: crate::placement::ZONE_LABEL.to_string(),
                operator: "In".to_string(),
                values: Some(vec![zone.to_string()]),
            }]),
            match_fields: None,
        },
    };
    spec.affinity
        .get_or_insert_with(Affinity::default)
        .node_affinity
        .get_or_insert_with(Default::default)
        .preferred_during_scheduling_ignored_during_execution
        .get_or_insert_with(Vec::new)
        .push(term);
}

/// The task group: as given, or ECS's default `family:<family>`.
pub fn group_of(task: &Task, family: &str) -> String {
    task.spec
        .group
        .clone()
        .unwrap_or_else(|| format!("family:{family}"))
}

/// Reads the container facts a pod was built with.
pub fn containers_of(pod: &Pod) -> Vec<ContainerMeta> {
    pod.annotations()
        .get(labels::CONTAINERS)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn a_service_task_runs_the_images_its_deployment_pinned() {
        let pinned =
            "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let task = |labels: Value| -> Task {
            let mut t: Task = serde_json::from_value(json!({
                "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
                "metadata": {"name": "web-1-0", "namespace": "ns", "uid": "u", "labels": labels,
                    "annotations": {(labels::PINNED_IMAGES): format!(r#"{{"Web_App":"{pinned}"}}"#)}},
                "spec": {"taskDefinition": "web:1"}
            }))
            .unwrap();
            t.metadata.uid = Some("u".into());
            t
        };
        let spec: TaskDefinitionSpec = serde_json::from_value(json!({
            "containerDefinitions": [
                {"name": "Web_App", "image": "nginx:1.27"},
                {"name": "log", "image": "fluent-bit:3"}]
        }))
        .unwrap();
        let images = |pod: Pod| -> Vec<String> {
            pod.spec
                .unwrap()
                .containers
                .into_iter()
                .map(|c| c.image.unwrap())
                .collect()
        };
        let (pod, _) =
            build_pod(&task(json!({(labels::SERVICE): "web"})), "web", 1, &spec).unwrap();
        assert_eq!(images(pod), [pinned, "fluent-bit:3"]);
        // A standalone task is never pinned.
        let (pod, _) = build_pod(&task(json!({})), "web", 1, &spec).unwrap();
        assert_eq!(images(pod), ["nginx:1.27", "fluent-bit:3"]);
    }

    #[test]
    fn a_preferred_zone_is_a_preference_the_scheduler_may_pass_over() {
        let mut task: Task = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": "web-1-0", "namespace": "ns", "uid": "u",
                "annotations": {(labels::PREFERRED_ZONE): "us-east-1b"}},
            "spec": {"taskDefinition": "web:1"}
        }))
        .unwrap();
        task.metadata.uid = Some("u".into());
        let spec: TaskDefinitionSpec = serde_json::from_value(json!({
            "containerDefinitions": [{"name": "web", "image": "nginx"}]
        }))
        .unwrap();
        let (pod, _) = build_pod(&task, "web", 1, &spec).unwrap();
        let affinity = pod.spec.unwrap().affinity.unwrap().node_affinity.unwrap();
        let required = affinity
            .required_during_scheduling_ignored_during_execution
            .map(|r| r.node_selector_terms)
            .unwrap_or_default();
        assert!(
            required
                .iter()
                .flat_map(|t| t.match_expressions.iter().flatten())
                .all(|e| e.key != crate::placement::ZONE_LABEL),
            "the zone is not required: {required:?}"
        );
        let preferred = affinity
            .preferred_during_scheduling_ignored_during_execution
            .unwrap();
        assert_eq!(preferred.len(), 1);
        let e = &preferred[0].preference.match_expressions.as_ref().unwrap()[0];
        assert_eq!(
            (e.key.as_str(), e.operator.as_str(), e.values.as_deref()),
            (
                crate::placement::ZONE_LABEL,
                "In",
                Some(&["us-east-1b".to_string()][..])
            )
        );
    }
}
