//! What a Service should do next: pure ECS scheduling decisions, plain data in, plain data out.
//!
//! The driver gathers an [`Input`] (the service's settings, its `status.deployments`, a
//! [`TaskView`] of each of its tasks, the zones or nodes it may use, `now`), calls [`plan`], then
//! creates the [`Plan::starts`] (naming them itself; pinning [`Start::zone`] / [`Start::node`] with
//! [`pins::zone_constraint`] / [`pins::node_constraint`]), sets `desiredStatus: STOPPED` and the reason
//! on the [`Plan::stops`], writes [`Plan::deployments`] and the counts to status, publishes
//! [`Plan::events`] and requeues after [`Plan::retry_after`]. Planning the same input twice gives the
//! same plan; a converged service plans nothing and returns its deployments unchanged.
//!
//! # Bounds
//!
//! - At most floor(desired × maximumPercent / 100) tasks alive, where alive is PENDING, RUNNING and
//!   also stopping (a stopping task still holds its resources). Stops free room only once the tasks
//!   are STOPPED, in a later pass.
//! - A healthy task is stopped only if at least ceil(desired × minimumHealthyPercent / 100) healthy
//!   tasks remain. Stopping tasks are never healthy. Tasks that are not healthy (pending, unknown,
//!   unhealthy) can always be stopped.
//! - The bounds are the ECS ones, unadjusted: where neither bound leaves a step (desired 1 with
//!   100/100, 50/100 or 100/150), a deployment cannot progress, as in ECS. 100/200 starts new tasks
//!   first; 50/100 stops half of the old first; 0/100 stops all old tasks, then starts.
//!
//! # Decisions where ECS does not say
//!
//! - Old deployments' unhealthy tasks are stopped at once, their healthy tasks as far as the minimum
//!   allows, their other tasks beyond the deployment's target (oldest deployment first, then the
//!   zone with the most tasks, then the newest).
//! - A task of a deployment missing from `status.deployments` counts as an old task.
//! - A deployment FAILED by the circuit breaker without rollback launches nothing more: its failing
//!   tasks (unhealthy, or not started yet) are stopped, its RUNNING tasks and old tasks keep running
//!   (and are not replaced), and only scale-in still happens, until the service asks for another task
//!   definition or forces a new deployment.
//! - A rollback deployment that the circuit breaker fails is not rolled back again: the service
//!   stalls with the FAILED rollback as PRIMARY (launching nothing), and still does not deploy the
//!   definition first rolled back from, until the service asks for another task definition or forces
//!   a new deployment.
//! - A task definition rolled back from is not deployed again by itself: setting the service back to
//!   the rolled-back-to definition ends that, and asking for the failed one again (or a new
//!   `forceNewDeployment` value) deploys it again.
//! - `forceNewDeployment` is compared by value with the one the PRIMARY deployment recorded, so a
//!   restart or a replay never redeploys.
//! - Launch backoff reads the PRIMARY's stopped tasks: 10 s after the first failure to start,
//!   doubling to 27 min, reset once a task reaches RUNNING. The event comes with newly counted
//!   failures only, so it is not repeated by a replay.
//! - An ACTIVE deployment's `desiredCount` is its target ([`old`]): REPLICA, the COMPLETED deployment
//!   being replaced keeps what the PRIMARY still lacks of minimumHealthyPercent healthy tasks (never
//!   more than before, a desiredCount change scaling it in proportion), and its tasks that stop or
//!   fail health checks are replaced with its own revision, before the PRIMARY's starts (ECS,
//!   November 2025); other old deployments target 0. DAEMON, and a deployment FAILED without
//!   rollback: the number of its tasks the plan keeps.
//! - AZ rebalancing runs only when the PRIMARY is COMPLETED and alone; then replacements prefer the
//!   zone with the fewest tasks (a preference: if it has no room they start elsewhere), the task
//!   started to rebalance is pinned to the shortest zone, and surplus tasks leave from the longest
//!   zones only. A rebalancing task the scheduler cannot place ([`TaskView::stuck_rebalancing`])
//!   holds no place in desiredCount until it fails to start, and no other rebalancing starts.
//!   Zones are those with eligible Ready nodes; tasks elsewhere are not counted.
//! - DAEMON: a node's task is stopped before its replacement starts; unhealthy daemon tasks are all
//!   stopped at once (each node is independent); AZ rebalancing does not apply. A node that matches
//!   but cannot take tasks now (cordoned, NotReady, tainted) keeps its PRIMARY task and counts in
//!   `desiredCount` while it does; an older deployment's task there is stopped and not replaced.
//! - "has reached a steady state." is published when the plan is steady and the caller says the
//!   previous one was not ([`Input::previously_steady`], e.g. the `Ready` condition).

