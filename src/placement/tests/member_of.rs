//! memberOf → node affinity and task-group pod (anti-)affinity.

use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::placement::{
    GROUP_LABEL, MAX_NODE_SELECTOR_TERMS, PlacementError, PodPlacement, member_of,
};

pub(super) fn req(key: &str, operator: &str, values: &[&str]) -> NodeSelectorRequirement {
    NodeSelectorRequirement {
        key: key.into(),
        operator: operator.into(),
        values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
    }
}

pub(super) fn selector(terms: Vec<Vec<NodeSelectorRequirement>>) -> Option<NodeSelector> {
    Some(NodeSelector {
        node_selector_terms: terms
            .into_iter()
            .map(|reqs| NodeSelectorTerm {
                match_expressions: Some(reqs),
                match_fields: None,
            })
            .collect(),
    })
}

pub(super) fn group_term(values: &[&str]) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: GROUP_LABEL.into(),
                operator: "In".into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
            match_labels: None,
        }),
        topology_key: "kubernetes.io/hostname".into(),
        ..Default::default()
    }
}

/// The node affinity of an expression with no task:group term.
fn nodes(expression: &str) -> Option<NodeSelector> {
    let p = member_of(expression).unwrap_or_else(|e| panic!("{expression}: {e}"));
    assert!(p.pod_affinity_terms.is_empty() && p.pod_anti_affinity_terms.is_empty());
    p.node_affinity
}

fn one(key: &str, operator: &str, values: &[&str]) -> Option<NodeSelector> {
    selector(vec![vec![req(key, operator, values)]])
}

fn unsupported(expression: &str) -> (String, String) {
    match member_of(expression) {
        Err(PlacementError::UnsupportedExpression { term, reason }) => (term, reason),
        other => panic!("{expression}: expected UnsupportedExpression, got {other:?}"),
    }
}

const ZONE: &str = "topology.kubernetes.io/zone";
const TYPE: &str = "node.kubernetes.io/instance-type";

#[test]
fn each_operator() {
    assert_eq!(
        nodes("attribute:ecs.instance-type == t2.small"),
        one(TYPE, "In", &["t2.small"])
    );
    assert_eq!(
        nodes("attribute:ecs.instance-type != t2.small"),
        one(TYPE, "NotIn", &["t2.small"])
    );
    assert_eq!(
        nodes("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"),
        one(ZONE, "In", &["us-east-1a", "us-east-1b"])
    );
    assert_eq!(
        nodes("attribute:ecs.availability-zone !in [us-east-1a, us-east-1b]"),
        one(ZONE, "NotIn", &["us-east-1a", "us-east-1b"])
    );
    assert_eq!(nodes("attribute:gpu exists"), one("gpu", "Exists", &[]));
    assert_eq!(
        nodes("attribute:gpu !exists"),
        one("gpu", "DoesNotExist", &[])
    );
    assert_eq!(nodes("attribute:cores > 4"), one("cores", "Gt", &["4"]));
    assert_eq!(nodes("attribute:cores < 4"), one("cores", "Lt", &["4"]));
    assert_eq!(nodes("attribute:cores >= 4"), one("cores", "Gt", &["3"]));
    assert_eq!(nodes("attribute:cores <= 4"), one("cores", "Lt", &["5"]));
    assert_eq!(nodes("attribute:cores >= -2"), one("cores", "Gt", &["-3"]));
    // Repeated values are written once.
    assert_eq!(
        nodes("attribute:a in [x, y, x]"),
        one("a", "In", &["x", "y"])
    );
}

