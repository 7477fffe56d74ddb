//! What a Service creates, built as plain objects: its Tasks and the Kubernetes Services of its load
//! balancers and service registry. Pure.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    Service as KubeService, ServicePort, ServiceSpec as KubeServiceSpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};

use super::plan::{Start, pins};
use super::strategy::Traffic;
use super::traffic;
use crate::api::task::{DesiredStatus, TaskSpec};
use crate::api::task_definition::TransportProtocol;
use crate::api::{Service, Task, TaskDefinitionSpec};
use crate::labels;
use crate::placement::is_valid_label_value;

/// Annotation on an ECS Service choosing the type of its load balancer Services: `ClusterIP`
/// (default: reachable inside the cluster only), `NodePort` or `LoadBalancer` (which a cloud provider
/// may expose publicly, so only when asked).
pub const LOAD_BALANCER_TYPE: &str = "ecs.operator.dev/load-balancer-type";

/// Whether `object`'s controller is `service` (by UID: a copied label or name does not make it ours).
pub fn controlled_by(object: &impl Resource, service: &Service) -> bool {
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == service.meta().uid.as_ref())
}

/// The task group of a service's tasks.
pub fn group(service: &Service) -> String {
    format!("service:{}", service.name_any())
}

/// Labels selecting a service's tasks and their pods.
pub fn selector(service: &Service) -> BTreeMap<String, String> {
    BTreeMap::from([(labels::SERVICE.to_string(), service.name_any())])
}

/// `status.selector`: the label selector of the task pods, as the scale subresource wants it.
pub fn selector_string(service: &Service) -> String {
    format!("{}={}", labels::SERVICE, service.name_any())
}

/// The deterministic name of the `index`th task a deployment starts: `<service>-<N>-<index>`. A replay
/// from a stale view creates the same name again, and the API server refuses the duplicate.
pub fn task_name(service: &Service, deployment: &str, index: usize) -> String {
    let number = deployment.rsplit('/').next().unwrap_or(deployment);
    format!("{}-{number}-{index}", service.name_any())
}

/// A Task for one planned start.
pub fn task(service: &Service, start: &Start, name: String) -> Task {
    let mut constraints = service
        .spec
        .placement_constraints
        .clone()
        .unwrap_or_default();
    let mut annotations = BTreeMap::new();
    match &start.zone {
        Some(zone) if start.rebalancing => {
            constraints.push(pins::zone_constraint(zone));
            annotations.insert(labels::REBALANCING_ZONE.to_string(), zone.clone());
        }
        Some(zone) => {
            annotations.insert(labels::PREFERRED_ZONE.to_string(), zone.clone());
        }
        None => {}
    }
    if let Some(node) = &start.node {
        constraints.push(pins::node_constraint(node));
    }
    let strategies = match (&service.spec.placement_strategy, &start.node) {
        // A daemon task is pinned to its node: spreading means nothing.
        (_, Some(_)) => Some(vec![crate::api::placement::PlacementStrategy {
            type_: "random".into(),
            field: None,
        }]),
        (s, None) => s.clone(),
    };
    Task {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: service.namespace(),
            labels: Some(BTreeMap::from([
                (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
                (labels::SERVICE.to_string(), service.name_any()),
            ])),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![
                service
                    .controller_owner_ref(&())
                    .expect("a stored object has a uid"),
            ]),
            ..Default::default()
        },
        spec: TaskSpec {
            task_definition: start.task_definition.clone(),
            desired_status: DesiredStatus::Running,
            started_by: Some(start.deployment.clone()),
            group: Some(group(service)),
            placement_constraints: (!constraints.is_empty()).then_some(constraints),
            placement_strategy: strategies,
            tags: service.spec.tags.clone(),
            ..Default::default()
        },
        status: None,
    }
}

