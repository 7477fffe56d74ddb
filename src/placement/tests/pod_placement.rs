//! Constraints and strategies → PodPlacement, combining, and writing into a PodSpec.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm, PodSpec,
    TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::member_of::{group_term, req, selector};
use crate::api::placement::{PlacementConstraint, PlacementStrategy};
use crate::placement::{PlacementError, PodPlacement, member_of, pod_placement};

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), "web".to_string())])
}

fn own_pods() -> Option<LabelSelector> {
    Some(LabelSelector {
        match_labels: Some(labels()),
        match_expressions: None,
    })
}

fn own_pods_per_node() -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: own_pods(),
        topology_key: "kubernetes.io/hostname".into(),
        ..Default::default()
    }
}

fn spread_on(key: &str) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        label_selector: own_pods(),
        max_skew: 1,
        topology_key: key.into(),
        when_unsatisfiable: "ScheduleAnyway".into(),
        ..Default::default()
    }
}

fn constraint(type_: &str, expression: Option<&str>) -> PlacementConstraint {
    PlacementConstraint {
        type_: type_.into(),
        expression: expression.map(str::to_string),
    }
}

fn strategy(type_: &str, field: Option<&str>) -> PlacementStrategy {
    PlacementStrategy {
        type_: type_.into(),
        field: field.map(str::to_string),
    }
}

/// Only the given strategies, no constraints.
fn with_strategies(strategies: &[PlacementStrategy]) -> Result<PodPlacement, PlacementError> {
    pod_placement(&[], strategies, &labels())
}

/// Only the given constraints, with `random` so that no default spread is added.
fn with_constraints(constraints: &[PlacementConstraint]) -> Result<PodPlacement, PlacementError> {
    pod_placement(constraints, &[strategy("random", None)], &labels())
}

const ZONE: &str = "topology.kubernetes.io/zone";
const HOST: &str = "kubernetes.io/hostname";

#[test]
fn default_strategy_spreads_on_zone_then_host() {
    assert_eq!(
        with_strategies(&[]).unwrap(),
        PodPlacement {
            topology_spread_constraints: vec![spread_on(ZONE), spread_on(HOST)],
            ..Default::default()
        }
    );
}