mod backoff;
mod breaker;
mod daemon;
pub mod deployments;
pub mod events;
pub mod health;
mod old;
pub mod pins;
mod rollout;
mod settings;
mod staged;
pub mod stop;
mod tasks;
mod work;
mod zones;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::api::service::{
    Deployment, DeploymentCircuitBreaker, DeploymentStatus, RolloutState, SchedulingStrategy,
    ServiceDeploymentStatus,
};
use crate::api::task::StopCode;
use crate::service::strategy::{self, HookVerdict, Stage, Traffic};

pub use backoff::{BACKOFF_BASE, BACKOFF_CAP, delay as backoff_delay};
pub use events::Event;
pub use health::{HealthInputs, resolve_health};
pub use settings::{Percents, failure_threshold};
pub use stop::StopRequest;
pub use tasks::{Health, TaskState, TaskView};

use deployments::is_rollout;
use work::{Ctx, Launch, Work};

/// Everything a planning pass looks at.
#[derive(Clone, Debug)]
pub struct Input {
    /// The service name (for event texts).
    pub service: String,
    pub scheduling: SchedulingStrategy,
    /// REPLICA: the tasks to run. DAEMON: ignored (one per node in [`Input::nodes`]).
    pub desired_count: i32,
    /// See [`Percents::resolve`].
    pub percents: Percents,
    /// The task definition the service asks for now, `family:revision`.
    pub task_definition: String,
    /// The service's `forceNewDeployment` value, serialized (e.g. as JSON); a value different from
    /// the one the PRIMARY deployment recorded starts a new deployment.
    pub force_new_deployment: Option<String>,
    /// `status.deployments` as last written.
    pub deployments: Vec<Deployment>,
    /// Every task of the service, stopped ones included (failures are read from them).
    pub tasks: Vec<TaskView>,
    /// REPLICA: zones that have eligible Ready nodes (for AZ rebalancing).
    pub zones: Vec<String>,
    /// DAEMON: the eligible Ready nodes.
    pub nodes: Vec<String>,
    /// DAEMON: nodes that match the service but take no new task now (cordoned, NotReady, tainted):
    /// a task of the PRIMARY there keeps running (ECS stops daemon tasks last on a draining
    /// instance); none is started there.
    pub unavailable_nodes: Vec<String>,
    pub circuit_breaker: DeploymentCircuitBreaker,
    /// `availabilityZoneRebalancing: ENABLED`.
    pub az_rebalancing: bool,
    /// The first placement strategy spreads across zones (or none is given): each task started
    /// prefers the zone of [`Input::zones`] with the fewest of its deployment's tasks, so a
    /// deployment starts balanced instead of leaving the balance to AZ rebalancing afterwards.
    pub zone_spread: bool,
    /// The previous plan was steady (so "has reached a steady state." is not repeated).
    pub previously_steady: bool,
    /// In whole seconds, as the API server stores times.
    pub now: Timestamp,
    /// A stop request (annotation `ecs.operator.dev/stop-deployment`), handled or not.
    pub stop_request: Option<StopRequest>,
    /// `status.handledStopRequest`: the deployment id of the request already acted on.
    pub handled_stop_request: Option<String>,
    /// BLUE_GREEN, LINEAR, CANARY settings; None: ROLLING.
    pub strategy: Option<strategy::Settings>,
    /// The lifecycle hooks' verdicts for the PRIMARY deployment, by stage (a stage without hooks
    /// is absent).
    pub hooks: BTreeMap<Stage, HookVerdict>,
}