/// The Kubernetes Services standing for the ECS service's load balancers and service registry,
/// checked against the task definition the service runs. An error says what is wrong, in ECS words.
/// With `traffic` (BLUE_GREEN, LINEAR, CANARY), each load balancer selects the tasks in production
/// traffic, and one with `advancedConfiguration` gets a test Service (the alternate target group)
/// selecting the tasks in test traffic.
pub fn kube_services(
    service: &Service,
    td: &TaskDefinitionSpec,
    traffic: Option<&Traffic>,
) -> Result<Vec<KubeService>, String> {
    let mut out = Vec::new();
    let type_ = service
        .annotations()
        .get(LOAD_BALANCER_TYPE)
        .cloned()
        .unwrap_or_else(|| "ClusterIP".to_string());
    if !["LoadBalancer", "NodePort", "ClusterIP"].contains(&type_.as_str()) {
        return Err(format!(
            "annotation {LOAD_BALANCER_TYPE}: {type_:?} is not LoadBalancer, NodePort or ClusterIP"
        ));
    }
    let mut names = BTreeSet::new();
    for (i, (lb, (name, _))) in service
        .spec
        .load_balancers
        .iter()
        .flatten()
        .zip(target_groups(service))
        .enumerate()
    {
        let port = container_port(td, &lb.container_name, lb.container_port)
            .map_err(|why| format!("loadBalancers[{i}]: {why}"))?;
        if !is_dns_label(&name) {
            return Err(format!(
                "loadBalancers[{i}]: {name:?} cannot name a Kubernetes Service (lowercase letters, digits and '-', at most 63)"
            ));
        }
        if !names.insert(name.clone()) {
            return Err(format!(
                "loadBalancers[{i}]: two load balancers are both named {name:?}"
            ));
        }
        let mut production = kube_service(service, name.clone(), Some(type_.clone()), port.clone());
        if let Some(t) = traffic {
            set_selector(
                &mut production,
                traffic::production_selector(service, t, routed(lb)),
            );
            if let Some(advanced) = &lb.advanced_configuration {
                let test_name = target_group_name(&advanced.alternate_target_group_arn)
                    .unwrap_or_else(|| format!("{name}-test"));
                if !is_dns_label(&test_name) || !names.insert(test_name.clone()) {
                    return Err(format!(
                        "loadBalancers[{i}]: advancedConfiguration alternateTargetGroupArn {test_name:?} cannot name another Kubernetes Service"
                    ));
                }
                let mut test = kube_service(service, test_name, Some(type_.clone()), port);
                set_selector(&mut test, traffic::test_selector(service, t));
                out.push(test);
            }
        }
        out.push(production);
    }
    for (i, registry) in service.spec.service_registries.iter().flatten().enumerate() {
        let port = match (
            &registry.container_name,
            registry.container_port.or(registry.port),
        ) {
            (Some(container), Some(p)) => Some(
                container_port(td, container, p)
                    .map_err(|why| format!("serviceRegistries[{i}]: {why}"))?,
            ),
            _ => None,
        };
        let name = registry
            .registry_arn
            .as_deref()
            .and_then(registry_name)
            .unwrap_or_else(|| service.name_any());
        if !is_dns_label(&name) || !names.insert(name.clone()) {
            return Err(format!(
                "serviceRegistries[{i}]: {name:?} cannot name a headless Kubernetes Service"
            ));
        }
        let has_port = port.is_some();
        let mut headless = kube_service(service, name, None, port.unwrap_or_default());
        let spec = headless.spec.as_mut().expect("built with a spec");
        spec.cluster_ip = Some("None".into());
        if !has_port {
            spec.ports = None;
        }
        out.push(headless);
    }
    Ok(out)
}

/// Each load balancer's Kubernetes Service names: the production one (`loadBalancerName`, the
/// target group name of `targetGroupArn`, or `<service>-<containerPort>`) and, with
/// `advancedConfiguration`, the alternate one (the target group name of `alternateTargetGroupArn`, or
/// `<production>-test`).
pub fn target_groups(service: &Service) -> Vec<(String, Option<String>)> {
    service
        .spec
        .load_balancers
        .iter()
        .flatten()
        .map(|lb| {
            let name = lb
                .load_balancer_name
                .clone()
                .or_else(|| lb.target_group_arn.as_deref().and_then(target_group_name))
                .unwrap_or_else(|| format!("{}-{}", service.name_any(), lb.container_port));
            let alternate = lb.advanced_configuration.as_ref().map(|a| {
                target_group_name(&a.alternate_target_group_arn)
                    .unwrap_or_else(|| format!("{name}-test"))
            });
            (name, alternate)
        })
        .collect()
}

/// Whether a Gateway API HTTPRoute (`productionListenerRule`) carries the load balancer's split: its
/// production Service then keeps selecting blue and the route's weights move the traffic.
pub fn routed(lb: &crate::api::service::LoadBalancer) -> bool {
    lb.advanced_configuration
        .as_ref()
        .is_some_and(|a| a.production_listener_rule.is_some())
}

fn set_selector(svc: &mut KubeService, selector: BTreeMap<String, String>) {
    if let Some(spec) = svc.spec.as_mut() {
        spec.selector = Some(selector);
    }
}

