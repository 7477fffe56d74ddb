//! Which nodes a service may use: pure.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorRequirement};

use crate::placement::ZONE_LABEL;

/// A node tasks can be placed on now: Ready, schedulable, and without a NoSchedule/NoExecute taint.
pub fn is_eligible(node: &Node) -> bool {
    let spec = node.spec.as_ref();
    if spec.and_then(|s| s.unschedulable) == Some(true) {
        return false;
    }
    let tainted = spec
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute");
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    ready && !tainted
}

/// The zones of the eligible nodes.
pub fn zones<'a>(nodes: impl IntoIterator<Item = &'a Node>) -> Vec<String> {
    nodes
        .into_iter()
        .filter(|n| is_eligible(n))
        .filter_map(|n| n.metadata.labels.as_ref()?.get(ZONE_LABEL).cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Does a node with these labels satisfy a required node selector (terms ORed, expressions ANDed)?
pub fn matches(selector: &NodeSelector, labels: &BTreeMap<String, String>) -> bool {
    selector.node_selector_terms.iter().any(|term| {
        term.match_expressions
            .iter()
            .flatten()
            .all(|r| requirement(r, labels))
    })
}

fn requirement(r: &NodeSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(&r.key);
    let values = r.values.as_deref().unwrap_or_default();
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => !value.is_some_and(|v| values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => {
            matches!((value.and_then(|v| number(v)), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a > b)
        }
        "Lt" => {
            matches!((value.and_then(|v| number(v)), values.first().and_then(|v| number(v))), (Some(a), Some(b)) if a < b)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: serde_json::Value, ready: bool, taint: Option<&str>) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n", "labels": labels},
            "spec": {"taints": taint.map(|e| vec![json!({"key": "k", "effect": e})]).unwrap_or_default()},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .unwrap()
    }

    #[test]
    fn only_ready_untainted_nodes_count() {
        let a = node(json!({ZONE_LABEL: "a"}), true, None);
        let b = node(json!({ZONE_LABEL: "b"}), false, None);
        let c = node(json!({ZONE_LABEL: "c"}), true, Some("NoExecute"));
        let d = node(json!({ZONE_LABEL: "d"}), true, Some("PreferNoSchedule"));
        assert_eq!(zones([&a, &b, &c, &d]), ["a", "d"]);
    }

    #[test]
    fn selectors_match_like_the_scheduler() {
        let selector: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                                  {"key": "gpu", "operator": "DoesNotExist"}]},
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["8"]}]}
        ]}))
        .unwrap();
        let labels = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(matches(&selector, &labels(&[("zone", "a")])));
        assert!(!matches(&selector, &labels(&[("zone", "a"), ("gpu", "1")])));
        assert!(!matches(&selector, &labels(&[("zone", "c")])));
        assert!(matches(&selector, &labels(&[("cores", "16")])));
        assert!(!matches(&selector, &labels(&[("cores", "4")])));
    }
}