#[test]
fn subject_label_table() {
    assert_eq!(
        nodes("attribute:ecs.os-type == LINUX"),
        one("kubernetes.io/os", "In", &["linux"])
    );
    assert_eq!(
        nodes("attribute:ecs.cpu-architecture == x86_64"),
        one("kubernetes.io/arch", "In", &["amd64"])
    );
    assert_eq!(
        nodes("attribute:ecs.cpu-architecture in [ARM64, X86_64]"),
        one("kubernetes.io/arch", "In", &["arm64", "amd64"])
    );
    assert_eq!(
        nodes("ec2InstanceId in ['node-1', node-2]"),
        one("kubernetes.io/hostname", "In", &["node-1", "node-2"])
    );
    assert_eq!(
        nodes("attribute:example.com/tier == gold"),
        one("example.com/tier", "In", &["gold"])
    );
    assert_eq!(
        nodes("attribute:ecs.os-family == LINUX"),
        one("ecs.os-family", "In", &["LINUX"])
    );
    // Values of other labels keep their case.
    assert_eq!(
        nodes("attribute:stack == Prod"),
        one("stack", "In", &["Prod"])
    );
}

#[test]
fn invalid_label_keys_and_values_are_errors() {
    let (term, reason) = unsupported("attribute:bad:key == x");
    assert_eq!(term, "attribute:bad:key == x");
    assert!(
        reason.contains("not a valid Kubernetes label key"),
        "{reason}"
    );
    let (_, reason) = unsupported("attribute:a == 'two words'");
    assert!(
        reason.contains("'two words' is not a valid Kubernetes label value"),
        "{reason}"
    );
    let (_, reason) = unsupported("attribute:a in [ok, -bad]");
    assert!(reason.contains("'-bad'"), "{reason}");
    let long = "x".repeat(64);
    unsupported(&format!("attribute:a == {long}"));
}

#[test]
fn comparisons_need_integers() {
    let (term, reason) = unsupported("attribute:ecs.instance-type > t2");
    assert_eq!(term, "attribute:ecs.instance-type > t2");
    assert!(
        reason.contains("compares integers") && reason.contains("'t2'"),
        "{reason}"
    );
    let (_, reason) = unsupported(&format!("attribute:a >= {}", i64::MIN));
    assert!(reason.contains("out of range"), "{reason}");
    assert_eq!(
        nodes(&format!("attribute:a > {}", i64::MAX)),
        one("a", "Gt", &[&i64::MAX.to_string()])
    );
}

#[test]
fn regex_is_unsupported_with_a_hint() {
    let (term, reason) = unsupported("attribute:ecs.instance-type =~ g2.*");
    assert_eq!(term, "attribute:ecs.instance-type =~ g2.*");
    assert!(reason.contains("pattern matching"), "{reason}");
    assert!(
        reason.contains("'attribute:ecs.instance-type in [value1, value2]'"),
        "{reason}"
    );
    let (_, reason) = unsupported("ec2InstanceId !~ i-1.*");
    assert!(reason.contains("ec2InstanceId in ["), "{reason}");
    let (_, reason) = unsupported("task:group =~ service:.*");
    assert!(
        reason.contains("task:group in [service:a, service:b]"),
        "{reason}"
    );
    // Also when hidden under `not` and `or`.
    unsupported("attribute:a == 1 or not attribute:ecs.instance-type =~ g2.*");
    let e = member_of(
        "attribute:ecs.instance-type =~ g2.* and attribute:ecs.availability-zone != us-east-1d",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "memberOf expression: cannot express 'attribute:ecs.instance-type =~ g2.*' in Kubernetes: pattern \
         matching ('=~', '!~') has no Kubernetes equivalent, as node and pod selectors compare whole label \
         values; list the values instead, e.g. 'attribute:ecs.instance-type in [value1, value2]'"
    );
}

#[test]
fn subjects_without_kubernetes_equivalent() {
    for (expression, fragment) in [
        ("agentConnected == true", "Ready nodes"),
        ("agentVersion >= 1", "no agentVersion label"),
        ("registeredAt < 2020-01-01", "no registeredAt label"),
        ("runningTasksCount < 3", "distinctInstance"),
        ("ec2InstanceId exists", "ECS allows only"),
        ("ec2InstanceId > 3", "ECS allows only"),
        ("task:group exists", "ECS allows only"),
        ("task:group > 1", "ECS allows only"),
    ] {
        let (term, reason) = unsupported(expression);
        assert_eq!(term, expression);
        assert!(reason.contains(fragment), "{expression}: {reason}");
    }
}

