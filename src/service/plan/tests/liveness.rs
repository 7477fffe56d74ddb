//! Liveness: every deployment ends. Whatever the desired count (changed mid-deployment too), the
//! bounds, the failures to start and the tasks that stop by themselves, a deployment run to a fixed point is COMPLETED or FAILED, never left
//! IN_PROGRESS. Excluded, as in ECS: bounds that leave no step (a deployment cannot start), and a
//! revision whose every task fails without a circuit breaker (it retries forever).

use proptest::prelude::*;

use super::sim::World;
use super::support::*;
use crate::api::service::{
    DeploymentCircuitBreaker, RolloutState, ThresholdConfiguration, ThresholdType,
};
use crate::service::plan::Percents;

/// Whether minimumHealthyPercent or maximumPercent leaves a step at `desired`.
fn can_step(desired: i32, min: i32, max: i32) -> bool {
    let p = Percents {
        minimum_healthy: min,
        maximum: max,
    };
    p.max_alive(desired) > desired || p.min_healthy(desired) < desired
}

fn threshold() -> impl Strategy<Value = Option<ThresholdConfiguration>> {
    prop_oneof![
        Just(None),
        (1..4i32).prop_map(|value| Some(ThresholdConfiguration {
            type_: ThresholdType::Count,
            value
        })),
        (1..=100i32).prop_map(|value| Some(ThresholdConfiguration {
            type_: ThresholdType::UnboundedPercent,
            value
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn every_deployment_completes_or_fails(
        desired in 1..7usize,
        bounds in prop_oneof![Just((100, 200)), Just((50, 100)), Just((0, 100)), Just((50, 150)), Just((100, 150)), Just((100, 125))],
        fail_percent in prop_oneof![Just(0u64), Just(30), Just(100)],
        seed in any::<u64>(),
        (enable, rollback, reset) in any::<(bool, bool, bool)>(),
        threshold in threshold(),
        rescale in proptest::option::of((0..10usize, 1..7i32)),
        kills in proptest::collection::vec(0..12usize, 0..3),
    ) {
        let (min, max) = bounds;
        let enable = enable || fail_percent == 100;
        prop_assume!(can_step(desired as i32, min, max));
        if let Some((_, to)) = rescale {
            prop_assume!(can_step(to, min, max));
        }
        let mut world = World::steady(desired, min, max);
        world.input.circuit_breaker = DeploymentCircuitBreaker {
            enable,
            rollback,
            threshold_configuration: threshold,
            reset_on_healthy_task: Some(reset),
        };
        world.input.task_definition = TD2.into();
        world.input.previously_steady = false;
        world.flaky = vec![(TD2.into(), fail_percent, seed)];
        let mut settled = false;
        for step in 0..400 {
            if let Some((at, to)) = rescale && step == at {
                world.input.desired_count = to;
            }
            for _ in kills.iter().filter(|k| **k == step) {
                world.kill_oldest();
            }
            let plan = world.step().clone();
            let moving = !plan.starts.is_empty() || !plan.stops.is_empty() || plan.retry_after.is_some();
            if !moving && plan.deployments.iter().all(|d| d.rollout_state != Some(RolloutState::InProgress)) {
                settled = true;
                break;
            }
            world.advance();
        }
        prop_assert!(
            settled,
            "still in progress: {:#?}\ntasks: {:?}",
            world.plans.last().map(|p| &p.deployments),
            world
                .input
                .tasks
                .iter()
                .filter(|t| t.state != crate::service::plan::TaskState::Stopped)
                .map(|t| (&t.name, &t.deployment, t.state, t.health, t.desired_stopped))
                .collect::<Vec<_>>()
        );
    }
}