/// A task to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    /// `startedBy`: the deployment id.
    pub deployment: String,
    /// `family:revision`.
    pub task_definition: String,
    /// The zone it should go to: required when [`Start::rebalancing`] ([`pins::zone_constraint`]),
    /// otherwise a preference (placement is best effort in ECS: a full zone must not stall
    /// self-healing).
    pub zone: Option<String>,
    /// An AZ rebalancing move: it is only worth starting in [`Start::zone`].
    pub rebalancing: bool,
    /// Pin to this node ([`pins::node_constraint`]): DAEMON.
    pub node: Option<String>,
}

/// A task to stop: set its `desiredStatus: STOPPED` and `reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stop {
    pub task: String,
    pub reason: String,
}

/// What to do.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub starts: Vec<Start>,
    pub stops: Vec<Stop>,
    /// The new `status.deployments`, PRIMARY first.
    pub deployments: Vec<Deployment>,
    /// In order.
    pub events: Vec<Event>,
    /// Launches wait for the backoff: plan again after this long.
    pub retry_after: Option<Duration>,
    /// `status.desiredCount` (DAEMON: the eligible nodes, and the unavailable ones still running a
    /// PRIMARY task).
    pub desired_count: i32,
    /// `status.runningCount`: tasks RUNNING.
    pub running_count: i32,
    /// `status.pendingCount`: tasks not yet RUNNING.
    pub pending_count: i32,
    /// Nothing to do and every task is a healthy task of the COMPLETED PRIMARY.
    pub steady: bool,
    /// The earliest task scale-in protection expiry among live tasks: plan again then, as what
    /// protection held back may go.
    pub protection_expires_at: Option<Timestamp>,
    /// `status.handledStopRequest` to write.
    pub handled_stop_request: Option<String>,
    /// Why the pending stop request was not acted on (for a condition and a Warning Event).
    pub stop_request_rejected: Option<String>,
    /// Where production and test traffic go; None: every ready task serves (ROLLING).
    pub traffic: Option<Traffic>,
    /// A staged deployment waits for a bake time or a traffic step: plan again then.
    pub wake_after: Option<Duration>,
}

impl Plan {
    /// The PRIMARY deployment.
    pub fn primary(&self) -> &Deployment {
        &self.deployments[0]
    }
}

