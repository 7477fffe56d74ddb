//! Settings, health, events, pins.

use std::time::Duration;

use crate::api::service::{DeploymentConfiguration, SchedulingStrategy};
use crate::api::task::HealthStatus;
use crate::service::plan::deployments::{deployment_id, deployment_number};
use crate::service::plan::pins::{node_constraint, pinned_node, pinned_zone, zone_constraint};
use crate::service::plan::{Event, Health, HealthInputs, Percents, resolve_health};

use super::support::at;

#[test]
fn percents_default_as_in_ecs() {
    let replica = Percents::resolve(SchedulingStrategy::Replica, None);
    assert_eq!((replica.minimum_healthy, replica.maximum), (100, 200));
    let daemon = Percents::resolve(SchedulingStrategy::Daemon, None);
    assert_eq!((daemon.minimum_healthy, daemon.maximum), (0, 100));
    let config = DeploymentConfiguration {
        minimum_healthy_percent: Some(50),
        ..DeploymentConfiguration::default()
    };
    let mixed = Percents::resolve(SchedulingStrategy::Replica, Some(&config));
    assert_eq!((mixed.minimum_healthy, mixed.maximum), (50, 200));
}

#[test]
fn bounds_round_as_in_ecs() {
    let p = Percents {
        minimum_healthy: 50,
        maximum: 150,
    };
    // ceil for the minimum, floor for the maximum.
    assert_eq!((p.min_healthy(3), p.max_alive(3)), (2, 4));
    assert_eq!((p.min_healthy(1), p.max_alive(1)), (1, 1));
    assert_eq!((p.min_healthy(0), p.max_alive(0)), (0, 0));
}

#[test]
fn deployment_ids() {
    assert_eq!(deployment_id(3), "ecs-svc/3");
    assert_eq!(deployment_number("ecs-svc/12"), Some(12));
    assert_eq!(deployment_number("other"), None);
}

#[test]
fn health_without_a_check_comes_after_40_seconds_running() {
    let inputs = HealthInputs {
        running_since: Some(at(0)),
        ..HealthInputs::default()
    };
    assert_eq!(
        resolve_health(&inputs, at(10)),
        (Health::Unknown, Some(Duration::from_secs(30)))
    );
    assert_eq!(
        resolve_health(&inputs, at(40)),
        (Health::Healthy { since: at(40) }, None)
    );
    let configured = HealthInputs {
        healthy_after_running: Some(Duration::from_secs(5)),
        ..inputs.clone()
    };
    assert_eq!(
        resolve_health(&configured, at(5)),
        (Health::Healthy { since: at(5) }, None)
    );
    let not_running = HealthInputs::default();
    assert_eq!(
        resolve_health(&not_running, at(100)),
        (Health::Unknown, None)
    );
}

#[test]
fn health_check_failures_are_ignored_during_the_grace_period() {
    let inputs = HealthInputs {
        running_since: Some(at(0)),
        has_health_check: true,
        health_status: Some(HealthStatus::Unhealthy),
        grace_period: Duration::from_secs(60),
        ..HealthInputs::default()
    };
    assert_eq!(
        resolve_health(&inputs, at(20)),
        (Health::Unknown, Some(Duration::from_secs(40)))
    );
    assert_eq!(resolve_health(&inputs, at(60)), (Health::Unhealthy, None));
    let healthy = HealthInputs {
        health_status: Some(HealthStatus::Healthy),
        healthy_since: Some(at(15)),
        ..inputs.clone()
    };
    assert_eq!(
        resolve_health(&healthy, at(20)),
        (Health::Healthy { since: at(15) }, None)
    );
    let huge = HealthInputs {
        grace_period: Duration::from_secs(u64::MAX),
        ..inputs
    };
    assert_eq!(resolve_health(&huge, at(20)).0, Health::Unknown);
}

#[test]
fn event_texts() {
    let started = Event::StartedTasks.message("web", &["a".into(), "b".into()]);
    assert_eq!(
        started,
        "(service web) has started 2 tasks: (task a) (task b)."
    );
    let stopped = Event::StoppedTasks {
        tasks: vec!["a".into()],
    }
    .message("web", &[]);
    assert_eq!(
        stopped,
        "(service web) has stopped 1 running tasks: (task a)."
    );
    assert_eq!(
        Event::SteadyState.message("web", &[]),
        "(service web) has reached a steady state."
    );
    assert_eq!(
        Event::DeploymentCompleted {
            deployment: "ecs-svc/3".into()
        }
        .message("web", &[]),
        "(service web) (deployment ecs-svc/3) deployment completed."
    );
    assert_eq!(
        Event::UnableToStartTasks.message("web", &[]),
        "(service web) is unable to consistently start tasks successfully."
    );
    assert_eq!(
        Event::FailedHealthChecks { task: "a".into() }.message("web", &[]),
        "(service web) (task a) failed container health checks."
    );
    let two = Event::AzBalanced {
        zones: vec![("a".into(), 1), ("b".into(), 1)],
    };
    assert_eq!(
        two.message("web", &[]),
        "service (web) is AZ balanced with 1 tasks in a and 1 tasks in b."
    );
    assert!(Event::UnableToStartTasks.is_warning() && !Event::SteadyState.is_warning());
}

#[test]
fn pins_read_back() {
    let zone = zone_constraint("us-east-1a");
    assert_eq!(
        zone.expression.as_deref(),
        Some("attribute:ecs.availability-zone == us-east-1a")
    );
    let node = node_constraint("node-1");
    assert_eq!(node.expression.as_deref(), Some("ec2InstanceId == node-1"));
    let both = [node, zone];
    assert_eq!(pinned_zone(&both).as_deref(), Some("us-east-1a"));
    assert_eq!(pinned_node(&both).as_deref(), Some("node-1"));
    assert_eq!(pinned_zone(&[]), None);
    // The pins are valid cluster query language.
    for c in &both {
        crate::placement::parse(c.expression.as_deref().unwrap()).unwrap();
    }
}
