//! ecs-operator: the Amazon ECS model (TaskDefinition, Task, Service) as Kubernetes custom resources.
//!
//! `api` holds the CRD types only; `placement` and `translate` are pure logic; the controllers do the I/O.

pub mod admin;
pub mod api;
pub mod apply;
pub mod budget;
pub mod conditions;
pub mod context;
pub mod controller;
pub mod crd;
pub mod error;
pub mod fence;
pub mod health;
pub mod import;
pub mod labels;
pub mod leader;
pub mod placement;
pub mod plugin;
pub mod run;
pub mod service;
pub mod task;
pub mod task_definition;
pub mod time;
pub mod traffic;
pub mod translate;
