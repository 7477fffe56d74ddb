//! Pinning a task to a zone or a node with a memberOf constraint, and reading the pin back (a task
//! that is not placed yet has no zone or node in its status, but the planner must know where it goes).

use crate::api::placement::PlacementConstraint;

const ZONE_PREFIX: &str = "attribute:ecs.availability-zone == ";
const NODE_PREFIX: &str = "ec2InstanceId == ";

/// `memberOf attribute:ecs.availability-zone == <zone>`.
pub fn zone_constraint(zone: &str) -> PlacementConstraint {
    member_of(format!("{ZONE_PREFIX}{zone}"))
}

/// `memberOf ec2InstanceId == <node>` (the node's `kubernetes.io/hostname` label, usually its name).
pub fn node_constraint(node: &str) -> PlacementConstraint {
    member_of(format!("{NODE_PREFIX}{node}"))
}

/// The zone a [`zone_constraint`] among `constraints` pins to.
pub fn pinned_zone(constraints: &[PlacementConstraint]) -> Option<String> {
    pinned(constraints, ZONE_PREFIX)
}

/// The node a [`node_constraint`] among `constraints` pins to.
pub fn pinned_node(constraints: &[PlacementConstraint]) -> Option<String> {
    pinned(constraints, NODE_PREFIX)
}

fn member_of(expression: String) -> PlacementConstraint {
    PlacementConstraint {
        type_: "memberOf".into(),
        expression: Some(expression),
    }
}

fn pinned(constraints: &[PlacementConstraint], prefix: &str) -> Option<String> {
    constraints
        .iter()
        .filter(|c| c.type_ == "memberOf")
        .filter_map(|c| c.expression.as_deref()?.strip_prefix(prefix))
        .map(str::to_owned)
        .next()
}
