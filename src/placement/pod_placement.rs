//! The Kubernetes scheduling rules for a set of ECS placement constraints and strategies, and how they are
//! combined and written into a pod spec.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    NodeSelector, PodAffinityTerm, PodSpec, TopologySpreadConstraint, WeightedPodAffinityTerm,
};

use crate::api::placement::{PlacementConstraint, PlacementStrategy};

use super::dnf::{and_node_selectors, dedup};
use super::error::PlacementError;
use super::member_of::member_of;
use super::strategy::{self, require_selector, selector_term};

/// Kubernetes scheduling rules standing for ECS placement. Every part is ANDed with the others.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodPlacement {
    /// Required node affinity (`requiredDuringSchedulingIgnoredDuringExecution`); `None`: any node.
    pub node_affinity: Option<NodeSelector>,
    /// Required pod affinity terms.
    pub pod_affinity_terms: Vec<PodAffinityTerm>,
    /// Required pod anti-affinity terms.
    pub pod_anti_affinity_terms: Vec<PodAffinityTerm>,
    /// Preferred pod affinity terms (binpack).
    pub preferred_pod_affinity_terms: Vec<WeightedPodAffinityTerm>,
    /// Topology spread constraints (spread strategies).
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
}

/// The Kubernetes scheduling rules for ECS placement constraints and strategies.
///
/// `selector` holds the labels identifying this service's (or task family's) pods: `distinctInstance`, spread
/// and binpack are about those pods. Constraints are all required (ANDed); strategies are best effort; with no
/// strategy the ECS service default applies (spread across zones, then instances).
pub fn pod_placement(
    constraints: &[PlacementConstraint],
    strategies: &[PlacementStrategy],
    selector: &BTreeMap<String, String>,
) -> Result<PodPlacement, PlacementError> {
    let mut placement = PodPlacement::default();
    for c in constraints {
        placement = placement.and(constraint(c, selector)?)?;
    }
    placement.and(strategy::strategies(strategies, selector)?)
}

fn constraint(
    c: &PlacementConstraint,
    selector: &BTreeMap<String, String>,
) -> Result<PodPlacement, PlacementError> {
    let expression = c
        .expression
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    match (c.type_.to_ascii_lowercase().as_str(), expression) {
        ("distinctinstance", None) => {
            require_selector(selector, "the distinctInstance constraint")?;
            Ok(PodPlacement {
                pod_anti_affinity_terms: vec![selector_term(selector)],
                ..Default::default()
            })
        }
        ("distinctinstance", Some(_)) => Err(PlacementError::InvalidConstraint(
            "an expression cannot be given with distinctInstance".into(),
        )),
        ("memberof", Some(e)) => member_of(e),
        ("memberof", None) => Err(PlacementError::InvalidConstraint(
            "memberOf needs an expression".into(),
        )),
        (_, _) => Err(PlacementError::InvalidConstraint(format!(
            "unknown type '{}'; ECS accepts distinctInstance or memberOf",
            c.type_
        ))),
    }
}

/// Removes spread constraints on a topology already spread with the same `whenUnsatisfiable`: the API server
/// rejects such duplicates.
pub(crate) fn dedup_spreads(
    spreads: Vec<TopologySpreadConstraint>,
) -> Vec<TopologySpreadConstraint> {
    let mut out: Vec<TopologySpreadConstraint> = Vec::with_capacity(spreads.len());
    for s in spreads {
        if !out.iter().any(|o| {
            o.topology_key == s.topology_key && o.when_unsatisfiable == s.when_unsatisfiable
        }) {
            out.push(s);
        }
    }
    out
}

impl PodPlacement {
    /// Whether these rules constrain nothing.
    pub fn is_empty(&self) -> bool {
        *self == PodPlacement::default()
    }

    /// Both sets of rules at once: node affinities are crossed (their OR-ed terms multiply), the rest is joined.
    pub fn and(self, other: PodPlacement) -> Result<PodPlacement, PlacementError> {
        Ok(PodPlacement {
            node_affinity: and_node_selectors(self.node_affinity, other.node_affinity)?,
            pod_affinity_terms: join(self.pod_affinity_terms, other.pod_affinity_terms),
            pod_anti_affinity_terms: join(
                self.pod_anti_affinity_terms,
                other.pod_anti_affinity_terms,
            ),
            preferred_pod_affinity_terms: join(
                self.preferred_pod_affinity_terms,
                other.preferred_pod_affinity_terms,
            ),
            topology_spread_constraints: dedup_spreads(
                self.topology_spread_constraints
                    .into_iter()
                    .chain(other.topology_spread_constraints)
                    .collect(),
            ),
        })
    }

    /// Adds these rules to `spec`, ANDed with the affinity and spread constraints it already has. On error
    /// `spec` is left unchanged.
    pub fn apply_to(&self, spec: &mut PodSpec) -> Result<(), PlacementError> {
        if self.is_empty() {
            return Ok(());
        }
        let existing = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .clone()
            });
        let node_selector = and_node_selectors(existing, self.node_affinity.clone())?;

        let affinity = spec.affinity.get_or_insert_default();
        if node_selector.is_some() {
            affinity
                .node_affinity
                .get_or_insert_default()
                .required_during_scheduling_ignored_during_execution = node_selector;
        }
        if !self.pod_affinity_terms.is_empty() || !self.preferred_pod_affinity_terms.is_empty() {
            let pod_affinity = affinity.pod_affinity.get_or_insert_default();
            extend(
                &mut pod_affinity.required_during_scheduling_ignored_during_execution,
                &self.pod_affinity_terms,
            );
            extend(
                &mut pod_affinity.preferred_during_scheduling_ignored_during_execution,
                &self.preferred_pod_affinity_terms,
            );
        }
        if !self.pod_anti_affinity_terms.is_empty() {
            extend(
                &mut affinity
                    .pod_anti_affinity
                    .get_or_insert_default()
                    .required_during_scheduling_ignored_during_execution,
                &self.pod_anti_affinity_terms,
            );
        }
        if !self.topology_spread_constraints.is_empty() {
            let spreads = spec.topology_spread_constraints.take().unwrap_or_default();
            spec.topology_spread_constraints = Some(dedup_spreads(
                spreads
                    .into_iter()
                    .chain(self.topology_spread_constraints.iter().cloned())
                    .collect(),
            ));
        }
        Ok(())
    }
}

/// `a` then the items of `b` not already in it.
fn join<T: PartialEq>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
    dedup(a.into_iter().chain(b).collect())
}

/// Appends `items` to an optional list, skipping those already present; leaves `None` alone when nothing is added.
fn extend<T: Clone + PartialEq>(list: &mut Option<Vec<T>>, items: &[T]) {
    if items.is_empty() {
        return;
    }
    let list = list.get_or_insert_default();
    for item in items {
        if !list.contains(item) {
            list.push(item.clone());
        }
    }
}
