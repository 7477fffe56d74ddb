//! ECS placement strategies → topology spread constraints and preferred pod affinity.
//!
//! ECS strategies are best effort, so none of these is a hard rule: spreads use `whenUnsatisfiable:
//! ScheduleAnyway`. ECS applies strategies in order, the first deciding ties of none; the Kubernetes scheduler
//! scores all its rules together, so order is kept in the output but not given priority.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PodAffinityTerm, TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::placement::PlacementStrategy;

use super::dnf::dedup;
use super::error::PlacementError;
use super::labels::{HOSTNAME_LABEL, ZONE_LABEL, attribute_label};
use super::pod_placement::{PodPlacement, dedup_spreads};

/// Weight of the binpack preference: the strongest, as binpack is the only preferred rule produced here.
const BINPACK_WEIGHT: i32 = 100;

/// The scheduling rules for `strategies`, applied to the pods `selector` matches. With no strategy, the ECS
/// service default: spread across availability zones, then across instances.
pub(crate) fn strategies(
    strategies: &[PlacementStrategy],
    selector: &BTreeMap<String, String>,
) -> Result<PodPlacement, PlacementError> {
    let mut placement = PodPlacement::default();
    if strategies.is_empty() {
        require_selector(selector, "the default spread strategy")?;
        placement.topology_spread_constraints = vec![
            spread(ZONE_LABEL, selector),
            spread(HOSTNAME_LABEL, selector),
        ];
        return Ok(placement);
    }
    for strategy in strategies {
        let field = strategy.field.as_deref().map(str::trim).unwrap_or_default();
        match strategy.type_.to_ascii_lowercase().as_str() {
            "random" => {}
            "spread" => {
                let key = spread_key(field)?;
                require_selector(selector, "the spread strategy")?;
                placement
                    .topology_spread_constraints
                    .push(spread(&key, selector));
            }
            "binpack" => {
                if !(field.eq_ignore_ascii_case("cpu") || field.eq_ignore_ascii_case("memory")) {
                    return Err(PlacementError::InvalidStrategy(format!(
                        "binpack field must be cpu or memory, not '{field}'"
                    )));
                }
                require_selector(selector, "the binpack strategy")?;
                placement
                    .preferred_pod_affinity_terms
                    .push(WeightedPodAffinityTerm {
                        weight: BINPACK_WEIGHT,
                        pod_affinity_term: selector_term(selector),
                    });
            }
            other => {
                return Err(PlacementError::InvalidStrategy(format!(
                    "unknown type '{other}'; ECS accepts random, spread or binpack"
                )));
            }
        }
    }
    placement.topology_spread_constraints = dedup_spreads(placement.topology_spread_constraints);
    placement.preferred_pod_affinity_terms = dedup(placement.preferred_pod_affinity_terms);
    Ok(placement)
}

/// The node label a spread field stands for.
fn spread_key(field: &str) -> Result<String, PlacementError> {
    if field.eq_ignore_ascii_case("instanceId") || field.eq_ignore_ascii_case("host") {
        return Ok(HOSTNAME_LABEL.to_string());
    }
    const PREFIX: &str = "attribute:";
    let attribute = field
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .and_then(|_| field.get(PREFIX.len()..));
    match attribute {
        Some(name) => attribute_label(name).map(str::to_string).ok_or_else(|| {
            PlacementError::InvalidStrategy(format!(
                "spread field '{field}': '{name}' is not a valid Kubernetes label key"
            ))
        }),
        None => Err(PlacementError::InvalidStrategy(format!(
            "spread field must be instanceId, host or attribute:<name>, not '{field}'"
        ))),
    }
}

pub(crate) fn require_selector(
    selector: &BTreeMap<String, String>,
    what: &str,
) -> Result<(), PlacementError> {
    if selector.is_empty() {
        // An empty label selector would match every pod in the namespace.
        return Err(PlacementError::EmptySelector(what.to_string()));
    }
    Ok(())
}

/// A pod affinity term for the pods `selector` matches, per node.
pub(crate) fn selector_term(selector: &BTreeMap<String, String>) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(label_selector(selector)),
        topology_key: HOSTNAME_LABEL.to_string(),
        ..Default::default()
    }
}

fn label_selector(selector: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector.clone()),
        match_expressions: None,
    }
}

/// Best-effort even spread of the pods `selector` matches across the values of node label `key`.
fn spread(key: &str, selector: &BTreeMap<String, String>) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        label_selector: Some(label_selector(selector)),
        max_skew: 1,
        topology_key: key.to_string(),
        when_unsatisfiable: "ScheduleAnyway".to_string(),
        ..Default::default()
    }
}
