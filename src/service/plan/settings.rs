//! Deployment bounds: minimumHealthyPercent / maximumPercent with the ECS defaults, and the circuit
//! breaker threshold.

use crate::api::service::{
    DeploymentConfiguration, SchedulingStrategy, ThresholdConfiguration, ThresholdType,
};

/// `minimumHealthyPercent` and `maximumPercent`, defaults resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percents {
    pub minimum_healthy: i32,
    pub maximum: i32,
}

impl Percents {
    /// The service's percents, with the ECS defaults: REPLICA 100/200, DAEMON 0/100.
    pub fn resolve(strategy: SchedulingStrategy, config: Option<&DeploymentConfiguration>) -> Self {
        let (minimum_healthy, maximum) = match strategy {
            SchedulingStrategy::Replica => (100, 200),
            SchedulingStrategy::Daemon => (0, 100),
        };
        Percents {
            minimum_healthy: config
                .and_then(|c| c.minimum_healthy_percent)
                .unwrap_or(minimum_healthy),
            maximum: config.and_then(|c| c.maximum_percent).unwrap_or(maximum),
        }
    }

    /// Healthy tasks never go below ceil(desired × minimumHealthyPercent / 100).
    pub fn min_healthy(&self, desired: i32) -> i32 {
        let product = i64::from(desired.max(0)) * i64::from(self.minimum_healthy.max(0));
        clamp_i32((product + 99) / 100)
    }

    /// RUNNING + PENDING tasks never exceed floor(desired × maximumPercent / 100).
    pub fn max_alive(&self, desired: i32) -> i32 {
        let product = i64::from(desired.max(0)) * i64::from(self.maximum.max(0));
        clamp_i32(product / 100)
    }
}

fn clamp_i32(n: i64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Failed tasks that trip the circuit breaker, by `thresholdConfiguration` (ECS default
/// `BOUNDED_PERCENT` 50):
/// - `BOUNDED_PERCENT`: ceil(value % × desiredCount), within [3, 200];
/// - `UNBOUNDED_PERCENT`: ceil(value % × desiredCount), at least 1;
/// - `COUNT`: value, at least 1.
pub fn failure_threshold(desired: i32, config: Option<&ThresholdConfiguration>) -> i32 {
    let config = config.cloned().unwrap_or_default();
    let value = i64::from(config.value.max(1));
    let percent = || clamp_i32((i64::from(desired.max(0)) * value + 99) / 100);
    match config.type_ {
        ThresholdType::BoundedPercent => percent().clamp(3, 200),
        ThresholdType::UnboundedPercent => percent().max(1),
        ThresholdType::Count => clamp_i32(value),
    }
}