#[test]
fn not_is_pushed_down() {
    assert_eq!(nodes("not attribute:a == x"), one("a", "NotIn", &["x"]));
    assert_eq!(nodes("not attribute:a != x"), one("a", "In", &["x"]));
    assert_eq!(
        nodes("not attribute:a in [x, y]"),
        one("a", "NotIn", &["x", "y"])
    );
    assert_eq!(nodes("!attribute:a !in [x]"), one("a", "In", &["x"]));
    assert_eq!(
        nodes("not attribute:a exists"),
        one("a", "DoesNotExist", &[])
    );
    assert_eq!(nodes("not attribute:a !exists"), one("a", "Exists", &[]));
    assert_eq!(nodes("not not attribute:a == x"), one("a", "In", &["x"]));
    // A negated comparison also holds where the label is absent.
    assert_eq!(
        nodes("not attribute:a > 5"),
        selector(vec![
            vec![req("a", "Lt", &["6"])],
            vec![req("a", "DoesNotExist", &[])]
        ])
    );
    assert_eq!(
        nodes("not attribute:a >= 5"),
        selector(vec![
            vec![req("a", "Lt", &["5"])],
            vec![req("a", "DoesNotExist", &[])]
        ])
    );
    assert_eq!(
        nodes("not attribute:a < 5"),
        selector(vec![
            vec![req("a", "Gt", &["4"])],
            vec![req("a", "DoesNotExist", &[])]
        ])
    );
    assert_eq!(
        nodes("not attribute:a <= 5"),
        selector(vec![
            vec![req("a", "Gt", &["5"])],
            vec![req("a", "DoesNotExist", &[])]
        ])
    );
}

#[test]
fn de_morgan() {
    // not (a and b) = not a or not b: two alternatives.
    assert_eq!(
        nodes("not (attribute:a == 1 and attribute:b == 2)"),
        selector(vec![
            vec![req("a", "NotIn", &["1"])],
            vec![req("b", "NotIn", &["2"])]
        ])
    );
    // not (a or b) = not a and not b: one term.
    assert_eq!(
        nodes("not (attribute:a == 1 or attribute:b == 2)"),
        selector(vec![vec![
            req("a", "NotIn", &["1"]),
            req("b", "NotIn", &["2"])
        ]])
    );
}

#[test]
fn disjunctive_normal_form() {
    assert_eq!(
        nodes("attribute:a == 1 and attribute:b == 2"),
        selector(vec![vec![req("a", "In", &["1"]), req("b", "In", &["2"])]])
    );
    assert_eq!(
        nodes("attribute:a == 1 or attribute:b == 2"),
        selector(vec![
            vec![req("a", "In", &["1"])],
            vec![req("b", "In", &["2"])]
        ])
    );
    // (a or b) and (c or d) = ac or ad or bc or bd.
    assert_eq!(
        nodes("(attribute:a == 1 or attribute:b == 2) and (attribute:c == 3 or attribute:d == 4)"),
        selector(vec![
            vec![req("a", "In", &["1"]), req("c", "In", &["3"])],
            vec![req("a", "In", &["1"]), req("d", "In", &["4"])],
            vec![req("b", "In", &["2"]), req("c", "In", &["3"])],
            vec![req("b", "In", &["2"]), req("d", "In", &["4"])],
        ])
    );
    // Repeated requirements and terms are written once.
    assert_eq!(
        nodes("attribute:a == 1 and attribute:a == 1"),
        one("a", "In", &["1"])
    );
    assert_eq!(
        nodes("attribute:a == 1 or attribute:a == 1"),
        one("a", "In", &["1"])
    );
}

