//! Placement constraints and strategies, shared by TaskDefinition, Task and Service.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An ECS placement constraint: `distinctInstance` (no expression) or `memberOf` (an expression in the
/// cluster query language).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("self.type != 'memberOf' || has(self.expression)").message("a memberOf placement constraint needs an expression"),
    validation = Rule::new("self.type != 'distinctInstance' || !has(self.expression)").message("a distinctInstance placement constraint takes no expression"),
)]
pub struct PlacementConstraint {
    /// `distinctInstance` or `memberOf`.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["distinctInstance", "memberOf"]))]
    pub type_: String,
    /// Cluster query language expression, for `memberOf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2000))]
    pub expression: Option<String>,
}

/// An ECS placement strategy: `random`, `spread` (field `instanceId`, `host` or `attribute:<name>`) or
/// `binpack` (field `cpu` or `memory`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStrategy {
    /// `random`, `spread` or `binpack`.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["random", "spread", "binpack"]))]
    pub type_: String,
    /// What to spread or binpack on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub field: Option<String>,
}
