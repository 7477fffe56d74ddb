//! memberOf expressions → required node affinity and task-group pod (anti-)affinity.
//!
//! Steps: each term becomes an atom (a node selector requirement, or a set of task groups, possibly negated)
//! while `not` is pushed down to the terms (De Morgan); the top-level AND is split into task-group atoms, which
//! become pod (anti-)affinity terms, and node parts, which become the DNF that node affinity needs.

use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::ast::{Expr, Operator, Subject, Term};
use super::dnf::{Formula, dedup, dnf};
use super::error::PlacementError;
use super::labels::{
    GROUP_LABEL, HOSTNAME_LABEL, attribute_label, group_label_value, is_valid_label_value,
    node_label_value,
};
use super::parser::parse;
use super::pod_placement::PodPlacement;

/// A term once mapped, with any `not` already applied.
#[derive(Clone, Debug, PartialEq)]
enum Atom {
    Node(NodeSelectorRequirement),
    /// On nodes running a task of one of `groups` (`anti`: running none of them).
    Group {
        term: String,
        groups: Vec<String>,
        anti: bool,
    },
}

/// The Kubernetes scheduling rules equivalent to a memberOf expression.
pub fn member_of(expression: &str) -> Result<PodPlacement, PlacementError> {
    member_of_expr(&parse(expression)?)
}

/// The Kubernetes scheduling rules equivalent to a parsed memberOf expression.
pub fn member_of_expr(expr: &Expr) -> Result<PodPlacement, PlacementError> {
    let mut conjuncts = Vec::new();
    flatten_and(translate(expr, false)?, &mut conjuncts);
    let mut placement = PodPlacement::default();
    let mut node_parts = Vec::new();
    for conjunct in conjuncts {
        match conjunct {
            Formula::Atom(Atom::Group { groups, anti, .. }) => {
                let term = group_affinity_term(&groups);
                if anti {
                    placement.pod_anti_affinity_terms.push(term);
                } else {
                    placement.pod_affinity_terms.push(term);
                }
            }
            other => match first_group_term(&other) {
                Some(term) => {
                    return Err(unsupported(
                        term,
                        "task:group can only be joined to the rest of the expression with 'and': Kubernetes \
                         requires every pod affinity term, so it has no 'or' between them or with node labels",
                    ));
                }
                None => node_parts.push(other),
            },
        }
    }
    placement.pod_affinity_terms = dedup(placement.pod_affinity_terms);
    placement.pod_anti_affinity_terms = dedup(placement.pod_anti_affinity_terms);
    if !node_parts.is_empty() {
        let terms = dnf(&Formula::And(node_parts))?
            .into_iter()
            .map(|atoms| NodeSelectorTerm {
                match_expressions: Some(dedup(
                    atoms
                        .into_iter()
                        .filter_map(|a| match a {
                            Atom::Node(r) => Some(r),
                            Atom::Group { .. } => None,
                        })
                        .collect(),
                )),
                match_fields: None,
            })
            .collect();
        placement.node_affinity = Some(NodeSelector {
            node_selector_terms: dedup(terms),
        });
    }
    Ok(placement)
}

/// A required pod affinity term: on a node running a pod of one of `groups`.
fn group_affinity_term(groups: &[String]) -> PodAffinityTerm {
    let values = dedup(groups.iter().map(|g| group_label_value(g)).collect());
    PodAffinityTerm {
        label_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: GROUP_LABEL.to_string(),
                operator: "In".to_string(),
                values: Some(values),
            }]),
            match_labels: None,
        }),
        topology_key: HOSTNAME_LABEL.to_string(),
        ..Default::default()
    }
}

fn flatten_and(formula: Formula<Atom>, out: &mut Vec<Formula<Atom>>) {
    match formula {
        Formula::And(parts) => parts.into_iter().for_each(|p| flatten_and(p, out)),
        other => out.push(other),
    }
}

fn first_group_term(formula: &Formula<Atom>) -> Option<&str> {
    match formula {
        Formula::Atom(Atom::Group { term, .. }) => Some(term),
        Formula::Atom(Atom::Node(_)) => None,
        Formula::And(parts) | Formula::Or(parts) => parts.iter().find_map(first_group_term),
    }
}

/// Maps `expr`, negated when `negate`, pushing the negation down to the terms.
fn translate(expr: &Expr, negate: bool) -> Result<Formula<Atom>, PlacementError> {
    let both = |l: &Expr, r: &Expr| {
        Ok::<_, PlacementError>(vec![translate(l, negate)?, translate(r, negate)?])
    };
    Ok(match (expr, negate) {
        (Expr::Term(t), _) => term(t, negate)?,
        (Expr::Not(inner), _) => translate(inner, !negate)?,
        (Expr::And(l, r), false) | (Expr::Or(l, r), true) => Formula::And(both(l, r)?),
        (Expr::Or(l, r), false) | (Expr::And(l, r), true) => Formula::Or(both(l, r)?),
    })
}

