//! The effective `availabilityZoneRebalancing` of a service: pure.
//!
//! ECS (CreateService, and "Balancing an Amazon ECS service across Availability Zones"): when the
//! value is not given, it is `ENABLED` if the service is compatible with AZ rebalancing, otherwise
//! `DISABLED`. Compatible: a REPLICA service whose first placement strategy is a spread on
//! `attribute:ecs.availability-zone` or that has no strategy (the default spreads on zones first).
//! Not compatible: DAEMON; binpack or random first, or a spread on anything else; the EXTERNAL launch
//! type; `maximumPercent` 100 (no room to start a task before stopping one); a Classic Load Balancer;
//! a placement constraint on `attribute:ecs.availability-zone`. A value given is honoured as given,
//! except that DAEMON services never rebalance (one task per node has no zone balance to keep).

use crate::api::common::LaunchType;
use crate::api::service::{AvailabilityZoneRebalancing, SchedulingStrategy, ServiceSpec};

const ZONE_ATTRIBUTE: &str = "attribute:ecs.availability-zone";

/// The value the service runs with.
pub fn effective(spec: &ServiceSpec) -> AvailabilityZoneRebalancing {
    if spec.scheduling_strategy == SchedulingStrategy::Daemon {
        return AvailabilityZoneRebalancing::Disabled;
    }
    match spec.availability_zone_rebalancing {
        Some(given) => given,
        None if compatible(spec) => AvailabilityZoneRebalancing::Enabled,
        None => AvailabilityZoneRebalancing::Disabled,
    }
}

/// Whether a REPLICA service's first placement strategy spreads its tasks across availability
/// zones (no strategy: ECS's default spreads on zones first). Such a service's launches prefer the
/// zone with the fewest of its tasks, as ECS places each task it starts.
pub fn spreads_zones_first(spec: &ServiceSpec) -> bool {
    spec.scheduling_strategy != SchedulingStrategy::Daemon
        && spec
            .placement_strategy
            .as_deref()
            .unwrap_or_default()
            .first()
            .is_none_or(|s| {
                s.type_.eq_ignore_ascii_case("spread")
                    && s.field
                        .as_deref()
                        .is_some_and(|f| f.eq_ignore_ascii_case(ZONE_ATTRIBUTE))
            })
}

/// Whether ECS would turn AZ rebalancing on by default for this (REPLICA) service.
fn compatible(spec: &ServiceSpec) -> bool {
    let zone_spread_first = spreads_zones_first(spec);
    let zone_constraint = spec
        .placement_constraints
        .iter()
        .flatten()
        .filter_map(|c| c.expression.as_deref())
        .any(|e| e.to_ascii_lowercase().contains(ZONE_ATTRIBUTE));
    let maximum_100 = spec
        .deployment_configuration
        .as_ref()
        .and_then(|d| d.maximum_percent)
        == Some(100);
    let classic_load_balancer = spec
        .load_balancers
        .iter()
        .flatten()
        .any(|lb| lb.load_balancer_name.is_some());
    zone_spread_first
        && !zone_constraint
        && !maximum_100
        && !classic_load_balancer
        && spec.launch_type != Some(LaunchType::External)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use AvailabilityZoneRebalancing::{Disabled, Enabled};

    fn spec(extra: serde_json::Value) -> ServiceSpec {
        let mut s = json!({"taskDefinition": "web", "desiredCount": 3});
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        serde_json::from_value(s).unwrap()
    }

    fn strategy(first: &str, field: Option<&str>) -> ServiceSpec {
        spec(
            json!({"placementStrategy": [{"type": first, "field": field},
            {"type": "spread", "field": "instanceId"}]}),
        )
    }

    #[test]
    fn unset_is_enabled_for_a_zone_spread_or_no_strategy() {
        assert_eq!(effective(&spec(json!({}))), Enabled);
        assert_eq!(
            effective(&strategy("spread", Some("attribute:ecs.availability-zone"))),
            Enabled
        );
        assert_eq!(
            effective(&strategy("spread", Some("ATTRIBUTE:ECS.AVAILABILITY-ZONE"))),
            Enabled
        );
    }

    #[test]
    fn unset_is_disabled_when_the_first_strategy_is_not_a_zone_spread() {
        assert_eq!(effective(&strategy("binpack", Some("memory"))), Disabled);
        assert_eq!(effective(&strategy("random", None)), Disabled);
        assert_eq!(effective(&strategy("spread", Some("instanceId"))), Disabled);
        // A zone spread second does not make binpack first compatible.
        let s = spec(
            json!({"placementStrategy": [{"type": "binpack", "field": "cpu"},
            {"type": "spread", "field": "attribute:ecs.availability-zone"}]}),
        );
        assert_eq!(effective(&s), Disabled);
    }

    #[test]
    fn unset_is_disabled_for_the_other_incompatible_settings() {
        for extra in [
            json!({"schedulingStrategy": "DAEMON"}),
            json!({"launchType": "EXTERNAL"}),
            json!({"deploymentConfiguration": {"maximumPercent": 100}}),
            json!({"loadBalancers": [{"loadBalancerName": "classic", "containerName": "web",
                "containerPort": 80}]}),
            json!({"placementConstraints": [{"type": "memberOf",
                "expression": "attribute:ecs.availability-zone in [a, b]"}]}),
        ] {
            assert_eq!(effective(&spec(extra.clone())), Disabled, "{extra}");
        }
        assert_eq!(
            effective(&spec(
                json!({"deploymentConfiguration": {"maximumPercent": 150}})
            )),
            Enabled
        );
        assert_eq!(
            effective(&spec(json!({"loadBalancers": [{"containerName": "web",
                "containerPort": 80}]}))),
            Enabled
        );
    }

    #[test]
    fn a_given_value_is_honoured_except_for_daemon() {
        let mut s = strategy("binpack", Some("memory"));
        s.availability_zone_rebalancing = Some(Enabled);
        assert_eq!(effective(&s), Enabled);
        let mut s = spec(json!({}));
        s.availability_zone_rebalancing = Some(Disabled);
        assert_eq!(effective(&s), Disabled);
        let mut s = spec(json!({"schedulingStrategy": "DAEMON"}));
        s.availability_zone_rebalancing = Some(Enabled);
        assert_eq!(effective(&s), Disabled);
    }

    #[test]
    fn launches_spread_across_zones_when_the_first_strategy_does() {
        assert!(spreads_zones_first(&spec(json!({}))));
        assert!(spreads_zones_first(&strategy(
            "spread",
            Some("attribute:ecs.availability-zone")
        )));
        // Even with rebalancing off: ECS still places each task by the strategy.
        let mut s = spec(json!({}));
        s.availability_zone_rebalancing = Some(Disabled);
        assert!(spreads_zones_first(&s));
        assert!(!spreads_zones_first(&strategy("binpack", Some("memory"))));
        assert!(!spreads_zones_first(&strategy(
            "spread",
            Some("instanceId")
        )));
        assert!(!spreads_zones_first(&spec(
            json!({"schedulingStrategy": "DAEMON"})
        )));
    }
}
