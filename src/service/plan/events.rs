//! Service events in ECS words.

use std::fmt::Write;

/// Stop reason for a task replaced because it failed its container health checks.
pub const HEALTH_CHECK_REASON: &str = "Task failed container health checks";
/// Stop reasons that mark a health check failure ("… container health checks", "… ELB health checks in
/// (target-group …)"): such a stop counts for the circuit breaker.
pub const HEALTH_CHECK_REASON_PREFIX: &str = "Task failed ";

/// Stop reason for scale-in, deployment replacement and rebalancing.
pub fn scaling_reason(deployment: &str) -> String {
    format!("Scaling activity initiated by (deployment {deployment})")
}

/// `rolloutStateReason` of a completed deployment.
pub fn completed_reason(deployment: &str) -> String {
    format!("ECS deployment {deployment} completed.")
}

/// `rolloutStateReason` of a deployment the circuit breaker failed.
pub const CIRCUIT_BREAKER_REASON: &str = "ECS deployment circuit breaker: tasks failed to start.";

/// How the `rolloutStateReason` of a rollback deployment in progress starts.
pub const ROLLBACK_REASON_PREFIX: &str = "ECS deployment circuit breaker: rolling back to";

/// How the `rolloutStateReason` of a rollback deployment started by a stop request (ECS
/// StopServiceDeployment ROLLBACK) starts, while in progress.
pub const REQUESTED_ROLLBACK_REASON_PREFIX: &str = "ECS deployment stop requested: rolling back to";

/// `rolloutStateReason` of a rollback deployment.
pub fn rollback_reason(to: &str) -> String {
    format!("{ROLLBACK_REASON_PREFIX} deploymentId {to}.")
}

/// `rolloutStateReason` of a staged deployment rolled back because a lifecycle hook failed.
pub fn hook_failed_reason(deployment: &str, stage: &str, why: &str) -> String {
    format!("ECS deployment {deployment} rolled back: a lifecycle hook failed in {stage}: {why}")
}

/// Something to tell the user, as a service event and a Kubernetes Event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The plan's starts; the message names the tasks, so the driver renders it once it has named
    /// them.
    StartedTasks,
    /// The plan's stops.
    StoppedTasks {
        tasks: Vec<String>,
    },
    /// A task is replaced because it failed its health checks.
    FailedHealthChecks {
        task: String,
    },
    /// Nothing left to do.
    SteadyState,
    DeploymentCompleted {
        deployment: String,
    },
    /// The circuit breaker failed the deployment.
    DeploymentFailed {
        deployment: String,
    },
    /// The circuit breaker started `deployment` to roll back to `to`'s task definition.
    RollingBack {
        deployment: String,
        to: String,
    },
    /// A stop request (StopServiceDeployment ROLLBACK) stopped the deployment.
    DeploymentStopped {
        deployment: String,
    },
    /// Launches are throttled after tasks failed to start.
    UnableToStartTasks,
    /// A task failed to start because it could not be placed or its pod was refused.
    UnableToPlaceTask {
        reason: String,
    },
    /// The scheduler finds no node for a task (`reason`: its message); once per episode.
    NoContainerInstance {
        reason: String,
    },
    /// Tasks per zone (zone order) when rebalancing starts.
    NotAzBalanced {
        zones: Vec<(String, usize)>,
    },
    /// Tasks per zone once balanced again.
    AzBalanced {
        zones: Vec<(String, usize)>,
    },
    /// A BLUE_GREEN, LINEAR or CANARY deployment entered a lifecycle stage.
    LifecycleStage {
        deployment: String,
        stage: &'static str,
    },
    /// Green's share of production traffic grew (CANARY, LINEAR) short of 100 %.
    TrafficShifted {
        deployment: String,
        percent: f64,
    },
    /// A lifecycle hook failed: the deployment rolls back.
    HookFailed {
        deployment: String,
        stage: &'static str,
        reason: String,
    },
}

