//! Traffic shifts of a Service deployment through a Gateway API HTTPRoute: the Kubernetes form of ECS's
//! `productionListenerRule` / `testListenerRule`, whose two target groups become two backendRefs of one
//! route, weighted by the deployment's strategy.
//!
//! [`weights`] is pure (which weights a route should have and the JSON patch that writes them);
//! [`httproute`] reads the route and writes the patch.

pub mod httproute;
pub mod weights;

#[cfg(test)]
mod tests;

pub use httproute::{ShiftOutcome, shift};
pub use weights::{Split, TrafficError, route_name};
