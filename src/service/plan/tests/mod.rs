//! Tests of the service planner: one file per rule, properties, and a simulation.

mod backoff;
mod breaker;
mod daemon;
mod liveness;
mod old;
mod props;
mod protection;
mod rollout;
mod sim;
mod staged;
mod stop;
mod support;
mod threshold;
mod units;
mod zones;
