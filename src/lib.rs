//! ecs-operator: the Amazon ECS model (TaskDefinition, Task, Service) as Kubernetes custom resources.
//!
//! `api` holds the CRD types only; `placement` and `translate` are pure logic; the controllers do the I/O.

pub mod api;
pub mod crd;
pub mod import;
pub mod placement;
pub mod translate;
