//! Placement constraints and strategies, shared by TaskDefinition, Task and Service.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An ECS placement constraint: `distinctInstance` (no expression) or `memberOf` (an expression in the
/// cluster query language).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementConstraint {
    /// `distinctInstance` or `memberOf`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Cluster query language expression, for `memberOf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
}

/// An ECS placement strategy: `random`, `spread` (field `instanceId`, `host` or `attribute:<name>`) or
/// `binpack` (field `cpu` or `memory`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStrategy {
    /// `random`, `spread` or `binpack`.
    #[serde(rename = "type")]
    pub type_: String,
    /// What to spread or binpack on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
