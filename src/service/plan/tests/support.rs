//! Small builders for hand-made inputs.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::service::{
    Deployment, DeploymentCircuitBreaker, DeploymentStatus, RolloutState, SchedulingStrategy,
};
use crate::api::task::StopCode;
use crate::service::plan::deployments::deployment_id;
use crate::service::plan::events::scaling_reason;
use crate::service::plan::{Health, Input, Percents, Plan, TaskState, TaskView, plan};

/// `secs` seconds after a fixed instant.
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + secs).unwrap()
}

pub const TD1: &str = "web:1";
pub const TD2: &str = "web:2";

pub fn input(desired: i32, min: i32, max: i32) -> Input {
    Input {
        service: "web".into(),
        scheduling: SchedulingStrategy::Replica,
        desired_count: desired,
        percents: Percents {
            minimum_healthy: min,
            maximum: max,
        },
        task_definition: TD1.into(),
        force_new_deployment: None,
        deployments: Vec::new(),
        tasks: Vec::new(),
        zones: vec!["a".into(), "b".into(), "c".into()],
        nodes: Vec::new(),
        unavailable_nodes: Vec::new(),
        circuit_breaker: DeploymentCircuitBreaker::default(),
        az_rebalancing: false,
        zone_spread: false,
        previously_steady: false,
        now: at(1000),
        stop_request: None,
        handled_stop_request: None,
        strategy: None,
        hooks: Default::default(),
    }
}

pub fn deployment(n: u64, td: &str, status: DeploymentStatus, rollout: RolloutState) -> Deployment {
    Deployment {
        id: deployment_id(n),
        status,
        task_definition: td.into(),
        rollout_state: Some(rollout),
        created_at: Some(Time(at(0))),
        updated_at: Some(Time(at(0))),
        ..Deployment::default()
    }
}

pub fn primary(n: u64, td: &str, rollout: RolloutState) -> Deployment {
    deployment(n, td, DeploymentStatus::Primary, rollout)
}

pub fn active(n: u64, td: &str) -> Deployment {
    deployment(n, td, DeploymentStatus::Active, RolloutState::Completed)
}

pub fn in_progress(n: u64, td: &str) -> Deployment {
    primary(n, td, RolloutState::InProgress)
}

pub fn completed(n: u64, td: &str) -> Deployment {
    primary(n, td, RolloutState::Completed)
}

fn task(name: &str, deployment: u64) -> TaskView {
    TaskView {
        name: name.into(),
        deployment: deployment_id(deployment),
        state: TaskState::Pending,
        desired_stopped: false,
        health: Health::Unknown,
        zone: None,
        node: None,
        created_at: at(0),
        started_at: None,
        stopped_at: None,
        stop_code: None,
        stopped_reason: None,
        protected_until: None,
        stuck_rebalancing: false,
    }
}

pub fn healthy(name: &str, deployment: u64, zone: &str) -> TaskView {
    TaskView {
        state: TaskState::Running,
        health: Health::Healthy { since: at(50) },
        zone: Some(zone.into()),
        started_at: Some(at(10)),
        ..task(name, deployment)
    }
}

pub fn unhealthy(name: &str, deployment: u64, zone: &str) -> TaskView {
    TaskView {
        health: Health::Unhealthy,
        ..healthy(name, deployment, zone)
    }
}

pub fn pending(name: &str, deployment: u64) -> TaskView {
    task(name, deployment)
}

pub fn stopping(name: &str, deployment: u64, zone: &str) -> TaskView {
    TaskView {
        desired_stopped: true,
        ..healthy(name, deployment, zone)
    }
}

/// A task that stopped at `stopped` without reaching RUNNING.
pub fn failed_to_start(name: &str, deployment: u64, stopped: i64) -> TaskView {
    TaskView {
        state: TaskState::Stopped,
        stopped_at: Some(at(stopped)),
        stop_code: Some(StopCode::TaskFailedToStart),
        stopped_reason: Some("CannotPullContainerError: not found".into()),
        ..task(name, deployment)
    }
}

/// A task that ran and was stopped for failing its health checks at `stopped`.
pub fn failed_health(name: &str, deployment: u64, stopped: i64) -> TaskView {
    TaskView {
        state: TaskState::Stopped,
        started_at: Some(at(stopped - 60)),
        stopped_at: Some(at(stopped)),
        stop_code: Some(StopCode::ServiceSchedulerInitiated),
        stopped_reason: Some("Task failed container health checks".into()),
        ..task(name, deployment)
    }
}

/// A task stopped by scale-in at `stopped`.
pub fn scaled_in(name: &str, deployment: u64, stopped: i64) -> TaskView {
    TaskView {
        state: TaskState::Stopped,
        started_at: Some(at(stopped - 60)),
        stopped_at: Some(at(stopped)),
        stop_code: Some(StopCode::ServiceSchedulerInitiated),
        stopped_reason: Some(scaling_reason(&deployment_id(deployment))),
        ..task(name, deployment)
    }
}

pub fn stopped_names(plan: &Plan) -> Vec<&str> {
    let mut names: Vec<&str> = plan.stops.iter().map(|s| s.task.as_str()).collect();
    names.sort_unstable();
    names
}

/// The plan's input for the next pass when the world did not change: its status written back.
pub fn replan(input: &Input, plan: &Plan) -> Input {
    Input {
        deployments: plan.deployments.clone(),
        previously_steady: plan.steady,
        handled_stop_request: plan.handled_stop_request.clone(),
        ..input.clone()
    }
}

/// Plans, and checks that planning again with the plan's own status changes nothing more.
pub fn plan_checked(input: &Input) -> Plan {
    let first = plan(input);
    assert_eq!(first, plan(input), "planning is deterministic");
    first
}
