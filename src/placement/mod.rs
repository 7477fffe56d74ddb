//! Placement: the ECS cluster query language and the mapping of ECS placement to Kubernetes scheduling.
//!
//! Pure functions: [`parse`] reads a memberOf expression, [`member_of`] maps one to scheduling rules, and
//! [`pod_placement`] maps a task's or service's constraints and strategies to a [`PodPlacement`], which
//! [`PodPlacement::apply_to`] writes into a `PodSpec`.
//!
//! # Expression syntax
//!
//! The grammar of the ECS cluster query language. `not`/`!` binds tightest, then `and`/`&&`, then `or`/`||`
//! (left-associative); parentheses group. Keywords, word operators (`equals`, `not_in`, …) and subject names are
//! case-insensitive. Literals are bare words (`t2.small`, `us-east-1a`, `service:web`, `g2.*`) or quoted with
//! `'` or `"` when they hold spaces or any of `( ) [ ] , & | ! = < > ~`. At most 2000 characters, as in ECS.
//! Errors name the column: `memberOf expression: expected an operator after 'attribute:ecs.instance-type',
//! found the end of the expression at column 28`.
//!
//! # Constraints
//!
//! Constraints bind: a pod that cannot satisfy them stays `Pending`, as an unplaceable ECS task stays PENDING.
//!
//! | ECS constraint | Kubernetes |
//! |---|---|
//! | `distinctInstance` | required pod anti-affinity to the task's own pods (selector labels), topology `kubernetes.io/hostname`: at most one task per node |
//! | `memberOf` + expression | required node affinity and/or required pod (anti-)affinity, below |
//!
//! Several constraints must all hold: their node affinities are combined by crossing their `nodeSelectorTerms`.
//!
//! ## memberOf subjects
//!
//! | subject | Kubernetes |
//! |---|---|
//! | `attribute:ecs.availability-zone` | node label `topology.kubernetes.io/zone` |
//! | `attribute:ecs.instance-type` | node label `node.kubernetes.io/instance-type` |
//! | `attribute:ecs.os-type` | node label `kubernetes.io/os`; values lowercased (`LINUX` → `linux`) |
//! | `attribute:ecs.cpu-architecture` | node label `kubernetes.io/arch`; values lowercased, `x86_64` → `amd64` |
//! | `attribute:NAME` (any other) | node label `NAME`; an error when `NAME` is not a valid label key |
//! | `ec2InstanceId` | node label `kubernetes.io/hostname` (so the value is a node's hostname label, usually its name) |
//! | `task:group` | pod (anti-)affinity to pods labelled `ecs.operator.dev/group` = [`group_label_value`]`(group)`, topology `kubernetes.io/hostname`, in the pod's namespace |
//! | `agentConnected`, `agentVersion`, `registeredAt`, `runningTasksCount` | error: no Kubernetes equivalent |
//!
//! ## memberOf operators (node labels)
//!
//! | ECS | node selector requirement |
//! |---|---|
//! | `== v`, `in [a, b]` | `In [v]`, `In [a, b]` |
//! | `!= v`, `!in [a, b]` | `NotIn [v]`, `NotIn [a, b]` (also matches nodes without the label) |
//! | `exists`, `!exists` | `Exists`, `DoesNotExist` |
//! | `> n`, `< n` | `Gt n`, `Lt n` (integers only) |
//! | `>= n`, `<= n` | `Gt n-1`, `Lt n+1` (integers only) |
//! | `=~`, `!~` | error: selectors compare whole values; list them with `in [..]` |
//!
//! Values that are not valid label values are an error (no node label could hold them).
//!
//! ## memberOf operators (`task:group`)
//!
//! | ECS | Kubernetes |
//! |---|---|
//! | `task:group == g`, `task:group in [g, h]` | a required pod affinity term, group label `In [g]` / `In [g, h]` |
//! | `task:group != g`, `task:group !in [g, h]`, `not (task:group == g)` | a required pod anti-affinity term, group label `In [..]` |
//!
//! `task:group` terms must be joined to the rest with `and` at the top level (after `not` is pushed down):
//! Kubernetes requires every pod affinity term, so `or` involving `task:group` is an error.
//!
//! ## Boolean structure
//!
//! `not` is pushed down to the terms (De Morgan; each operator replaced by its opposite; `not (x > n)` becomes
//! `x <= n or x !exists`, as a comparison with an absent attribute is false). The node part is put in
//! disjunctive normal form: `nodeSelectorTerms` are ORed, the `matchExpressions` of one term ANDed. More than
//! 32 terms is an error.
//!
//! # Strategies
//!
//! Strategies are best effort, as in ECS. The Kubernetes scheduler weighs all its preferences together, so the
//! order of ECS strategies is not given priority.
//!
//! | ECS strategy | Kubernetes |
//! |---|---|
//! | `spread` on `attribute:ecs.availability-zone` | topology spread constraint: `maxSkew: 1`, `topologyKey: topology.kubernetes.io/zone`, `whenUnsatisfiable: ScheduleAnyway`, `labelSelector` = the task's own pods |
//! | `spread` on `instanceId` or `host` | the same on `kubernetes.io/hostname` |
//! | `spread` on `attribute:NAME` | the same on the node label for `NAME` (subject table above) |
//! | `binpack` on `cpu` or `memory` | preferred pod affinity (weight 100) to the task's own pods on `kubernetes.io/hostname`: packs them together. The closest per-pod approximation; true bin packing is the scheduler's `MostAllocated` scoring, a cluster setting |
//! | `random` | nothing: the scheduler's own choice |
//! | none given | the ECS service default: spread on zone, then on hostname |
//!
//! Spreads on the same node label are merged (the API server rejects duplicates).

mod ast;
mod dnf;
mod error;
mod labels;
mod lexer;
mod member_of;
mod parser;
mod pod_placement;
mod strategy;

#[cfg(test)]
mod tests;

pub use ast::{Argument, Arity, Expr, Operator, Subject, Term};
pub use dnf::MAX_NODE_SELECTOR_TERMS;
pub use error::PlacementError;
pub use labels::{
    ARCH_LABEL, GROUP_LABEL, HOSTNAME_LABEL, INSTANCE_TYPE_LABEL, OS_LABEL, ZONE_LABEL,
    attribute_label, group_label_value, is_valid_label_key, is_valid_label_value, node_label_value,
};
pub use member_of::{member_of, member_of_expr};
pub use parser::{MAX_EXPRESSION_LEN, ParseError, parse};
pub use pod_placement::{PodPlacement, pod_placement};