#[test]
fn random_adds_nothing() {
    assert!(
        with_strategies(&[strategy("random", None)])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn spread_fields() {
    let spreads = |field: &str| {
        with_strategies(&[strategy("spread", Some(field))])
            .unwrap()
            .topology_spread_constraints
    };
    assert_eq!(
        spreads("attribute:ecs.availability-zone"),
        vec![spread_on(ZONE)]
    );
    assert_eq!(spreads("instanceId"), vec![spread_on(HOST)]);
    assert_eq!(spreads("host"), vec![spread_on(HOST)]);
    assert_eq!(
        spreads("attribute:ecs.instance-type"),
        vec![spread_on("node.kubernetes.io/instance-type")]
    );
    assert_eq!(spreads("attribute:rack"), vec![spread_on("rack")]);
}

#[test]
fn strategies_keep_order_and_drop_duplicates() {
    let p = with_strategies(&[
        strategy("spread", Some("instanceId")),
        strategy("spread", Some("attribute:ecs.availability-zone")),
        strategy("spread", Some("host")),
    ])
    .unwrap();
    assert_eq!(
        p.topology_spread_constraints,
        vec![spread_on(HOST), spread_on(ZONE)]
    );
}

#[test]
fn binpack_prefers_packing_with_own_pods() {
    let packed = PodPlacement {
        preferred_pod_affinity_terms: vec![WeightedPodAffinityTerm {
            weight: 100,
            pod_affinity_term: own_pods_per_node(),
        }],
        ..Default::default()
    };
    assert_eq!(
        with_strategies(&[strategy("binpack", Some("memory"))]).unwrap(),
        packed
    );
    assert_eq!(
        with_strategies(&[
            strategy("binpack", Some("cpu")),
            strategy("binpack", Some("MEMORY"))
        ])
        .unwrap(),
        packed
    );
    let mixed = with_strategies(&[
        strategy("spread", Some("attribute:ecs.availability-zone")),
        strategy("binpack", Some("memory")),
    ])
    .unwrap();
    assert_eq!(mixed.topology_spread_constraints, vec![spread_on(ZONE)]);
    assert_eq!(
        mixed.preferred_pod_affinity_terms,
        packed.preferred_pod_affinity_terms
    );
}

#[test]
fn invalid_strategies() {
    for (s, fragment) in [
        (
            strategy("spread", None),
            "spread field must be instanceId, host or attribute:<name>, not ''",
        ),
        (strategy("spread", Some("cpu")), "not 'cpu'"),
        (
            strategy("spread", Some("attribute:bad key")),
            "'bad key' is not a valid Kubernetes label key",
        ),
        (
            strategy("binpack", Some("disk")),
            "binpack field must be cpu or memory, not 'disk'",
        ),
        (
            strategy("binpack", None),
            "binpack field must be cpu or memory",
        ),
        (
            strategy("pack", None),
            "unknown type 'pack'; ECS accepts random, spread or binpack",
        ),
    ] {
        match with_strategies(&[s]) {
            Err(PlacementError::InvalidStrategy(m)) => assert!(m.contains(fragment), "{m}"),
            other => panic!("expected InvalidStrategy, got {other:?}"),
        }
    }
}

#[test]
fn distinct_instance_is_anti_affinity_to_own_pods() {
    assert_eq!(
        with_constraints(&[constraint("distinctInstance", None)]).unwrap(),
        PodPlacement {
            pod_anti_affinity_terms: vec![own_pods_per_node()],
            ..Default::default()
        }
    );
    // An empty expression counts as none.
    assert!(with_constraints(&[constraint("distinctInstance", Some(" "))]).is_ok());
}

#[test]
fn invalid_constraints() {
    for (c, fragment) in [
        (
            constraint("distinctInstance", Some("task:group == a")),
            "an expression cannot be given",
        ),
        (constraint("memberOf", None), "memberOf needs an expression"),
        (
            constraint("memberOf", Some("  ")),
            "memberOf needs an expression",
        ),
        (
            constraint("sameHost", None),
            "unknown type 'sameHost'; ECS accepts distinctInstance or memberOf",
        ),
    ] {
        match with_constraints(&[c]) {
            Err(PlacementError::InvalidConstraint(m)) => assert!(m.contains(fragment), "{m}"),
            other => panic!("expected InvalidConstraint, got {other:?}"),
        }
    }
    assert!(matches!(
        with_constraints(&[constraint("memberOf", Some("attribute:x"))]),
        Err(PlacementError::Parse(_))
    ));
}

#[test]
fn empty_selector_is_refused_where_needed() {
    let none = BTreeMap::new();
    let e = pod_placement(&[], &[], &none).unwrap_err();
    assert_eq!(
        e,
        PlacementError::EmptySelector("the default spread strategy".into())
    );
    assert!(
        e.to_string()
            .contains("needs labels selecting the tasks' pods"),
        "{e}"
    );
    assert!(matches!(
        pod_placement(
            &[constraint("distinctInstance", None)],
            &[strategy("random", None)],
            &none
        ),
        Err(PlacementError::EmptySelector(_))
    ));
    // memberOf and random need no selector.
    assert!(
        pod_placement(
            &[constraint("memberOf", Some("attribute:a == 1"))],
            &[strategy("random", None)],
            &none
        )
        .is_ok()
    );
}

#[test]
fn several_memberof_constraints_are_anded() {
    let p = with_constraints(&[
        constraint("memberOf", Some("attribute:a == 1 or attribute:b == 2")),
        constraint("memberOf", Some("attribute:c == 3 or attribute:d == 4")),
        constraint("memberOf", Some("task:group == web")),
        constraint("distinctInstance", None),
    ])
    .unwrap();
    assert_eq!(
        p,
        PodPlacement {
            node_affinity: selector(vec![
                vec![req("a", "In", &["1"]), req("c", "In", &["3"])],
                vec![req("a", "In", &["1"]), req("d", "In", &["4"])],
                vec![req("b", "In", &["2"]), req("c", "In", &["3"])],
                vec![req("b", "In", &["2"]), req("d", "In", &["4"])],
            ]),
            pod_affinity_terms: vec![group_term(&["web"])],
            pod_anti_affinity_terms: vec![own_pods_per_node()],
            ..Default::default()
        }
    );
}

#[test]
fn combining_is_bounded() {
    let wide = |prefix: &str| {
        let alternatives: Vec<String> = (0..6)
            .map(|i| format!("attribute:{prefix}{i} == 1"))
            .collect();
        constraint("memberOf", Some(&alternatives.join(" or ")))
    };
    assert_eq!(
        with_constraints(&[wide("a"), wide("b")]).unwrap_err(),
        PlacementError::TooComplex
    );
}

#[test]
fn full_service_placement() {
    let p = pod_placement(
        &[
            constraint("memberOf", Some("attribute:ecs.os-type == linux")),
            constraint("distinctInstance", None),
        ],
        &[],
        &labels(),
    )
    .unwrap();
    assert_eq!(
        p.node_affinity,
        selector(vec![vec![req("kubernetes.io/os", "In", &["linux"])]])
    );
    assert_eq!(p.pod_anti_affinity_terms, vec![own_pods_per_node()]);
    assert_eq!(
        p.topology_spread_constraints,
        vec![spread_on(ZONE), spread_on(HOST)]
    );
}

#[test]
fn apply_to_an_empty_pod_spec() {
    let placement = with_constraints(&[constraint(
        "memberOf",
        Some("attribute:a == 1 and task:group == web and task:group != db"),
    )])
    .unwrap()
    .and(
        with_strategies(&[
            strategy("binpack", Some("cpu")),
            strategy("spread", Some("host")),
        ])
        .unwrap(),
    )
    .unwrap();
    let mut spec = PodSpec::default();
    placement.apply_to(&mut spec).unwrap();
    let affinity = spec.affinity.clone().unwrap();
    assert_eq!(
        affinity
            .node_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution,
        selector(vec![vec![req("a", "In", &["1"])]])
    );
    let pod_affinity = affinity.pod_affinity.unwrap();
    assert_eq!(
        pod_affinity.required_during_scheduling_ignored_during_execution,
        Some(vec![group_term(&["web"])])
    );
    assert_eq!(
        pod_affinity.preferred_during_scheduling_ignored_during_execution,
        Some(placement.preferred_pod_affinity_terms.clone())
    );
    assert_eq!(
        affinity
            .pod_anti_affinity
            .unwrap()
            .required_during_scheduling_ignored_during_execution,
        Some(vec![group_term(&["db"])])
    );
    assert_eq!(
        spec.topology_spread_constraints,
        Some(vec![spread_on(HOST)])
    );

    // Applying twice changes nothing more.
    let once = spec.clone();
    placement.apply_to(&mut spec).unwrap();
    assert_eq!(spec, once);
}

#[test]
fn apply_to_ands_with_existing_rules() {
    let existing_term = NodeSelectorTerm {
        match_expressions: Some(vec![req("pool", "In", &["general"])]),
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "NotIn".into(),
            values: Some(vec!["node-9".into()]),
        }]),
    };
    let mut spec = PodSpec {
        affinity: Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(
                    k8s_openapi::api::core::v1::NodeSelector {
                        node_selector_terms: vec![existing_term],
                    },
                ),
                ..Default::default()
            }),
            ..Default::default()
        }),
        topology_spread_constraints: Some(vec![spread_on(ZONE)]),
        ..Default::default()
    };
    let placement = member_of("attribute:a == 1 or attribute:b == 2")
        .unwrap()
        .and(with_strategies(&[]).unwrap())
        .unwrap();
    placement.apply_to(&mut spec).unwrap();
    let terms = spec
        .affinity
        .unwrap()
        .node_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()
        .node_selector_terms;
    assert_eq!(terms.len(), 2);
    for (term, (key, value)) in terms.iter().zip([("a", "1"), ("b", "2")]) {
        assert_eq!(
            term.match_expressions,
            Some(vec![
                req("pool", "In", &["general"]),
                req(key, "In", &[value])
            ])
        );
        assert_eq!(term.match_fields.as_ref().map(Vec::len), Some(1));
    }
    // The zone spread was already there: only the host spread is added.
    assert_eq!(
        spec.topology_spread_constraints,
        Some(vec![spread_on(ZONE), spread_on(HOST)])
    );
}

#[test]
fn apply_to_leaves_the_spec_alone_when_empty_or_failing() {
    let mut spec = PodSpec::default();
    PodPlacement::default().apply_to(&mut spec).unwrap();
    assert_eq!(spec, PodSpec::default());

    let wide = |prefix: &str| {
        let alternatives: Vec<String> = (0..6)
            .map(|i| format!("attribute:{prefix}{i} == 1"))
            .collect();
        member_of(&alternatives.join(" or ")).unwrap()
    };
    wide("a").apply_to(&mut spec).unwrap();
    let before = spec.clone();
    assert_eq!(
        wide("b").apply_to(&mut spec),
        Err(PlacementError::TooComplex)
    );
    assert_eq!(spec, before);
}
