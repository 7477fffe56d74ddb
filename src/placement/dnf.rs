//! Negation-free boolean formulas and their disjunctive normal form, bounded in size.
//!
//! Kubernetes required node affinity is exactly a DNF: `nodeSelectorTerms` are ORed, the `matchExpressions` of
//! one term ANDed. Distributing AND over OR can grow exponentially, so every step checks the bound.

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorTerm};

/// Most `nodeSelectorTerms` a placement may produce. Beyond it, an error asks for a simpler expression rather
/// than handing the API server a huge object.
pub const MAX_NODE_SELECTOR_TERMS: usize = 32;

/// A formula whose negations have already been pushed into its atoms.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Formula<A> {
    Atom(A),
    And(Vec<Formula<A>>),
    Or(Vec<Formula<A>>),
}

/// The DNF exceeded [`MAX_NODE_SELECTOR_TERMS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooManyTerms;

/// The formula as an OR of ANDs of atoms.
pub(crate) fn dnf<A: Clone>(formula: &Formula<A>) -> Result<Vec<Vec<A>>, TooManyTerms> {
    match formula {
        Formula::Atom(a) => Ok(vec![vec![a.clone()]]),
        Formula::Or(parts) => {
            let mut out = Vec::new();
            for part in parts {
                out.extend(dnf(part)?);
                if out.len() > MAX_NODE_SELECTOR_TERMS {
                    return Err(TooManyTerms);
                }
            }
            Ok(out)
        }
        Formula::And(parts) => {
            let mut out = vec![Vec::new()];
            for part in parts {
                out = product(&out, &dnf(part)?, |a, b| {
                    a.iter().chain(b).cloned().collect()
                })?;
            }
            Ok(out)
        }
    }
}

/// Every pairing of one item of `left` with one of `right`, refused before it is built when too large.
fn product<T, F: Fn(&T, &T) -> T>(
    left: &[T],
    right: &[T],
    join: F,
) -> Result<Vec<T>, TooManyTerms> {
    if left.len().saturating_mul(right.len()) > MAX_NODE_SELECTOR_TERMS {
        return Err(TooManyTerms);
    }
    Ok(left
        .iter()
        .flat_map(|l| right.iter().map(|r| join(l, r)))
        .collect())
}

/// Removes repeated items, keeping the first of each (the lists are small and their items not `Hash`).
pub(crate) fn dedup<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Both node selectors at once (AND), `None` standing for "any node": the cross product of their terms.
pub(crate) fn and_node_selectors(
    left: Option<NodeSelector>,
    right: Option<NodeSelector>,
) -> Result<Option<NodeSelector>, TooManyTerms> {
    let (left, right) = match (left, right) {
        (None, other) | (other, None) => return Ok(other),
        (Some(l), Some(r)) => (l, r),
    };
    let joined = product(
        &left.node_selector_terms,
        &right.node_selector_terms,
        and_terms,
    )?;
    Ok(Some(NodeSelector {
        node_selector_terms: dedup(joined),
    }))
}

/// One node selector term requiring everything both require.
fn and_terms(left: &NodeSelectorTerm, right: &NodeSelectorTerm) -> NodeSelectorTerm {
    let join = |l: &Option<Vec<_>>, r: &Option<Vec<_>>| {
        let all: Vec<_> = l.iter().chain(r).flatten().cloned().collect();
        (!all.is_empty()).then(|| dedup(all))
    };
    NodeSelectorTerm {
        match_expressions: join(&left.match_expressions, &right.match_expressions),
        match_fields: join(&left.match_fields, &right.match_fields),
    }
}
