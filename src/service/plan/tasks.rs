//! The planner's view of one task of the service, and what it makes of it.

use k8s_openapi::jiff::Timestamp;

use crate::api::Task;
use crate::api::task::{DesiredStatus, LastStatus, StopCode};

use super::pins;

/// `lastStatus` in four buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskState {
    /// PROVISIONING, PENDING, ACTIVATING (or not reported yet).
    Pending,
    /// RUNNING.
    Running,
    /// DEACTIVATING, STOPPING, DEPROVISIONING.
    Stopping,
    /// STOPPED.
    Stopped,
}

impl TaskState {
    /// The bucket of an ECS `lastStatus`.
    pub fn from_last_status(last_status: Option<LastStatus>) -> Self {
        match last_status {
            Some(LastStatus::Running) => TaskState::Running,
            Some(LastStatus::Stopped) => TaskState::Stopped,
            Some(s) if s.is_stopping() => TaskState::Stopping,
            _ => TaskState::Pending,
        }
    }
}

/// Health as ECS judges it for a service (see [`super::health::resolve_health`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    /// Healthy since then (a failure before that instant is no longer consecutive).
    Healthy { since: Timestamp },
    /// Failing its health checks (after the grace period): to be replaced.
    Unhealthy,
    /// Not yet known: not RUNNING, inside the grace period, or running for less than 40 s without a
    /// health check.
    Unknown,
}

/// One task of the service, as the planner needs it. Only the service's own tasks (group
/// `service:<name>`, owned by the Service) are passed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskView {
    /// The Task object's name.
    pub name: String,
    /// The deployment that started it (`startedBy`, `ecs-svc/N`).
    pub deployment: String,
    pub state: TaskState,
    /// `spec.desiredStatus` is STOPPED: the task is on its way out even if it still reports RUNNING.
    pub desired_stopped: bool,
    pub health: Health,
    /// `availabilityZone`, or before placement the zone the task was pinned to or preferred when
    /// started.
    pub zone: Option<String>,
    /// The node it runs on, or before placement the node it was pinned to (DAEMON).
    pub node: Option<String>,
    pub created_at: Timestamp,
    /// When it reached RUNNING; None if it never did.
    pub started_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    /// Task scale-in protection: the expiry of the annotation `ecs.operator.dev/scale-in-protection`
    /// (protected while `now` is before it).
    pub protected_until: Option<Timestamp>,
    /// Started to rebalance (annotation `ecs.operator.dev/rebalancing-zone`, pinned to that zone) and
    /// the scheduler finds no node for it there (the zone is full): it moves nothing, so it holds no
    /// place in desiredCount.
    pub stuck_rebalancing: bool,
}

/// How a stopped task failed, for the circuit breaker and the launch backoff.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Stopped without ever reaching RUNNING (stage 1).
    FailedToStart,
    /// Reached RUNNING, then failed its health checks or an essential container exited (stage 2).
    FailedAfterStart,
}

impl TaskView {
    /// Reads a Task. `health` comes from [`super::health::resolve_health`]; `created_at` is the Task's
    /// creationTimestamp when its status has none yet.
    pub fn from_task(task: &Task, health: Health, created_at: Timestamp) -> Self {
        let status = task.status.as_ref();
        let constraints = task.spec.placement_constraints.as_deref().unwrap_or(&[]);
        let state = TaskState::from_last_status(status.and_then(|s| s.last_status));
        TaskView {
            name: task.metadata.name.clone().unwrap_or_default(),
            deployment: task.spec.started_by.clone().unwrap_or_default(),
            state,
            desired_stopped: task.spec.desired_status == DesiredStatus::Stopped,
            health,
            zone: status
                .and_then(|s| s.availability_zone.clone())
                .or_else(|| pins::pinned_zone(constraints))
                .or_else(|| {
                    task.metadata
                        .annotations
                        .as_ref()?
                        .get(crate::labels::PREFERRED_ZONE)
                        .cloned()
                }),
            node: status
                .and_then(|s| s.container_instance.clone())
                .or_else(|| pins::pinned_node(constraints)),
            created_at: status
                .and_then(|s| s.created_at.as_ref())
                .map_or(created_at, |t| t.0),
            started_at: status.and_then(|s| s.started_at.as_ref()).map(|t| t.0),
            stopped_at: status.and_then(|s| s.stopped_at.as_ref()).map(|t| t.0),
            stop_code: status.and_then(|s| s.stop_code),
            stopped_reason: status.and_then(|s| s.stopped_reason.clone()),
            protected_until: crate::task::protection::Protection::expiry_of(
                task.metadata.annotations.as_ref(),
            ),
            stuck_rebalancing: state == TaskState::Pending
                && task
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(crate::labels::REBALANCING_ZONE))
                && status
                    .and_then(|s| crate::conditions::get(&s.conditions, "Ready"))
                    .is_some_and(|c| c.reason == crate::task::lifecycle::UNSCHEDULABLE),
        }
    }

    /// Task scale-in protection is on at `now`.
    pub(crate) fn is_protected(&self, now: Timestamp) -> bool {
        self.protected_until.is_some_and(|until| now < until)
    }

    /// Not STOPPED: it holds resources, so it counts toward maximumPercent.
    pub(crate) fn is_alive(&self) -> bool {
        self.state != TaskState::Stopped
    }

    /// Alive and on its way out (stopping, or asked to stop): counts toward maximumPercent, never as
    /// healthy, and is not stopped again.
    pub(crate) fn is_stopping(&self) -> bool {
        self.state == TaskState::Stopping || (self.desired_stopped && self.is_alive())
    }

    /// PENDING or RUNNING and not asked to stop: the tasks the planner can keep or stop.
    pub(crate) fn is_live(&self) -> bool {
        self.is_alive() && !self.is_stopping()
    }

    pub(crate) fn is_healthy(&self) -> bool {
        self.is_live()
            && self.state == TaskState::Running
            && matches!(self.health, Health::Healthy { .. })
    }

    pub(crate) fn is_unhealthy(&self) -> bool {
        self.is_live() && self.state == TaskState::Running && self.health == Health::Unhealthy
    }

    pub(crate) fn healthy_since(&self) -> Option<Timestamp> {
        match self.health {
            Health::Healthy { since } if self.is_healthy() => Some(since),
            _ => None,
        }
    }

    /// Which live task to stop first: unhealthy, then pending, then running of unknown health, then
    /// healthy.
    pub(crate) fn stop_rank(&self) -> u8 {
        if self.is_unhealthy() {
            0
        } else if self.state == TaskState::Pending {
            1
        } else if self.is_healthy() {
            3
        } else {
            2
        }
    }

    /// When it stopped, for ordering failures (createdAt when the stop time is missing).
    pub(crate) fn stop_time(&self) -> Timestamp {
        self.stopped_at.unwrap_or(self.created_at)
    }

    /// Whether this stopped task is a failure of its deployment. Stops by the user, by scale-in, or
    /// because a node went away are not.
    pub(crate) fn failure(&self) -> Option<Failure> {
        if self.state != TaskState::Stopped {
            return None;
        }
        let failed = match self.stop_code {
            Some(StopCode::TaskFailedToStart | StopCode::EssentialContainerExited) => true,
            // The scheduler stops a task for failing its health checks; scale-in stops are not failures.
            Some(StopCode::ServiceSchedulerInitiated) => self
                .stopped_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(super::events::HEALTH_CHECK_REASON_PREFIX)),
            _ => false,
        };
        failed.then_some(if self.started_at.is_some() {
            Failure::FailedAfterStart
        } else {
            Failure::FailedToStart
        })
    }
}
