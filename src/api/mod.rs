//! Custom resource types. No I/O here: plain data that mirrors the ECS API JSON.
//!
//! Group `ecs.operator.dev`, version `v1alpha1`: `TaskDefinition`, `Task` and `Service`.

mod words;

pub mod common;
pub mod lifecycle_hook;
pub mod placement;
pub mod service;
pub mod service_state;
pub mod task;
pub mod task_definition;
pub mod task_state;

pub use lifecycle_hook::{
    LifecycleHook, LifecycleHookAction, LifecycleHookDetail, LifecycleHookStatus,
    LifecycleHookTargetType, LifecycleStage,
};
pub use service::{Service, ServiceSpec, ServiceStatus};
pub use task::{Task, TaskSpec, TaskStatus};
pub use task_definition::{TaskDefinition, TaskDefinitionSpec, TaskDefinitionStatus};

/// The API group of every ecs-operator kind.
pub const GROUP: &str = "ecs.operator.dev";

/// CEL rule for a `taskDefinition` reference: `family` or `family:revision`.
pub(crate) const TASK_DEFINITION_REF_RULE: &str =
    "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(:[1-9][0-9]{0,8})?$')";
pub(crate) const TASK_DEFINITION_REF_MESSAGE: &str = "taskDefinition must be 'family' or 'family:revision' naming a TaskDefinition in this namespace (family: lowercase letters, digits and hyphens; revision: a positive number)";