impl Event {
    /// The ECS message. `started` names the started tasks (only [`Event::StartedTasks`] uses it).
    pub fn message(&self, service: &str, started: &[String]) -> String {
        match self {
            Event::StartedTasks => format!(
                "(service {service}) has started {} tasks: {}.",
                started.len(),
                task_list(started)
            ),
            Event::StoppedTasks { tasks } => format!(
                "(service {service}) has stopped {} running tasks: {}.",
                tasks.len(),
                task_list(tasks)
            ),
            Event::FailedHealthChecks { task } => {
                format!("(service {service}) (task {task}) failed container health checks.")
            }
            Event::SteadyState => format!("(service {service}) has reached a steady state."),
            Event::DeploymentCompleted { deployment } => {
                format!("(service {service}) (deployment {deployment}) deployment completed.")
            }
            Event::DeploymentFailed { deployment } => format!(
                "(service {service}) (deployment {deployment}) deployment failed: tasks failed to start."
            ),
            Event::RollingBack { deployment, to } => format!(
                "(service {service}) (deployment {deployment}) rolling back to deployment {to}."
            ),
            Event::DeploymentStopped { deployment } => format!(
                "(service {service}) (deployment {deployment}) deployment stopped: rollback requested."
            ),
            Event::UnableToStartTasks => {
                format!("(service {service}) is unable to consistently start tasks successfully.")
            }
            Event::UnableToPlaceTask { reason } => {
                format!("(service {service}) was unable to place a task. Reason: {reason}.")
            }
            Event::NoContainerInstance { reason } => format!(
                "(service {service}) was unable to place a task because no container instance met all of its requirements. Reason: {reason}"
            ),
            Event::NotAzBalanced { zones } => format!(
                "service ({service}) is not AZ balanced with {}. AZ Rebalancing in progress.",
                zone_list(zones, false)
            ),
            Event::AzBalanced { zones } => format!(
                "service ({service}) is AZ balanced with {}.",
                zone_list(zones, true)
            ),
            Event::LifecycleStage { deployment, stage } => format!(
                "(service {service}) (deployment {deployment}) entered the {stage} lifecycle stage."
            ),
            Event::TrafficShifted {
                deployment,
                percent,
            } => format!(
                "(service {service}) (deployment {deployment}) shifted {percent:.1}% of production traffic to the new service revision."
            ),
            Event::HookFailed {
                deployment,
                stage,
                reason,
            } => format!(
                "(service {service}) (deployment {deployment}) lifecycle hook failed in {stage}: {reason}"
            ),
        }
    }

    /// A short CamelCase reason for the Kubernetes Event.
    pub fn reason(&self) -> &'static str {
        match self {
            Event::StartedTasks => "TasksStarted",
            Event::StoppedTasks { .. } => "TasksStopped",
            Event::FailedHealthChecks { .. } => "TaskUnhealthy",
            Event::SteadyState => "SteadyState",
            Event::DeploymentCompleted { .. } => "DeploymentCompleted",
            Event::DeploymentFailed { .. } => "DeploymentFailed",
            Event::RollingBack { .. } => "DeploymentRollback",
            Event::DeploymentStopped { .. } => "DeploymentStopped",
            Event::UnableToStartTasks => "TasksFailingToStart",
            Event::UnableToPlaceTask { .. } => "UnableToPlaceTask",
            Event::NoContainerInstance { .. } => "NoContainerInstance",
            Event::NotAzBalanced { .. } => "RebalancingStarted",
            Event::AzBalanced { .. } => "RebalancingCompleted",
            Event::LifecycleStage { .. } => "LifecycleStage",
            Event::TrafficShifted { .. } => "TrafficShifted",
            Event::HookFailed { .. } => "LifecycleHookFailed",
        }
    }

    /// Whether the Kubernetes Event is a Warning (otherwise Normal).
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Event::FailedHealthChecks { .. }
                | Event::DeploymentFailed { .. }
                | Event::RollingBack { .. }
                | Event::UnableToStartTasks
                | Event::UnableToPlaceTask { .. }
                | Event::NoContainerInstance { .. }
                | Event::HookFailed { .. }
        )
    }
}

fn task_list(tasks: &[String]) -> String {
    let mut out = String::new();
    for (i, task) in tasks.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "(task {task})");
    }
    out
}

/// "2 tasks in a, 1 in b, and 0 in c" (ECS repeats "tasks" only in the balanced message).
fn zone_list(zones: &[(String, usize)], repeat_tasks: bool) -> String {
    let parts: Vec<String> = zones
        .iter()
        .enumerate()
        .map(|(i, (zone, n))| {
            if i == 0 || repeat_tasks {
                format!("{n} tasks in {zone}")
            } else {
                format!("{n} in {zone}")
            }
        })
        .collect();
    match parts.as_slice() {
        [] => "0 tasks".to_owned(),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}
