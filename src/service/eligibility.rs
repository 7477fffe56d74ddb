//! Which nodes a service's tasks can ever run on: pure.
//!
//! ECS places a service's task only on an instance that meets every constraint at once: the
//! service's `placementConstraints`, the task definition's own `placementConstraints` and its
//! `runtimePlatform`. The task's pod carries all three (node affinity from the constraints,
//! `src/task/build.rs`; a node selector from the runtime platform, `src/translate/pod.rs`), so a node
//! that fails any of them can never run the task. Such a node must not count either: not its zone for
//! AZ rebalancing (a task started there to rebalance would stay PENDING for ever), nor the node itself
//! for DAEMON (one task per node it can run on, none elsewhere). Both use [`Eligibility`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, NodeSelector};

use super::nodes;
use crate::api::TaskDefinitionSpec;
use crate::api::placement::PlacementConstraint;
use crate::placement::{ZONE_LABEL, pod_placement};

/// The node rules every task of a service must meet.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Eligibility {
    /// Required node affinity of the service's and the task definition's constraints (`None`: any).
    affinity: Option<NodeSelector>,
    /// Labels a node must have exactly (the task definition's `runtimePlatform`).
    labels: BTreeMap<String, String>,
}

/// The nodes a service may use, from [`Eligibility::split`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eligible {
    /// Zones with at least one node that can take a task now (AZ rebalancing balances over these).
    pub zones: Vec<String>,
    /// Nodes that match and can take a task now (Ready, schedulable, untainted).
    pub nodes: Vec<String>,
    /// Nodes that match but take no new task now (cordoned, NotReady, tainted).
    pub unavailable: Vec<String>,
}

impl Eligibility {
    /// The rules of a service with `constraints` running `definition` (`None` while the definition
    /// cannot be read: the service's constraints alone). `selector` labels the service's pods (for
    /// `distinctInstance`, which constrains pods, not nodes). Errors are the placement or runtime
    /// platform errors the task's pod would fail with.
    pub fn new(
        constraints: &[PlacementConstraint],
        definition: Option<&TaskDefinitionSpec>,
        selector: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let all: Vec<PlacementConstraint> = constraints
            .iter()
            .chain(
                definition
                    .and_then(|d| d.placement_constraints.as_ref())
                    .into_iter()
                    .flatten(),
            )
            .cloned()
            .collect();
        let placement = pod_placement(&all, &[], selector).map_err(|e| e.to_string())?;
        let labels = match definition {
            Some(d) => crate::translate::runtime_platform_labels(d).map_err(|e| e.to_string())?,
            None => BTreeMap::new(),
        };
        Ok(Self {
            affinity: placement.node_affinity,
            labels,
        })
    }

    /// Whether a task could ever run on `node` (whatever its state now).
    pub fn admits(&self, node: &Node) -> bool {
        let empty = BTreeMap::new();
        let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self
                .affinity
                .as_ref()
                .is_none_or(|sel| nodes::matches(sel, labels))
    }