fn unsupported(term: impl ToString, reason: impl Into<String>) -> PlacementError {
    PlacementError::UnsupportedExpression {
        term: term.to_string(),
        reason: reason.into(),
    }
}

fn term(t: &Term, negate: bool) -> Result<Formula<Atom>, PlacementError> {
    use Operator::*;
    if matches!(t.operator, Matches | NotMatches) {
        let hint = match t.subject {
            Subject::TaskGroup => "task:group in [service:a, service:b]".to_string(),
            ref s => format!("{s} in [value1, value2]"),
        };
        return Err(unsupported(
            t,
            format!(
                "pattern matching ('=~', '!~') has no Kubernetes equivalent, as node and pod selectors compare \
                 whole label values; list the values instead, e.g. '{hint}'"
            ),
        ));
    }
    let op = if negate {
        t.operator.negated()
    } else {
        t.operator
    };
    match &t.subject {
        Subject::Attribute(name) => match attribute_label(name) {
            Some(key) => node_term(t, key, op, negate),
            None => Err(unsupported(
                t,
                format!(
                    "'{name}' is not a valid Kubernetes label key, so no node label can stand for it"
                ),
            )),
        },
        Subject::Ec2InstanceId => match t.operator {
            Equals | NotEquals | In | NotIn => node_term(t, HOSTNAME_LABEL, op, negate),
            _ => Err(unsupported(
                t,
                "ECS allows only ==, !=, in, !in, =~ and !~ on ec2InstanceId",
            )),
        },
        Subject::TaskGroup => match op {
            Equals | In | NotEquals | NotIn => Ok(Formula::Atom(Atom::Group {
                term: t.to_string(),
                groups: t.argument.values().to_vec(),
                anti: matches!(op, NotEquals | NotIn),
            })),
            _ => Err(unsupported(
                t,
                "ECS allows only ==, !=, in, !in, =~ and !~ on task:group",
            )),
        },
        Subject::AgentConnected => Err(unsupported(
            t,
            "Kubernetes nodes run no ECS container agent; the scheduler already places pods only on Ready nodes",
        )),
        Subject::AgentVersion | Subject::RegisteredAt => Err(unsupported(
            t,
            format!(
                "Kubernetes nodes have no {} label; label the nodes yourself and use 'attribute:<label>'",
                t.subject
            ),
        )),
        Subject::RunningTasksCount => Err(unsupported(
            t,
            "Kubernetes node selectors cannot count pods; use the distinctInstance constraint or a spread \
             strategy to limit tasks per node",
        )),
    }
}

/// A node label requirement on `key` with operator `op` (already negated when `negate`).
fn node_term(
    t: &Term,
    key: &str,
    op: Operator,
    negate: bool,
) -> Result<Formula<Atom>, PlacementError> {
    use Operator::*;
    let requirement = |operator: &str, values: Option<Vec<String>>| {
        Formula::Atom(Atom::Node(NodeSelectorRequirement {
            key: key.to_string(),
            operator: operator.to_string(),
            values,
        }))
    };
    let compared = |operator: &str, shift: i64| -> Result<Formula<Atom>, PlacementError> {
        let raw = t
            .argument
            .values()
            .first()
            .map(String::as_str)
            .unwrap_or_default();
        let n = raw.trim().parse::<i64>().map_err(|_| {
            unsupported(
                t,
                format!(
                    "'{}' compares integers in Kubernetes (node affinity Gt/Lt) and '{raw}' is not an integer",
                    t.operator
                ),
            )
        })?;
        let n = n
            .checked_add(shift)
            .ok_or_else(|| unsupported(t, format!("'{raw}' is out of range")))?;
        let cmp = requirement(operator, Some(vec![n.to_string()]));
        // `not (x > 5)` also holds where x is absent, which Gt/Lt never match.
        Ok(if negate {
            Formula::Or(vec![cmp, requirement("DoesNotExist", None)])
        } else {
            cmp
        })
    };
    match op {
        Exists => Ok(requirement("Exists", None)),
        NotExists => Ok(requirement("DoesNotExist", None)),
        GreaterThan => compared("Gt", 0),
        GreaterThanEqual => compared("Gt", -1),
        LessThan => compared("Lt", 0),
        LessThanEqual => compared("Lt", 1),
        Equals | NotEquals | In | NotIn => {
            let values: Vec<String> = t
                .argument
                .values()
                .iter()
                .map(|v| node_label_value(key, v))
                .collect();
            if let Some(bad) = values.iter().find(|v| !is_valid_label_value(v)) {
                return Err(unsupported(
                    t,
                    format!(
                        "'{bad}' is not a valid Kubernetes label value, so no node label can hold it"
                    ),
                ));
            }
            let operator = if matches!(op, Equals | In) {
                "In"
            } else {
                "NotIn"
            };
            Ok(requirement(operator, Some(dedup(values))))
        }
        Matches | NotMatches => Err(unsupported(
            t,
            "pattern matching has no Kubernetes equivalent",
        )),
    }
}