/// The port of `container` listening on `port`, or why there is none.
fn container_port(
    td: &TaskDefinitionSpec,
    container: &str,
    port: i32,
) -> Result<ServicePort, String> {
    let def = td
        .container_definitions
        .iter()
        .find(|c| c.name == container)
        .ok_or_else(|| {
            format!("containerName {container:?} is not a container of the task definition")
        })?;
    let mapping = def
        .port_mappings
        .iter()
        .flatten()
        .find(|m| m.container_port == Some(port))
        .ok_or_else(|| {
            format!("containerPort {port} is not in the portMappings of container {container:?}")
        })?;
    Ok(ServicePort {
        name: Some(format!("port-{port}")),
        port,
        target_port: Some(IntOrString::Int(port)),
        protocol: Some(match mapping.protocol {
            Some(TransportProtocol::Udp) => "UDP".into(),
            _ => "TCP".into(),
        }),
        app_protocol: mapping
            .app_protocol
            .and_then(|p| serde_json::to_value(p).ok()?.as_str().map(String::from)),
        ..Default::default()
    })
}

fn kube_service(
    service: &Service,
    name: String,
    type_: Option<String>,
    port: ServicePort,
) -> KubeService {
    let mut object_labels = selector(service);
    object_labels.insert(labels::MANAGED_BY.into(), labels::MANAGER.into());
    KubeService {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: service.namespace(),
            labels: Some(object_labels),
            owner_references: Some(vec![
                service
                    .controller_owner_ref(&())
                    .expect("a stored object has a uid"),
            ]),
            ..Default::default()
        },
        spec: Some(KubeServiceSpec {
            type_,
            selector: Some(selector(service)),
            ports: Some(vec![port]),
            ..Default::default()
        }),
        status: None,
    }
}

/// `arn:aws:elasticloadbalancing:REGION:ACCT:targetgroup/NAME/ID` → NAME.
fn target_group_name(arn: &str) -> Option<String> {
    let rest = arn.split(":targetgroup/").nth(1)?;
    Some(rest.split('/').next()?.to_ascii_lowercase())
}

/// `arn:aws:servicediscovery:REGION:ACCT:service/srv-ID` → the id, which is all the ARN names.
fn registry_name(arn: &str) -> Option<String> {
    let id = arn.rsplit('/').next()?.to_ascii_lowercase();
    is_dns_label(&id).then_some(id)
}