    /// The zones and nodes of `all` a task can use now, and the matching nodes it cannot use now.
    pub fn split<'a>(&self, all: impl IntoIterator<Item = &'a Node>) -> Eligible {
        let mut zones = BTreeSet::new();
        let mut out = Eligible::default();
        for node in all.into_iter().filter(|n| self.admits(n)) {
            let name = node.metadata.name.clone().unwrap_or_default();
            if !nodes::is_eligible(node) {
                out.unavailable.push(name);
                continue;
            }
            if let Some(zone) = node
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(ZONE_LABEL))
            {
                zones.insert(zone.clone());
            }
            out.nodes.push(name);
        }
        out.zones = zones.into_iter().collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, zone: &str, extra: serde_json::Value, ready: bool) -> Node {
        let mut labels =
            json!({ZONE_LABEL: zone, "kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux"});
        for (k, v) in extra.as_object().unwrap() {
            labels[k] = v.clone();
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    fn cluster() -> Vec<Node> {
        vec![
            node("a1", "a", json!({"disk": "ssd"}), true),
            node("a2", "a", json!({}), true),
            node("b1", "b", json!({"kubernetes.io/arch": "arm64"}), true),
            node("b2", "b", json!({"disk": "ssd"}), false),
            node("c1", "c", json!({}), true),
        ]
    }

    fn member_of(expression: &str) -> PlacementConstraint {
        PlacementConstraint {
            type_: "memberOf".into(),
            expression: Some(expression.into()),
        }
    }

    fn definition(value: serde_json::Value) -> TaskDefinitionSpec {
        let mut spec = json!({"containerDefinitions": [{"name": "web", "image": "nginx"}]});
        for (k, v) in value.as_object().unwrap() {
            spec[k] = v.clone();
        }
        serde_json::from_value(spec).unwrap()
    }

    fn selector() -> BTreeMap<String, String> {
        BTreeMap::from([("svc".to_string(), "web".to_string())])
    }

    fn split(service: &[PlacementConstraint], td: Option<&TaskDefinitionSpec>) -> Eligible {
        Eligibility::new(service, td, &selector())
            .unwrap()
            .split(&cluster())
    }

    #[test]
    fn without_constraints_every_ready_node_counts() {
        let e = split(&[], Some(&definition(json!({}))));
        assert_eq!(e.zones, ["a", "b", "c"]);
        assert_eq!(e.nodes, ["a1", "a2", "b1", "c1"]);
        assert_eq!(e.unavailable, ["b2"]);
    }

    #[test]
    fn the_task_definitions_constraints_count_like_the_services() {
        let td = definition(json!({"placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.availability-zone != c"}]}));
        let e = split(&[], Some(&td));
        assert_eq!(e.zones, ["a", "b"]);
        assert_eq!(e.nodes, ["a1", "a2", "b1"]);

        let td = definition(json!({"placementConstraints": [
            {"type": "memberOf", "expression": "attribute:disk == ssd"}]}));
        let e = split(&[], Some(&td));
        assert_eq!(
            (e.nodes, e.unavailable),
            (vec!["a1".into()], vec!["b2".into()])
        );
        assert_eq!(e.zones, ["a"], "b2 matches but is NotReady");
    }

    #[test]
    fn both_sets_of_constraints_must_hold() {
        let td = definition(json!({"placementConstraints": [
            {"type": "memberOf", "expression": "attribute:ecs.availability-zone in [a, b]"}]}));
        let e = split(
            &[member_of("attribute:ecs.availability-zone in [b, c]")],
            Some(&td),
        );
        assert_eq!(e.zones, ["b"]);
        assert_eq!(e.nodes, ["b1"]);
        // Without the definition (not readable yet), the service's alone.
        let e = split(
            &[member_of("attribute:ecs.availability-zone in [b, c]")],
            None,
        );
        assert_eq!(e.zones, ["b", "c"]);
    }

    #[test]
    fn the_runtime_platform_selects_architecture_and_os() {
        let arm = definition(json!({"runtimePlatform": {"cpuArchitecture": "ARM64"}}));
        assert_eq!(split(&[], Some(&arm)).nodes, ["b1"]);
        let x86 = definition(json!({"runtimePlatform": {"cpuArchitecture": "X86_64",
            "operatingSystemFamily": "LINUX"}}));
        assert_eq!(split(&[], Some(&x86)).nodes, ["a1", "a2", "c1"]);
        let windows = definition(json!({"runtimePlatform":
            {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE"}}));
        let e = split(&[], Some(&windows));
        assert!(e.nodes.is_empty() && e.zones.is_empty(), "{e:?}");
    }

    #[test]
    fn pod_rules_do_not_restrict_nodes_and_bad_rules_are_errors() {
        let td = definition(json!({"placementConstraints": [{"type": "distinctInstance"}]}));
        assert_eq!(split(&[], Some(&td)).nodes.len(), 4);
        let bad = definition(json!({"runtimePlatform": {"cpuArchitecture": "riscv"}}));
        assert!(Eligibility::new(&[], Some(&bad), &selector()).is_err());
        assert!(Eligibility::new(&[member_of("attribute:x =~ y")], None, &selector()).is_err());
    }
}