/// Plans one pass.
pub fn plan(input: &Input) -> Plan {
    let now = input.now;
    let tasks = input.tasks.as_slice();
    let force = input.force_new_deployment.as_deref();
    let mut events = Vec::new();

    let mut deployments = deployments::normalize(input.deployments.clone());
    let mut next = deployments::next_number(&deployments, tasks);
    if deployments::follow_target(&mut deployments, &input.task_definition, force, next, now) {
        next += 1;
        if input.scheduling == SchedulingStrategy::Replica {
            deployments[0].strategy = input.strategy.as_ref().map(|s| s.strategy);
        }
    }
    // A stop request, acted on once.
    let mut handled_stop_request = input.handled_stop_request.clone();
    let mut stop_request_rejected = None;
    if let Some(request) = input
        .stop_request
        .as_ref()
        .filter(|r| input.handled_stop_request.as_ref() != Some(&r.deployment))
    {
        let decision = match stop::decide(request, &deployments) {
            stop::Decision::RollBack if staged::cleaning_up(&deployments[0]) => {
                stop::Decision::Rejected(format!(
                    "deployment {} is in CLEAN_UP: blue is being removed and can no longer take the traffic back",
                    request.deployment
                ))
            }
            decision => decision,
        };
        match decision {
            stop::Decision::RollBack if staged::can_roll_back(&deployments) => {
                let reason = stop::stopped_reason(&deployments[0].id);
                events.push(Event::DeploymentStopped {
                    deployment: deployments[0].id.clone(),
                });
                staged::roll_back(&mut deployments, reason, now, &mut events);
                handled_stop_request = Some(request.deployment.clone());
            }
            stop::Decision::RollBack => {
                let primary = &mut deployments[0];
                primary.rollout_state = Some(RolloutState::Failed);
                primary.rollout_state_reason = Some(stop::stopped_reason(&primary.id));
                events.push(Event::DeploymentStopped {
                    deployment: primary.id.clone(),
                });
                if rollback(
                    &mut deployments,
                    next,
                    force,
                    now,
                    &mut events,
                    stop::rollback_reason,
                ) {
                    next += 1;
                }
                handled_stop_request = Some(request.deployment.clone());
            }
            stop::Decision::AlreadyRollingBack => {
                handled_stop_request = Some(request.deployment.clone());
            }
            stop::Decision::Rejected(why) => stop_request_rejected = Some(why),
        }
    }
    let desired = match input.scheduling {
        SchedulingStrategy::Replica => usize::try_from(input.desired_count).unwrap_or(0),
        SchedulingStrategy::Daemon => daemon::node_count(input, &deployments[0].id),
    };
    let desired_i32 = i32::try_from(desired).unwrap_or(i32::MAX);

    // The circuit breaker watches the PRIMARY until it fails.
    let mut new_start_failures = Vec::new();
    if !is_rollout(&deployments[0], RolloutState::Failed) {
        new_start_failures = breaker::count_failures(
            &mut deployments[0],
            tasks,
            input.circuit_breaker.resets_on_healthy_task(),
        );
        // A task that could not be placed or whose pod was refused: say why, once, as ECS does.
        if let Some(reason) = new_start_failures
            .iter()
            .rev()
            .find(|t| t.stop_code == Some(StopCode::TaskFailedToStart))
            .and_then(|t| t.stopped_reason.clone())
        {
            events.push(Event::UnableToPlaceTask { reason });
        }
        let primary = &mut deployments[0];
        if input.circuit_breaker.enable
            && is_rollout(primary, RolloutState::InProgress)
            && !staged::cleaning_up(primary)
            && primary.failed_tasks
                >= failure_threshold(
                    desired_i32,
                    input.circuit_breaker.threshold_configuration.as_ref(),
                )
        {
            // ECS rolls back once: a rollback that fails too leaves the service FAILED, stalled,
            // still keeping away from the definition it rolled back from.
            let was_rollback = deployments::is_rollback(primary);
            if staged::can_roll_back(&deployments) {
                // Blue still runs: a staged deployment goes back to it, rollback asked or not.
                events.push(Event::DeploymentFailed {
                    deployment: deployments[0].id.clone(),
                });
                staged::roll_back(
                    &mut deployments,
                    events::CIRCUIT_BREAKER_REASON.into(),
                    now,
                    &mut events,
                );
            } else {
                let primary = &mut deployments[0];
                primary.rollout_state = Some(RolloutState::Failed);
                primary.rollout_state_reason = Some(events::CIRCUIT_BREAKER_REASON.into());
                events.push(Event::DeploymentFailed {
                    deployment: primary.id.clone(),
                });
                if input.circuit_breaker.rollback && !was_rollback {
                    rollback(
                        &mut deployments,
                        next,
                        force,
                        now,
                        &mut events,
                        events::rollback_reason,
                    );
                }
            }
        }
    }

    // BLUE_GREEN, LINEAR, CANARY: the stage machine's pass; a failed hook rolls back to blue.
    let mut stage_out = match input.scheduling {
        SchedulingStrategy::Replica => staged::step(&mut deployments, input, desired),
        SchedulingStrategy::Daemon => None,
    };
    if let Some(out) = &stage_out {
        let green = deployments[0].id.clone();
        for e in &out.events {
            events.push(match e {
                strategy::StageEvent::Entered(stage) => Event::LifecycleStage {
                    deployment: green.clone(),
                    stage: stage.as_str(),
                },
                strategy::StageEvent::Shifted(percent) => Event::TrafficShifted {
                    deployment: green.clone(),
                    percent: *percent,
                },
            });
        }
        if let Some(why) = &out.rollback
            && is_rollout(&deployments[0], RolloutState::InProgress)
        {
            events.push(Event::HookFailed {
                deployment: green.clone(),
                stage: out.stage.as_str(),
                reason: why.clone(),
            });
            let reason = events::hook_failed_reason(&green, out.stage.as_str(), why);
            if staged::can_roll_back(&deployments) {
                staged::roll_back(&mut deployments, reason, now, &mut events);
            } else {
                // A service's first deployment has no blue to return to: it fails where it stands
                // and launches nothing more (as the circuit breaker leaves it).
                let primary = &mut deployments[0];
                primary.rollout_state = Some(RolloutState::Failed);
                primary.rollout_state_reason = Some(reason);
                events.push(Event::DeploymentFailed {
                    deployment: primary.id.clone(),
                });
            }
            stage_out = None;
        }
    }

    let primary = deployments[0].clone();
    let wait = if is_rollout(&primary, RolloutState::Failed) {
        None
    } else {
        backoff::launch_wait(&primary.id, tasks, now)
    };
    let launch = match (is_rollout(&primary, RolloutState::Failed), wait) {
        (true, _) => Launch::Frozen,
        (false, Some(_)) => Launch::Throttled,
        (false, None) => Launch::Allowed,
    };
    if launch == Launch::Throttled && !new_start_failures.is_empty() {
        events.push(Event::UnableToStartTasks);
    }
    let ctx = Ctx {
        input,
        desired,
        max_alive: match stage_out {
            Some(_) => 2 * desired,
            None => to_usize(input.percents.max_alive(desired_i32)),
        },
        primary: &primary,
        launch,
    };
    // A staged deployment's bounds are blue's and green's counts, not minimumHealthyPercent.
    let min_healthy = match stage_out {
        Some(_) => 0,
        None => to_usize(input.percents.min_healthy(desired_i32)),
    };
    let mut work = Work::new(tasks, min_healthy, &primary.id).protecting_at(now);
    // A pass that rolls a staged deployment back to blue only moves the traffic: green's tasks stop
    // in the next pass, once the load balancer no longer sends them production traffic.
    let rolled_back_now = deployments.iter().any(|d| {
        d.service_deployment_status == Some(ServiceDeploymentStatus::RollbackInProgress)
            && input
                .deployments
                .iter()
                .find(|o| o.id == d.id)
                .is_none_or(|o| o.service_deployment_status != d.service_deployment_status)
    });
    let outcome = match (input.scheduling, &stage_out) {
        _ if rolled_back_now => work::Outcome {
            primary_healthy: tasks
                .iter()
                .filter(|t| t.deployment == primary.id && t.is_healthy())
                .count(),
            launch_blocked: false,
            old_targets: None,
        },
        (SchedulingStrategy::Replica, Some(out)) => {
            let blue = staged::blue(&deployments, &primary.id).cloned();
            staged::plan_replica(&ctx, &mut work, blue.as_ref(), out)
        }
        (SchedulingStrategy::Replica, None) => rollout::plan_replica(&ctx, &mut work),
        (SchedulingStrategy::Daemon, _) => daemon::plan_daemon(&ctx, &mut work),
    };

    let others_alive = tasks
        .iter()
        .any(|t| t.is_alive() && t.deployment != primary.id);
    let mut completed = None;
    let done = match &stage_out {
        Some(out) => out.completed,
        None => outcome.primary_healthy >= desired && !others_alive,
    };
    if is_rollout(&deployments[0], RolloutState::InProgress) && done {
        let p = &mut deployments[0];
        p.rollout_state = Some(RolloutState::Completed);
        p.rollout_state_reason = Some(events::completed_reason(&p.id));
        completed = Some(Event::DeploymentCompleted {
            deployment: p.id.clone(),
        });
    }

    staged::finish_rollbacks(&mut deployments, tasks);
    let traffic = staged::traffic(input.strategy.is_some(), &deployments, stage_out.as_ref());
    let wake_after = stage_out
        .as_ref()
        .and_then(|o| o.wake_at)
        .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or_default())
        .or(rolled_back_now.then_some(Duration::from_secs(1)));
    let stopped_now: BTreeSet<&str> = work.stopped.iter().copied().collect();
    let deployments = deployments::finish(
        deployments,
        &input.deployments,
        tasks,
        desired_i32,
        &stopped_now,
        outcome.old_targets.as_ref(),
        now,
    );
    let retry_after = wait.filter(|_| outcome.launch_blocked);
    let steady = work.starts.is_empty()
        && work.stops.is_empty()
        && retry_after.is_none()
        && is_rollout(&deployments[0], RolloutState::Completed)
        && tasks
            .iter()
            .filter(|t| t.is_alive())
            .all(|t| t.deployment == primary.id && t.is_healthy())
        && outcome.primary_healthy == desired;

    events.append(&mut work.events);
    if !work.stops.is_empty() {
        events.push(Event::StoppedTasks {
            tasks: work.stops.iter().map(|s| s.task.clone()).collect(),
        });
    }
    if !work.starts.is_empty() {
        events.push(Event::StartedTasks);
    }
    events.extend(work.balanced.take());
    events.extend(completed);
    if steady && !input.previously_steady {
        events.push(Event::SteadyState);
    }

    let count = |state| {
        i32::try_from(tasks.iter().filter(|t| t.state == state).count()).unwrap_or(i32::MAX)
    };
    let protection_expires_at = tasks
        .iter()
        .filter(|t| t.is_live() && t.is_protected(now))
        .filter_map(|t| t.protected_until)
        .min();
    Plan {
        starts: work.starts,
        stops: work.stops,
        deployments,
        events,
        retry_after,
        desired_count: desired_i32,
        running_count: count(TaskState::Running),
        pending_count: count(TaskState::Pending),
        steady,
        protection_expires_at,
        handled_stop_request,
        stop_request_rejected,
        traffic,
        wake_after,
    }
}

/// The failed (or stopped) PRIMARY gives way to a new deployment of the last COMPLETED deployment's
/// task definition, with `reason(target id)` as its rolloutStateReason. Returns whether it started.
fn rollback(
    deployments: &mut Vec<Deployment>,
    next: u64,
    force: Option<&str>,
    now: Timestamp,
    events: &mut Vec<Event>,
    reason: fn(&str) -> String,
) -> bool {
    let failed = &deployments[0];
    let Some(target) = breaker::rollback_target(deployments, &failed.id) else {
        return false;
    };
    let mut rollback = deployments::new_deployment(next, &target.task_definition, force, now);
    rollback.rollout_state_reason = Some(reason(&target.id));
    // Rolling back to the same definition leaves nothing to keep away from.
    rollback.rolled_back_from =
        Some(failed.task_definition.clone()).filter(|td| *td != target.task_definition);
    events.push(Event::RollingBack {
        deployment: rollback.id.clone(),
        to: target.id.clone(),
    });
    deployments[0].status = DeploymentStatus::Active;
    deployments.insert(0, rollback);
    true
}

fn to_usize(n: i32) -> usize {
    usize::try_from(n).unwrap_or(0)
}