fn is_dns_label(s: &str) -> bool {
    s.len() <= 63
        && is_valid_label_value(s)
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn service(spec: serde_json::Value) -> Service {
        let mut s: Service = serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "prod", "uid": "u-1"}, "spec": spec
        }))
        .unwrap();
        s.metadata.uid = Some("u-1".into());
        s
    }

    fn td() -> TaskDefinitionSpec {
        serde_json::from_value(json!({"containerDefinitions": [
            {"name": "web", "image": "nginx", "portMappings": [{"containerPort": 80, "appProtocol": "http"}]},
            {"name": "dns", "image": "coredns", "portMappings": [{"containerPort": 53, "protocol": "udp"}]}
        ]}))
        .unwrap()
    }

    #[test]
    fn tasks_are_owned_grouped_and_pinned() {
        let s = service(json!({"taskDefinition": "web", "desiredCount": 2}));
        let start = Start {
            deployment: "ecs-svc/3".into(),
            task_definition: "web:7".into(),
            zone: Some("us-east-1b".into()),
            rebalancing: true,
            node: None,
        };
        let name = task_name(&s, &start.deployment, 4);
        assert_eq!(name, "web-3-4");
        let t = task(&s, &start, name);
        assert_eq!(t.spec.group.as_deref(), Some("service:web"));
        assert_eq!(t.spec.started_by.as_deref(), Some("ecs-svc/3"));
        assert_eq!(t.spec.task_definition, "web:7");
        assert_eq!(t.labels()[labels::SERVICE], "web");
        let owner = &t.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("Service", Some(true))
        );
        assert_eq!(
            pins::pinned_zone(t.spec.placement_constraints.as_deref().unwrap()).as_deref(),
            Some("us-east-1b")
        );
    }

    #[test]
    fn a_replacement_prefers_its_zone_and_only_a_rebalancing_move_is_pinned() {
        let s = service(json!({"taskDefinition": "web", "desiredCount": 2}));
        let start = Start {
            deployment: "ecs-svc/3".into(),
            task_definition: "web:7".into(),
            zone: Some("us-east-1b".into()),
            rebalancing: false,
            node: None,
        };
        let t = task(&s, &start, "web-3-0".into());
        assert_eq!(t.spec.placement_constraints, None, "no binding constraint");
        assert_eq!(
            t.annotations()
                .get(labels::PREFERRED_ZONE)
                .map(String::as_str),
            Some("us-east-1b")
        );
        let pinned = task(
            &s,
            &Start {
                rebalancing: true,
                ..start
            },
            "web-3-1".into(),
        );
        assert!(pinned.annotations().get(labels::PREFERRED_ZONE).is_none());
        assert_eq!(
            pinned
                .annotations()
                .get(labels::REBALANCING_ZONE)
                .map(String::as_str),
            Some("us-east-1b")
        );
        assert!(t.annotations().get(labels::REBALANCING_ZONE).is_none());
        assert_eq!(
            pins::pinned_zone(pinned.spec.placement_constraints.as_deref().unwrap()).as_deref(),
            Some("us-east-1b")
        );
    }

    #[test]
    fn load_balancers_select_the_service_pods_on_the_container_port() {
        let s = service(json!({"taskDefinition": "web", "desiredCount": 2,
            "loadBalancers": [{"containerName": "web", "containerPort": 80,
                "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123:targetgroup/Web-TG/abc"}]}));
        let svcs = kube_services(&s, &td(), None).unwrap();
        assert_eq!(svcs.len(), 1);
        let k = &svcs[0];
        assert_eq!(k.metadata.name.as_deref(), Some("web-tg"));
        let spec = k.spec.as_ref().unwrap();
        // Nothing is exposed outside the cluster unless the annotation asks for it.
        assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(spec.selector.as_ref().unwrap()[labels::SERVICE], "web");
        let port = &spec.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.port, port.app_protocol.as_deref()),
            (80, Some("http"))
        );
    }

    #[test]
    fn the_type_comes_from_the_annotation_and_bad_ports_are_errors() {
        let mut s = service(json!({"taskDefinition": "web", "desiredCount": 1,
            "loadBalancers": [{"containerName": "dns", "containerPort": 53}]}));
        s.metadata.annotations = Some(BTreeMap::from([(
            LOAD_BALANCER_TYPE.into(),
            "LoadBalancer".into(),
        )]));
        let svcs = kube_services(&s, &td(), None).unwrap();
        let spec = svcs[0].spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(
            spec.ports.as_ref().unwrap()[0].protocol.as_deref(),
            Some("UDP")
        );
        assert_eq!(svcs[0].metadata.name.as_deref(), Some("web-53"));

        let s = service(json!({"taskDefinition": "web", "desiredCount": 1,
            "loadBalancers": [{"containerName": "web", "containerPort": 8080}]}));
        let err = kube_services(&s, &td(), None).unwrap_err();
        assert!(
            err.contains("containerPort 8080 is not in the portMappings of container \"web\""),
            "{err}"
        );
        let s = service(json!({"taskDefinition": "web", "desiredCount": 1,
            "loadBalancers": [{"containerName": "api", "containerPort": 80}]}));
        assert!(
            kube_services(&s, &td(), None)
                .unwrap_err()
                .contains("\"api\" is not a container")
        );
    }

    #[test]
    fn only_a_controller_reference_with_the_service_uid_is_ours() {
        let s = service(json!({"taskDefinition": "web", "desiredCount": 1}));
        let mut theirs = KubeService::default();
        theirs.metadata.labels = Some(selector(&s));
        assert!(!controlled_by(&theirs, &s), "labels do not make it ours");
        let mut owner = s.controller_owner_ref(&()).unwrap();
        theirs.metadata.owner_references = Some(vec![owner.clone()]);
        assert!(controlled_by(&theirs, &s));
        owner.uid = "u-earlier".into();
        theirs.metadata.owner_references = Some(vec![owner.clone()]);
        assert!(
            !controlled_by(&theirs, &s),
            "a service of the same name before"
        );
        owner.uid = "u-1".into();
        owner.controller = Some(false);
        theirs.metadata.owner_references = Some(vec![owner]);
        assert!(
            !controlled_by(&theirs, &s),
            "an owner that is not the controller"
        );
    }

    #[test]
    fn a_service_registry_is_a_headless_service() {
        let s = service(json!({"taskDefinition": "web", "desiredCount": 1,
            "serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:us-east-1:123:service/srv-abc123"}]}));
        let svcs = kube_services(&s, &td(), None).unwrap();
        let spec = svcs[0].spec.as_ref().unwrap();
        assert_eq!(svcs[0].metadata.name.as_deref(), Some("srv-abc123"));
        assert_eq!(spec.cluster_ip.as_deref(), Some("None"));
        assert_eq!(spec.ports, None);
    }
}
