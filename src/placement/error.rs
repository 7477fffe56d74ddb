//! Why an ECS placement cannot be turned into Kubernetes scheduling.

use super::dnf::MAX_NODE_SELECTOR_TERMS;
use super::parser::ParseError;

/// An ECS placement constraint or strategy that is malformed or has no Kubernetes equivalent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// The memberOf expression does not follow the cluster query language grammar.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A term of a memberOf expression is valid ECS but cannot be expressed in Kubernetes scheduling.
    #[error("memberOf expression: cannot express '{term}' in Kubernetes: {reason}")]
    UnsupportedExpression {
        /// The term, as written canonically.
        term: String,
        /// Why, and what to write instead.
        reason: String,
    },
    /// The memberOf expressions expand to more node selector terms than allowed.
    #[error(
        "memberOf expression: too complex: its 'or' alternatives expand to more than {MAX_NODE_SELECTOR_TERMS} \
         Kubernetes node selector terms; simplify it, e.g. merge '==' alternatives into one 'in [..]'"
    )]
    TooComplex,
    /// A placement constraint is malformed (unknown type, missing or extra expression).
    #[error("placement constraint: {0}")]
    InvalidConstraint(String),
    /// A placement strategy is malformed (unknown type or field).
    #[error("placement strategy: {0}")]
    InvalidStrategy(String),
    /// A constraint or strategy about "this service's tasks" was given no labels selecting those tasks' pods.
    #[error("placement: {0} needs labels selecting the tasks' pods, and none were given")]
    EmptySelector(String),
}

impl From<super::dnf::TooManyTerms> for PlacementError {
    fn from(_: super::dnf::TooManyTerms) -> Self {
        PlacementError::TooComplex
    }
}