#[test]
fn dnf_size_is_bounded() {
    // 2^5 = 32 terms: allowed; 2^6 = 64: refused.
    let factor = |i: usize| format!("(attribute:a{i} == 1 or attribute:b{i} == 1)");
    let five = (0..5).map(factor).collect::<Vec<_>>().join(" and ");
    let terms = nodes(&five).unwrap().node_selector_terms;
    assert_eq!(terms.len(), MAX_NODE_SELECTOR_TERMS);
    let six = (0..6).map(factor).collect::<Vec<_>>().join(" and ");
    let e = member_of(&six).unwrap_err();
    assert_eq!(e, PlacementError::TooComplex);
    assert!(e.to_string().contains("more than 32"), "{e}");
    // A long chain of `or` is bounded too.
    let ors = (0..40)
        .map(|i| format!("attribute:a == {i}"))
        .collect::<Vec<_>>()
        .join(" or ");
    assert_eq!(member_of(&ors).unwrap_err(), PlacementError::TooComplex);
    // The same alternatives written with `in` are one term.
    let values = (0..40)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    assert!(member_of(&format!("attribute:a in [{values}]")).is_ok());
}

#[test]
fn task_group_affinity_and_anti_affinity() {
    assert_eq!(
        member_of("task:group == service:production").unwrap(),
        PodPlacement {
            pod_affinity_terms: vec![group_term(&["service.production"])],
            ..Default::default()
        }
    );
    let anti = PodPlacement {
        pod_anti_affinity_terms: vec![group_term(&["database"])],
        ..Default::default()
    };
    assert_eq!(member_of("not(task:group == database)").unwrap(), anti);
    assert_eq!(member_of("task:group != database").unwrap(), anti);
    assert_eq!(member_of("not task:group in [database]").unwrap(), anti);
    assert_eq!(
        member_of("task:group in [service:a, family:b]").unwrap(),
        PodPlacement {
            pod_affinity_terms: vec![group_term(&["service.a", "family.b"])],
            ..Default::default()
        }
    );
    assert_eq!(
        member_of("task:group !in [a, b]").unwrap(),
        PodPlacement {
            pod_anti_affinity_terms: vec![group_term(&["a", "b"])],
            ..Default::default()
        }
    );
}

#[test]
fn task_group_joins_node_terms_with_and() {
    assert_eq!(
        member_of(
            "task:group == web and attribute:ecs.availability-zone == us-east-1a and task:group != db"
        )
        .unwrap(),
        PodPlacement {
            node_affinity: one(ZONE, "In", &["us-east-1a"]),
            pod_affinity_terms: vec![group_term(&["web"])],
            pod_anti_affinity_terms: vec![group_term(&["db"])],
            ..Default::default()
        }
    );
    // `not (group or attribute)` becomes a top-level `and` once pushed down.
    assert_eq!(
        member_of("not (task:group == db or attribute:a == 1)").unwrap(),
        PodPlacement {
            node_affinity: one("a", "NotIn", &["1"]),
            pod_anti_affinity_terms: vec![group_term(&["db"])],
            ..Default::default()
        }
    );
    // Several node alternatives alongside a group.
    assert_eq!(
        member_of("(attribute:a == 1 or attribute:b == 2) and task:group == web").unwrap(),
        PodPlacement {
            node_affinity: selector(vec![
                vec![req("a", "In", &["1"])],
                vec![req("b", "In", &["2"])]
            ]),
            pod_affinity_terms: vec![group_term(&["web"])],
            ..Default::default()
        }
    );
}

#[test]
fn task_group_under_or_is_unsupported() {
    for expression in [
        "task:group == a or task:group == b",
        "task:group == a or attribute:x == 1",
        "not (task:group == a and attribute:x == 1)",
        "attribute:y == 2 and (attribute:x == 1 or task:group != a)",
    ] {
        let (_, reason) = unsupported(expression);
        assert!(
            reason.contains("only be joined to the rest of the expression with 'and'"),
            "{reason}"
        );
    }
}

#[test]
fn parse_errors_pass_through() {
    let e = member_of("attribute:ecs.instance-type").unwrap_err();
    assert!(
        matches!(e, PlacementError::Parse(ref p) if p.column == 28),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "memberOf expression: expected an operator after 'attribute:ecs.instance-type', found the end of \
         the expression at column 28"
    );
}
