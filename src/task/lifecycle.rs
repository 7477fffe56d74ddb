//! The ECS task lifecycle, derived from the task's pod: pure.
//!
//! | lastStatus     | when                                                                        |
//! |----------------|-----------------------------------------------------------------------------|
//! | PROVISIONING   | the Task exists, its pod does not yet (resolving the task definition)       |
//! | PENDING        | the pod exists but is not scheduled to a node                               |
//! | ACTIVATING     | scheduled; images pulling, init containers and sidecars starting            |
//! | RUNNING        | every regular container is running                                          |
//! | DEACTIVATING   | the task must stop (a stop cause is recorded); the pod is about to be deleted |
//! | STOPPING       | the pod is terminating: SIGTERM, then SIGKILL after the grace (stopTimeout) |
//! | STOPPED        | the pod is gone, or all its containers have exited                          |
//!
//! DEPROVISIONING has no Kubernetes counterpart (the pod's network goes with the pod) and is skipped.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ContainerStatus as PodContainerStatus, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

use super::build::ContainerMeta;
use crate::api::Task;
use crate::api::task::{
    ContainerLastStatus, ContainerStatus, DesiredStatus, HealthStatus, LastStatus, NetworkBinding,
    StopCode, TaskStatus,
};
use crate::conditions;

/// Waiting reasons after which a container will not start without a change: the task fails to start.
const FATAL_WAITING: &[(&str, &str)] = &[
    ("ImagePullBackOff", "CannotPullContainerError"),
    ("ErrImageNeverPull", "CannotPullContainerError"),
    ("InvalidImageName", "CannotPullContainerError"),
    ("CreateContainerConfigError", "ResourceInitializationError"),
    ("CreateContainerError", "CannotCreateContainerError"),
    ("RunContainerError", "CannotStartContainerError"),
];

/// Everything the lifecycle looks at.
pub struct Observed<'a> {
    pub task: &'a Task,
    /// The task's pod; None once it is gone.
    pub pod: Option<&'a Pod>,
    pub containers: &'a [ContainerMeta],
    /// Zone of the pod's node.
    pub zone: Option<String>,
    pub now: Timestamp,
    /// How long a task may take to reach RUNNING before it fails to start.
    pub start_timeout: Duration,
    /// The task belongs to a Service (its stops are the scheduler's).
    pub owned_by_service: bool,
    /// The node the task ran on is gone, NotReady or tainted NoExecute: a pod that vanished from it was
    /// evicted, even if its deletion was too quick to observe.
    pub node_unavailable: bool,
}

/// What the lifecycle decided.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub status: TaskStatus,
    /// Delete the pod now: the task must stop and its containers still run.
    pub stop_pod: bool,
    /// Look again after this long even if nothing changes (a timeout or health deadline is pending).
    pub recheck_after: Option<Duration>,
}

/// The state of one container in the pod.
enum State<'a> {
    Absent,
    Waiting(&'a str, &'a str),
    Running {
        started: Option<Timestamp>,
        ready: bool,
        /// Its startup probe passed (or it has none).
        passed_startup: bool,
        restarts: i32,
    },
    Terminated {
        exit: i32,
        reason: &'a str,
        message: &'a str,
        started: Option<Timestamp>,
        finished: Option<Timestamp>,
    },
}

/// One exit of a container: its code and how long it had run, when known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exit {
    pub code: i32,
    pub ran: Option<Duration>,
}

fn ran(started: Option<Timestamp>, finished: Option<Timestamp>) -> Option<Duration> {
    let (s, f) = (started?, finished?);
    Duration::try_from(f.duration_since(s)).ok()
}

/// The exit before the container's latest (re)start, from its last state.
fn last_exit(cs: Option<&PodContainerStatus>) -> Option<Exit> {
    let t = cs?.last_state.as_ref()?.terminated.as_ref()?;
    Some(Exit {
        code: t.exit_code,
        ran: ran(
            t.started_at.as_ref().map(|t| t.0),
            t.finished_at.as_ref().map(|t| t.0),
        ),
    })
}

/// Whether ECS restarts the container in place after `exit` (ECS restartPolicy): the policy is on, the
/// code is not ignored, and the container ran at least restartAttemptPeriod seconds. An exit whose run
/// time is unknown is given the benefit of the doubt.
pub(crate) fn ecs_restarts(meta: &ContainerMeta, exit: Exit) -> bool {
    let period = meta
        .restart_attempt_period
        .unwrap_or(i64::from(crate::translate::DEFAULT_RESTART_ATTEMPT_PERIOD));
    meta.restart_in_place
        && !meta.ignored_exit_codes.contains(&exit.code)
        && exit
            .ran
            .is_none_or(|r| r >= Duration::from_secs(u64::try_from(period).unwrap_or(0)))
}

fn state_of<'a>(pod: &'a Pod, meta: &ContainerMeta) -> (State<'a>, Option<&'a PodContainerStatus>) {
    let status = pod.status.as_ref();
    let found = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .chain(status.and_then(|s| s.init_container_statuses.as_ref()))
        .flatten()
        .find(|c| c.name == meta.k8s_name);
    let Some(cs) = found else {
        return (State::Absent, None);
    };
    let st = cs.state.as_ref();
    let state = if let Some(t) = st.and_then(|s| s.terminated.as_ref()) {
        State::Terminated {
            exit: t.exit_code,
            reason: t.reason.as_deref().unwrap_or(""),
            message: t.message.as_deref().unwrap_or(""),
            started: t.started_at.as_ref().map(|t| t.0),
            finished: t.finished_at.as_ref().map(|t| t.0),
        }
    } else if let Some(r) = st.and_then(|s| s.running.as_ref()) {
        State::Running {
            started: r.started_at.as_ref().map(|t| t.0),
            ready: cs.ready,
            passed_startup: cs.started != Some(false),
            restarts: cs.restart_count,
        }
    } else if let Some(w) = st.and_then(|s| s.waiting.as_ref()) {
        State::Waiting(
            w.reason.as_deref().unwrap_or(""),
            w.message.as_deref().unwrap_or(""),
        )
    } else {
        State::Absent
    };
    (state, Some(cs))
}

/// Derives the task's status from its pod, and whether the pod must be stopped.
pub fn observe(o: &Observed<'_>) -> Outcome {
    let prev = o.task.status.clone().unwrap_or_default();
    let mut s = prev.clone();
    let mut recheck: Option<Duration> = None;
    let mut wake = |at: Timestamp, now: Timestamp| {
        let d =
            Duration::try_from(at.duration_since(now)).unwrap_or_default() + Duration::from_secs(1);
        recheck = Some(recheck.map_or(d, |r: Duration| r.min(d)));
    };

    s.observed_generation = o.task.metadata.generation;
    s.desired_status = Some(match o.task.spec.desired_status {
        DesiredStatus::Running if prev.stop_code.is_none() => DesiredStatus::Running,
        _ => DesiredStatus::Stopped,
    });
    s.created_at = o.task.metadata.creation_timestamp.clone();
    s.group = o.task.spec.group.clone().or(prev.group.clone());
    s.started_by = o.task.spec.started_by.clone();

    let Some(pod) = o.pod else {
        return gone(o, s);
    };
    s.pod_name = Some(pod.name_any());
    // The pod records what it was built from; it outlives any cached view of the Task.
    if let Some(td) = pod.annotations().get(crate::labels::TASK_DEFINITION_REF) {
        s.task_definition = Some(td.clone());
    }
    let node = pod.spec.as_ref().and_then(|p| p.node_name.clone());
    s.container_instance = node.clone().or(prev.container_instance.clone());
    s.availability_zone = o.zone.clone().or(prev.availability_zone.clone());
    let phase = pod
        .status
        .as_ref()
        .and_then(|p| p.phase.as_deref())
        .unwrap_or("Pending");
    // Finished means no container runs any more: judged from the containers, because the phase alone
    // can say Failed while other containers still run (fault injection does this).
    let any_running = o
        .containers
        .iter()
        .any(|m| matches!(state_of(pod, m).0, State::Running { .. }));
    let terminal = matches!(phase, "Succeeded" | "Failed") && !any_running;
    let created = o
        .task
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(o.now, |t| t.0);

    // Containers, in task definition order.
    let mut views = Vec::new();
    let mut all_regular_running = true;
    let mut stop_cause: Option<(StopCode, String)> = None;
    let mut essential_exited = false;
    for meta in o.containers {
        let (state, cs) = state_of(pod, meta);
        let was = prev.containers.iter().find(|c| c.name == meta.name);
        let mut view = ContainerStatus {
            name: meta.name.clone(),
            image: pod_image(pod, &meta.k8s_name),
            image_digest: cs.map(|c| c.image_id.clone()).filter(|d| !d.is_empty()),
            runtime_id: cs
                .and_then(|c| c.container_id.clone())
                .filter(|d| !d.is_empty()),
            essential: Some(meta.essential),
            network_bindings: bindings(pod, &meta.k8s_name),
            ..Default::default()
        };
        match &state {
            State::Absent => view.last_status = Some(ContainerLastStatus::Pending),
            State::Waiting(reason, message) => {
                view.last_status = Some(ContainerLastStatus::Pending);
                if let Some((_, ecs)) = FATAL_WAITING.iter().find(|(k, _)| k == reason) {
                    let text = format!("{ecs}: {message}");
                    view.reason = Some(text.clone());
                    stop_cause.get_or_insert((
                        StopCode::TaskFailedToStart,
                        format!("{}: {text}", meta.name),
                    ));
                }
            }
            State::Running { .. } => view.last_status = Some(ContainerLastStatus::Running),
            State::Terminated {
                exit,
                reason,
                message,
                ..
            } => {
                view.last_status = Some(ContainerLastStatus::Stopped);
                view.exit_code = Some(*exit);
                view.reason = container_reason(reason, message);
            }
        }
        // Health, from readiness (the translated health check) — never from restarts.
        view.health_status = Some(match (&state, meta.unhealthy_after) {
            (_, None) => HealthStatus::Unknown,
            (State::Running { ready: true, .. }, _) => HealthStatus::Healthy,
            (State::Running { started, .. }, Some(limit)) => {
                // Once judged (healthy, then failing; or failing past its deadline), a container not
                // ready stays UNHEALTHY: the deadline only holds back a verdict not yet given. (A
                // container found UNHEALTHY inside its start window went back to UNKNOWN on the
                // next look, and a task stopped for its health could end STOPPED with UNKNOWN.)
                let judged = matches!(
                    was.and_then(|w| w.health_status),
                    Some(HealthStatus::Healthy | HealthStatus::Unhealthy)
                );
                let deadline = started.map(|t| t + SignedDuration::from_secs(limit));
                match deadline {
                    _ if judged => HealthStatus::Unhealthy,
                    Some(d) if d <= o.now => HealthStatus::Unhealthy,
                    Some(d) => {
                        wake(d, o.now);
                        HealthStatus::Unknown
                    }
                    None => HealthStatus::Unknown,
                }
            }
            _ => was
                .and_then(|w| w.health_status)
                .unwrap_or(HealthStatus::Unknown),
        });
        match (meta.role.as_str(), &state) {
            ("init", State::Terminated { exit, .. }) if *exit != 0 => {
                stop_cause.get_or_insert((
                    StopCode::TaskFailedToStart,
                    format!(
                        "Container {} exited with code {exit} before the containers that depend on it could start",
                        meta.name
                    ),
                ));
            }
            ("init", _) => {}
            // The kubelet restarted the container (a native sidecar always is; a regular one when its
            // restartPolicy says so): for ECS it exited, unless ECS too would have restarted it.
            (_, State::Running { .. } | State::Waiting(..))
                if meta.essential
                    && cs.is_some_and(|c| c.restart_count > 0)
                    && last_exit(cs).is_some_and(|e| !ecs_restarts(meta, e)) =>
            {
                essential_exited = true;
            }
            ("sidecar", State::Running { restarts, .. })
                if *restarts > 0 && meta.essential && !meta.restart_in_place =>
            {
                essential_exited = true;
            }
            // An exit the kubelet is about to restart, as ECS would: the container goes on.
            (
                _,
                State::Terminated {
                    exit,
                    started,
                    finished,
                    ..
                },
            ) if ecs_restarts(
                meta,
                Exit {
                    code: *exit,
                    ran: ran(*started, *finished),
                },
            ) => {}
            (_, State::Terminated { .. }) if meta.essential => essential_exited = true,
            (_, State::Terminated { .. }) => {}
            ("regular", _) => all_regular_running &= matches!(state, State::Running { .. }),
            _ => {}
        }
        // ECS startTimeout, set on a dependency: from its start, it has this long to reach what the
        // containers waiting for it need (exit, or pass its health check), or they give up.
        if let (Some(limit), Some(awaited)) = (meta.start_timeout, meta.awaited_as.as_deref())
            && prev.started_at.is_none()
            && let State::Running {
                started: Some(started),
                passed_startup,
                ..
            } = state
            // `awaited` is what dependsOn waits for (HEALTHY or COMPLETE), not a health status.
            && !(awaited == "HEALTHY" && passed_startup)
        {
            let deadline = started + SignedDuration::from_secs(limit);
            if deadline <= o.now {
                let reached = if awaited == "HEALTHY" {
                    "pass its health check"
                } else {
                    "exit"
                };
                stop_cause.get_or_insert((
                    StopCode::TaskFailedToStart,
                    format!(
                        "Container {} did not {reached} within its startTimeout of {limit}s: the containers that depend on it were not started",
                        meta.name
                    ),
                ));
            } else {
                wake(deadline, o.now);
            }
        }
        views.push(view);
    }
    if essential_exited || terminal {
        stop_cause.get_or_insert((
            StopCode::EssentialContainerExited,
            "Essential container in task exited".to_string(),
        ));
    }
    let scheduled = node.is_some();
    // A task that ran never goes back to ACTIVATING: a container restarting in place is still part of
    // a RUNNING task.
    let running = scheduled
        && !terminal
        && (all_regular_running || prev.started_at.is_some())
        && !o.containers.is_empty();
    if !running && prev.started_at.is_none() && stop_cause.is_none() {
        let deadline = created + SignedDuration::try_from(o.start_timeout).unwrap_or_default();
        if deadline <= o.now {
            let why = if scheduled {
                format!("Task did not start within {}s", o.start_timeout.as_secs())
            } else {
                format!(
                    "Task could not be placed within {}s: {}",
                    o.start_timeout.as_secs(),
                    unschedulable_message(pod)
                )
            };
            stop_cause = Some((StopCode::TaskFailedToStart, why));
        } else {
            wake(deadline, o.now);
        }
    }
    // A stop asked for (by the user or the service) or caused from outside comes first.
    let deleting = pod.metadata.deletion_timestamp.is_some();
    if o.task.spec.desired_status == DesiredStatus::Stopped {
        stop_cause = Some(requested_stop(o));
    } else if deleting {
        stop_cause = Some(disruption(pod));
    }
    if prev.stop_code.is_none()
        && let Some((code, reason)) = stop_cause
    {
        s.stop_code = Some(code);
        s.stopped_reason = Some(reason);
        s.stopping_at = Some(crate::time::now());
        s.desired_status = Some(DesiredStatus::Stopped);
    }

    let stopping = s.stop_code.is_some();
    s.last_status = Some(if stopping && terminal {
        LastStatus::Stopped
    } else if stopping && deleting {
        LastStatus::Stopping
    } else if stopping {
        LastStatus::Deactivating
    } else if !scheduled {
        LastStatus::Pending
    } else if running {
        LastStatus::Running
    } else {
        LastStatus::Activating
    });
    if running && s.started_at.is_none() {
        s.started_at = views
            .iter()
            .zip(o.containers)
            .filter(|(_, m)| m.role == "regular")
            .filter_map(|(_, m)| match state_of(pod, m).0 {
                State::Running { started, .. } => started,
                _ => None,
            })
            .max()
            .map(Time)
            .or_else(|| Some(crate::time::now()));
    }
    if scheduled && s.pull_started_at.is_none() {
        s.pull_started_at = condition_time(pod, "PodScheduled");
    }
    if s.pull_stopped_at.is_none() {
        s.pull_stopped_at = o
            .containers
            .iter()
            .filter_map(|m| match state_of(pod, m).0 {
                State::Running { started, .. } => started,
                State::Terminated { .. } => None,
                _ => None,
            })
            .min()
            .map(Time);
    }
    if s.last_status == Some(LastStatus::Stopped) {
        s.execution_stopped_at = s.execution_stopped_at.clone().or_else(|| {
            o.containers
                .iter()
                .filter_map(|m| match state_of(pod, m).0 {
                    State::Terminated { finished, .. } => finished,
                    _ => None,
                })
                .max()
                .map(Time)
        });
        s.stopped_at = s.stopped_at.clone().or_else(|| Some(crate::time::now()));
    }
    s.health_status = Some(task_health(&views));
    s.containers = views;
    finish(o, &prev, &mut s);
    Outcome {
        stop_pod: stopping && !terminal && !deleting,
        recheck_after: if stopping { None } else { recheck },
        status: s,
    }
}

/// The pod is gone: the task is STOPPED (for an honest reason when it was not ours to stop).
fn gone(o: &Observed<'_>, mut s: TaskStatus) -> Outcome {
    let prev = o.task.status.clone().unwrap_or_default();
    if s.stop_code.is_none() {
        let (code, reason) = if o.task.spec.desired_status == DesiredStatus::Stopped {
            requested_stop(o)
        } else if o.node_unavailable {
            (
                StopCode::InfrastructureHealth,
                "Task stopped because its node is unavailable".to_string(),
            )
        } else if prev.started_at.is_none() {
            (
                StopCode::TaskFailedToStart,
                "Task pod was deleted before the task started".to_string(),
            )
        } else {
            (
                StopCode::UserInitiated,
                "Task pod was deleted outside ecs-operator".to_string(),
            )
        };
        s.stop_code = Some(code);
        s.stopped_reason = Some(reason);
        s.stopping_at = Some(crate::time::now());
    }
    s.last_status = Some(LastStatus::Stopped);
    s.desired_status = Some(DesiredStatus::Stopped);
    for c in &mut s.containers {
        c.last_status = Some(ContainerLastStatus::Stopped);
    }
    s.stopped_at = s.stopped_at.clone().or_else(|| Some(crate::time::now()));
    s.execution_stopped_at = s
        .execution_stopped_at
        .clone()
        .or_else(|| s.stopped_at.clone());
    finish(o, &prev, &mut s);
    Outcome {
        status: s,
        stop_pod: false,
        recheck_after: None,
    }
}

/// Version and the Ready condition, common to every outcome.
fn finish(o: &Observed<'_>, prev: &TaskStatus, s: &mut TaskStatus) {
    if s.last_status != prev.last_status {
        s.version = Some(prev.version.unwrap_or(0) + 1);
    }
    let unhealthy = s.health_status == Some(HealthStatus::Unhealthy);
    let unplaced = o.pod.and_then(unschedulable);
    // Both outcomes set lastStatus: None is not seen here.
    let last = s.last_status.unwrap_or(LastStatus::Provisioning);
    let (ready, reason, message) = match last {
        LastStatus::Running if unhealthy => (
            false,
            "Unhealthy".to_string(),
            "an essential container is UNHEALTHY".to_string(),
        ),
        LastStatus::Running => (
            true,
            "Running".to_string(),
            "the task is RUNNING".to_string(),
        ),
        LastStatus::Stopped | LastStatus::Stopping | LastStatus::Deactivating => (
            false,
            s.stop_code
                .map_or_else(|| "Stopped".to_string(), |c| c.to_string()),
            s.stopped_reason.clone().unwrap_or_default(),
        ),
        // The scheduler's verdict, for the service to report that it cannot place its tasks.
        LastStatus::Pending if unplaced.is_some() => (
            false,
            UNSCHEDULABLE.to_string(),
            unplaced.unwrap_or_default(),
        ),
        other => (
            false,
            pascal(other.as_str()),
            format!("the task is {other}"),
        ),
    };
    conditions::set(
        &mut s.conditions,
        "Ready",
        ready,
        &reason,
        message,
        o.task.metadata.generation,
    );
}

fn requested_stop(o: &Observed<'_>) -> (StopCode, String) {
    let code = if o.owned_by_service {
        StopCode::ServiceSchedulerInitiated
    } else {
        StopCode::UserInitiated
    };
    let reason = o
        .task
        .spec
        .reason
        .clone()
        .unwrap_or_else(|| "Task stopped by user".to_string());
    (code, reason)
}

/// Why a pod we did not delete is terminating, from its DisruptionTarget condition.
fn disruption(pod: &Pod) -> (StopCode, String) {
    let target = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "DisruptionTarget" && c.status == "True");
    let detail = target.and_then(|c| c.message.clone()).unwrap_or_default();
    match target.and_then(|c| c.reason.as_deref()) {
        Some("DeletionByTaintManager") | Some("DeletionByPodGC") => (
            StopCode::InfrastructureHealth,
            format!("Task stopped because its node is unavailable: {detail}"),
        ),
        Some("TerminationByKubelet") => (
            StopCode::InfrastructureHealth,
            format!("Task stopped by the node: {detail}"),
        ),
        Some("EvictionByEvictionAPI") | Some("PreemptionByScheduler") => (
            StopCode::TerminationNotice,
            format!("Task evicted: {detail}"),
        ),
        _ => (
            StopCode::UserInitiated,
            "Task pod was deleted outside ecs-operator".to_string(),
        ),
    }
}

/// ECS words for a container's exit.
fn container_reason(reason: &str, message: &str) -> Option<String> {
    match reason {
        "OOMKilled" => Some("OutOfMemoryError: Container killed due to memory usage".to_string()),
        "" | "Completed" | "Error" if message.is_empty() => None,
        _ if message.is_empty() => Some(reason.to_string()),
        _ => Some(format!("{reason}: {message}")),
    }
}

/// Task health from its essential containers (ECS rule).
fn task_health(views: &[ContainerStatus]) -> HealthStatus {
    let essential: Vec<_> = views
        .iter()
        .filter(|v| v.essential == Some(true))
        .map(|v| v.health_status.unwrap_or(HealthStatus::Unknown))
        .collect();
    if essential.contains(&HealthStatus::Unhealthy) {
        HealthStatus::Unhealthy
    } else if essential.contains(&HealthStatus::Unknown) || essential.is_empty() {
        HealthStatus::Unknown
    } else {
        HealthStatus::Healthy
    }
}

/// Reason of the task's `Ready` condition while the scheduler finds no node for its pod; the message
/// is the scheduler's.
pub const UNSCHEDULABLE: &str = "Unschedulable";

/// The scheduler's message while it finds no node for the pod (PodScheduled False, Unschedulable).
fn unschedulable(pod: &Pod) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some(UNSCHEDULABLE)
        })
        .map(|c| c.message.clone().unwrap_or_default())
}

fn unschedulable_message(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False")
        .and_then(|c| c.message.clone())
        .unwrap_or_else(|| "no node met all of its requirements".to_string())
}

fn condition_time(pod: &Pod, type_: &str) -> Option<Time> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")?
        .last_transition_time
        .clone()
}

fn pod_image(pod: &Pod, k8s_name: &str) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == k8s_name)
        .and_then(|c| c.image.clone())
}

fn bindings(pod: &Pod, k8s_name: &str) -> Vec<NetworkBinding> {
    let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .filter(|c| c.name == k8s_name)
        .flat_map(|c| c.ports.iter().flatten())
        .map(|p| NetworkBinding {
            bind_ip: ip.clone(),
            container_port: Some(p.container_port),
            host_port: p.host_port,
            protocol: Some(p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase()),
        })
        .collect()
}

fn pascal(status: &str) -> String {
    let mut out = String::new();
    for (i, c) in status.chars().enumerate() {
        out.push(if i == 0 { c } else { c.to_ascii_lowercase() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn task(spec: Value, status: Option<Value>) -> Task {
        serde_json::from_value(json!({
            "apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
            "metadata": {"name": "t", "namespace": "ns", "generation": 1,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": spec, "status": status
        }))
        .unwrap()
    }

    fn meta(
        name: &str,
        essential: bool,
        role: &str,
        unhealthy_after: Option<i64>,
    ) -> ContainerMeta {
        ContainerMeta {
            name: name.to_uppercase(),
            k8s_name: name.into(),
            essential,
            role: role.into(),
            unhealthy_after,
            ..Default::default()
        }
    }

    fn pod(phase: &str, node: Option<&str>, containers: Value, extra: Value) -> Pod {
        let mut p = json!({
            "metadata": {"name": "t", "annotations": {"ecs.operator.dev/task-definition": "web:3"}},
            "spec": {"nodeName": node, "containers": [{"name": "web", "image": "nginx"}, {"name": "log", "image": "busybox"}]},
            "status": {"phase": phase, "startTime": "2026-01-01T00:00:05Z", "containerStatuses": containers,
                       "conditions": [{"type": "PodScheduled", "status": if node.is_some() { "True" } else { "False" },
                                       "message": "0/6 nodes are available", "lastTransitionTime": "2026-01-01T00:00:01Z"}]}
        });
        merge(&mut p, extra);
        serde_json::from_value(p).unwrap()
    }

    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (_, Value::Null) => {}
            (a, b) => *a = b,
        }
    }

    fn running(name: &str, ready: bool) -> Value {
        json!({"name": name, "ready": ready, "restartCount": 0, "image": "x", "imageID": "",
               "state": {"running": {"startedAt": "2026-01-01T00:00:10Z"}}})
    }

    fn exited(name: &str, code: i32, reason: &str) -> Value {
        json!({"name": name, "ready": false, "restartCount": 0, "image": "x", "imageID": "",
               "state": {"terminated": {"exitCode": code, "reason": reason, "finishedAt": "2026-01-01T00:01:00Z"}}})
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + second).unwrap()
    }

    fn observe_at(
        task: &Task,
        pod: Option<&Pod>,
        containers: &[ContainerMeta],
        now: Timestamp,
    ) -> Outcome {
        observe(&Observed {
            task,
            pod,
            containers,
            zone: Some("us-east-1a".into()),
            now,
            start_timeout: Duration::from_secs(300),
            owned_by_service: false,
            node_unavailable: false,
        })
    }

    fn web_and_log() -> Vec<ContainerMeta> {
        vec![
            meta("web", true, "regular", Some(40)),
            meta("log", false, "regular", None),
        ]
    }

    #[test]
    fn a_scheduled_pod_with_every_container_running_is_running() {
        let t = task(json!({"taskDefinition": "web"}), None);
        let p = pod(
            "Running",
            Some("node-a1"),
            json!([running("web", true), running("log", true)]),
            json!({}),
        );
        let o = observe_at(&t, Some(&p), &web_and_log(), at(20));
        let s = o.status;
        assert_eq!(s.last_status, Some(LastStatus::Running));
        assert_eq!(s.task_definition.as_deref(), Some("web:3"));
        assert_eq!(s.availability_zone.as_deref(), Some("us-east-1a"));
        assert_eq!(s.container_instance.as_deref(), Some("node-a1"));
        assert_eq!(
            s.containers[0].name, "WEB",
            "containers are reported by their ECS names"
        );
        assert_eq!(s.containers[0].health_status, Some(HealthStatus::Healthy));
        assert_eq!(s.containers[1].health_status, Some(HealthStatus::Unknown));
        assert_eq!(
            s.health_status,
            Some(HealthStatus::Healthy),
            "only essential containers count"
        );
        assert!(s.started_at.is_some());
        assert_eq!(s.version, Some(1));
        assert!(!o.stop_pod);
    }

    #[test]
    fn unscheduled_is_pending_and_fails_to_start_after_the_timeout() {
        let t = task(json!({"taskDefinition": "web"}), None);
        let p = pod("Pending", None, json!([]), json!({}));
        let o = observe_at(&t, Some(&p), &web_and_log(), at(60));
        assert_eq!(o.status.last_status, Some(LastStatus::Pending));
        assert_eq!(
            o.recheck_after,
            Some(Duration::from_secs(241)),
            "looks again at the deadline"
        );
        let o = observe_at(&t, Some(&p), &web_and_log(), at(301));
        assert_eq!(o.status.stop_code, Some(StopCode::TaskFailedToStart));
        assert!(
            o.status
                .stopped_reason
                .unwrap()
                .contains("0/6 nodes are available")
        );
        assert!(o.stop_pod);
    }

    #[test]
    fn the_schedulers_verdict_is_the_pending_tasks_ready_reason() {
        let t = task(json!({"taskDefinition": "web"}), None);
        let ready = |p: &Pod| {
            let o = observe_at(&t, Some(p), &web_and_log(), at(60));
            let c = conditions::get(&o.status.conditions, "Ready")
                .unwrap()
                .clone();
            (c.reason, c.message)
        };
        let waiting = pod("Pending", None, json!([]), json!({}));
        assert_eq!(ready(&waiting).0, "Pending");
        let unplaceable = pod(
            "Pending",
            None,
            json!([]),
            json!({"status": {"conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/6 nodes are available: 6 Insufficient memory.",
                "lastTransitionTime": "2026-01-01T00:00:01Z"}]}}),
        );
        assert_eq!(
            ready(&unplaceable),
            (
                UNSCHEDULABLE.to_string(),
                "0/6 nodes are available: 6 Insufficient memory.".to_string()
            )
        );
    }

    #[test]
    fn an_essential_exit_stops_the_task_and_a_non_essential_one_does_not() {
        let t = task(json!({"taskDefinition": "web"}), None);
        // The phase says Failed while a container still runs (as kwok's fault stage does): judged by containers.
        let p = pod(
            "Failed",
            Some("n"),
            json!([running("web", true), exited("log", 0, "Completed")]),
            json!({}),
        );
        let o = observe_at(&t, Some(&p), &web_and_log(), at(20));
        assert_eq!(o.status.last_status, Some(LastStatus::Running));
        assert_eq!(o.status.stop_code, None);
        assert_eq!(o.status.containers[1].exit_code, Some(0));

        let p = pod(
            "Running",
            Some("n"),
            json!([exited("web", 137, "OOMKilled"), running("log", true)]),
            json!({}),
        );
        let o = observe_at(&t, Some(&p), &web_and_log(), at(20));
        assert_eq!(o.status.stop_code, Some(StopCode::EssentialContainerExited));
        assert_eq!(
            o.status.stopped_reason.as_deref(),
            Some("Essential container in task exited")
        );
        assert_eq!(o.status.last_status, Some(LastStatus::Deactivating));
        assert_eq!(
            o.status.containers[0].reason.as_deref(),
            Some("OutOfMemoryError: Container killed due to memory usage")
        );
        assert!(o.stop_pod, "the other containers are stopped with the pod");
    }

    #[test]
    fn a_finished_pod_is_stopped_and_kept() {
        let t = task(json!({"taskDefinition": "web"}), None);
        let p = pod(
            "Succeeded",
            Some("n"),
            json!([exited("web", 0, "Completed"), exited("log", 0, "Completed")]),
            json!({}),
        );
        let o = observe_at(&t, Some(&p), &web_and_log(), at(70));
        assert_eq!(o.status.last_status, Some(LastStatus::Stopped));
        assert_eq!(o.status.stop_code, Some(StopCode::EssentialContainerExited));
        assert!(o.status.execution_stopped_at.is_some() && o.status.stopped_at.is_some());
        assert!(!o.stop_pod, "nothing runs: the pod stays, with its logs");
    }

    #[test]
    fn the_user_and_the_service_stop_tasks_with_their_own_codes() {
        let t = task(
            json!({"taskDefinition": "web", "desiredStatus": "STOPPED", "reason": "done"}),
            None,
        );
        let p = pod(
            "Running",
            Some("n"),
            json!([running("web", true), running("log", true)]),
            json!({}),
        );
        let o = observe_at(&t, Some(&p), &web_and_log(), at(20));
        assert_eq!(o.status.stop_code, Some(StopCode::UserInitiated));
        assert_eq!(o.status.stopped_reason.as_deref(), Some("done"));
        let o = observe(&Observed {
            task: &t,
            pod: Some(&p),
            containers: &web_and_log(),
            zone: None,
            now: at(20),
            start_timeout: Duration::from_secs(300),
            owned_by_service: true,
            node_unavailable: false,
        });
        assert_eq!(
            o.status.stop_code,
            Some(StopCode::ServiceSchedulerInitiated)
        );
    }

    #[test]
    fn pods_deleted_from_outside_get_honest_stop_codes() {
        let t = task(json!({"taskDefinition": "web"}), None);
        let evicted = pod(
            "Running",
            Some("n"),
            json!([running("web", true), running("log", true)]),
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:30Z"},
                   "status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
                       "reason": "DeletionByTaintManager", "message": "Taint manager: deleting due to NoExecute taint"}]}}),
        );
        let o = observe_at(&t, Some(&evicted), &web_and_log(), at(31));
        assert_eq!(o.status.stop_code, Some(StopCode::InfrastructureHealth));
        assert_eq!(o.status.last_status, Some(LastStatus::Stopping));
        assert!(!o.stop_pod, "already terminating");

        // Gone without our noticing the deletion: the pod was deleted outside the operator.
        let started = task(
            json!({"taskDefinition": "web"}),
            Some(
                json!({"lastStatus": "RUNNING", "podName": "t", "startedAt": "2026-01-01T00:00:10Z"}),
            ),
        );
        let o = observe_at(&started, None, &[], at(40));
        assert_eq!(o.status.last_status, Some(LastStatus::Stopped));
        assert_eq!(o.status.stop_code, Some(StopCode::UserInitiated));
        // Gone from a node that is unavailable: evicted, however quickly the pod went.
        let o = observe(&Observed {
            task: &started,
            pod: None,
            containers: &[],
            zone: None,
            now: at(40),
            start_timeout: Duration::from_secs(300),
            owned_by_service: false,
            node_unavailable: true,
        });
        assert_eq!(o.status.stop_code, Some(StopCode::InfrastructureHealth));
        let never_started = task(
            json!({"taskDefinition": "web"}),
            Some(json!({"lastStatus": "PENDING", "podName": "t"})),
        );
        let o = observe_at(&never_started, None, &[], at(40));
        assert_eq!(o.status.stop_code, Some(StopCode::TaskFailedToStart));
    }

    #[test]
    fn a_recorded_stop_cause_is_never_rewritten() {
        let stopping = task(
            json!({"taskDefinition": "web"}),
            Some(
                json!({"lastStatus": "DEACTIVATING", "podName": "t", "stopCode": "EssentialContainerExited",
                        "stoppedReason": "Essential container in task exited"}),
            ),
        );
        let deleting = pod(
            "Running",
            Some("n"),
            json!([running("web", true), running("log", true)]),
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:30Z"}}),
        );
        let o = observe_at(&stopping, Some(&deleting), &web_and_log(), at(31));
        assert_eq!(o.status.stop_code, Some(StopCode::EssentialContainerExited));
        assert_eq!(o.status.last_status, Some(LastStatus::Stopping));
    }

    #[test]
    fn health_turns_unhealthy_only_after_its_deadline_or_after_being_healthy() {
        let t = task(json!({"taskDefinition": "web"}), None);
        let p = pod(
            "Running",
            Some("n"),
            json!([running("web", false), running("log", true)]),
            json!({}),
        );
        // Started at 10 s, 40 s to pass: UNKNOWN until 50 s, and a look again then.
        let o = observe_at(&t, Some(&p), &web_and_log(), at(20));
        assert_eq!(o.status.health_status, Some(HealthStatus::Unknown));
        assert_eq!(o.recheck_after, Some(Duration::from_secs(31)));
        let o = observe_at(&t, Some(&p), &web_and_log(), at(50));
        assert_eq!(o.status.health_status, Some(HealthStatus::Unhealthy));
        assert_eq!(
            o.status.stop_code, None,
            "a standalone task only reports its health"
        );
        let was_healthy = task(
            json!({"taskDefinition": "web"}),
            Some(json!({"containers": [{"name": "WEB", "healthStatus": "HEALTHY"}]})),
        );
        let o = observe_at(&was_healthy, Some(&p), &web_and_log(), at(20));
        assert_eq!(o.status.health_status, Some(HealthStatus::Unhealthy));
    }

    #[test]
    fn an_unhealthy_verdict_stands_while_the_container_stays_not_ready() {
        // Healthy, then failing at 20 s (inside the 40 s start window): UNHEALTHY, recorded.
        let was_unhealthy = task(
            json!({"taskDefinition": "web"}),
            Some(json!({"lastStatus": "RUNNING", "podName": "t",
                "containers": [{"name": "WEB", "healthStatus": "UNHEALTHY"}]})),
        );
        let p = pod(
            "Running",
            Some("n"),
            json!([running("web", false), running("log", true)]),
            json!({}),
        );
        // The next look (the service stopping it, say) still inside the window: still UNHEALTHY.
        let o = observe_at(&was_unhealthy, Some(&p), &web_and_log(), at(25));
        assert_eq!(o.status.health_status, Some(HealthStatus::Unhealthy));
        // Ready again: healthy again.
        let ready = pod(
            "Running",
            Some("n"),
            json!([running("web", true), running("log", true)]),
            json!({}),
        );
        let o = observe_at(&was_unhealthy, Some(&ready), &web_and_log(), at(26));
        assert_eq!(o.status.health_status, Some(HealthStatus::Healthy));
    }

    #[test]
    fn image_pull_failures_fail_the_start_in_ecs_words() {
        let t = task(json!({"taskDefinition": "web"}), None);
        let waiting = json!([{"name": "web", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}}}]);
        let p = pod("Pending", Some("n"), waiting, json!({}));
        let o = observe_at(&t, Some(&p), &web_and_log(), at(20));
        assert_eq!(o.status.stop_code, Some(StopCode::TaskFailedToStart));
        assert_eq!(
            o.status.stopped_reason.as_deref(),
            Some("WEB: CannotPullContainerError: pull access denied")
        );
    }

    #[test]
    fn observing_the_same_pod_twice_changes_nothing() {
        let t = task(json!({"taskDefinition": "web"}), None);
        let p = pod(
            "Running",
            Some("n"),
            json!([running("web", true), running("log", true)]),
            json!({}),
        );
        let first = observe_at(&t, Some(&p), &web_and_log(), at(20)).status;
        let again = task(
            json!({"taskDefinition": "web"}),
            Some(serde_json::to_value(&first).unwrap()),
        );
        let second = observe_at(&again, Some(&p), &web_and_log(), at(25)).status;
        assert_eq!(first, second, "a converged task writes nothing");
    }

    /// A container status with `state`, restarted `restarts` times, the last exit in `last`.
    fn status(
        name: &str,
        state: Value,
        restarts: i32,
        last: Value,
        started: Option<bool>,
    ) -> Value {
        json!({"name": name, "ready": false, "restartCount": restarts, "image": "x", "imageID": "",
               "started": started, "state": state, "lastState": last})
    }

    fn terminated(code: i32, from: &str, to: &str) -> Value {
        json!({"terminated": {"exitCode": code, "reason": "Error", "startedAt": from, "finishedAt": to}})
    }

    #[test]
    fn start_timeout_bounds_how_long_the_dependency_takes_from_its_own_start() {
        let t = task(json!({"taskDefinition": "web"}), None);
        // migrate (an init container others wait for to complete) has startTimeout 30; web waits.
        let containers = vec![
            ContainerMeta {
                start_timeout: Some(30),
                awaited_as: Some("COMPLETE".into()),
                ..meta("migrate", false, "init", None)
            },
            meta("web", true, "regular", None),
        ];
        let waiting = json!({"waiting": {"reason": "PodInitializing"}});
        let p = pod(
            "Pending",
            Some("n"),
            json!([]),
            json!({"status": {"initContainerStatuses": [running("migrate", false)],
                              "containerStatuses": [status("web", waiting, 0, json!({}), None)]}}),
        );
        // migrate started at 10 s: 30 s later its dependents give up.
        let o = observe_at(&t, Some(&p), &containers, at(39));
        assert_eq!(o.status.stop_code, None);
        assert_eq!(o.recheck_after, Some(Duration::from_secs(2)));
        let o = observe_at(&t, Some(&p), &containers, at(40));
        assert_eq!(o.status.stop_code, Some(StopCode::TaskFailedToStart));
        assert!(
            o.status
                .stopped_reason
                .as_deref()
                .unwrap()
                .starts_with("Container MIGRATE did not exit within its startTimeout of 30s"),
            "{:?}",
            o.status.stopped_reason
        );

        // A dependency that has not started yet is not timed by its startTimeout.
        let p = pod(
            "Pending",
            Some("n"),
            json!([]),
            json!({"status": {"initContainerStatuses": [status("migrate", json!({"waiting": {}}), 0, json!({}), None)]}}),
        );
        assert_eq!(
            observe_at(&t, Some(&p), &containers, at(100))
                .status
                .stop_code,
            None
        );
    }

    #[test]
    fn start_timeout_on_the_dependent_container_does_not_bound_its_own_wait() {
        let t = task(json!({"taskDefinition": "web"}), None);
        // web's own startTimeout is for the containers that would wait for web: none does.
        let containers = vec![
            meta("migrate", false, "init", None),
            ContainerMeta {
                start_timeout: Some(5),
                ..meta("web", true, "regular", None)
            },
        ];
        let waiting = json!({"waiting": {"reason": "PodInitializing"}});
        let p = pod(
            "Pending",
            Some("n"),
            json!([]),
            json!({"status": {"initContainerStatuses": [running("migrate", false)],
                              "containerStatuses": [status("web", waiting, 0, json!({}), None)]}}),
        );
        let o = observe_at(&t, Some(&p), &containers, at(100));
        assert_eq!(o.status.stop_code, None);
        assert_eq!(o.status.last_status, Some(LastStatus::Activating));
    }

    #[test]
    fn start_timeout_of_a_healthy_dependency_ends_when_its_check_passes() {
        let t = task(json!({"taskDefinition": "web"}), None);
        let containers = vec![
            ContainerMeta {
                start_timeout: Some(30),
                awaited_as: Some("HEALTHY".into()),
                ..meta("db", true, "sidecar", Some(100))
            },
            meta("web", true, "regular", None),
        ];
        let db = |passed: bool| {
            status(
                "db",
                json!({"running": {"startedAt": "2026-01-01T00:00:10Z"}}),
                0,
                json!({}),
                Some(passed),
            )
        };
        let waiting = json!({"waiting": {"reason": "PodInitializing"}});
        let p = |passed: bool| {
            pod(
                "Pending",
                Some("n"),
                json!([]),
                json!({"status": {"initContainerStatuses": [db(passed)],
                                  "containerStatuses": [status("web", waiting.clone(), 0, json!({}), None)]}}),
            )
        };
        let o = observe_at(&t, Some(&p(false)), &containers, at(41));
        assert_eq!(o.status.stop_code, Some(StopCode::TaskFailedToStart));
        assert!(
            o.status
                .stopped_reason
                .as_deref()
                .unwrap()
                .contains("did not pass its health check within its startTimeout of 30s")
        );
        let o = observe_at(&t, Some(&p(true)), &containers, at(41));
        assert_eq!(o.status.stop_code, None);
    }

    fn restarting() -> Vec<ContainerMeta> {
        vec![
            ContainerMeta {
                restart_in_place: true,
                ignored_exit_codes: vec![0],
                restart_attempt_period: Some(60),
                ..meta("web", true, "regular", None)
            },
            meta("log", false, "regular", None),
        ]
    }

    fn was_running() -> Task {
        task(
            json!({"taskDefinition": "web"}),
            Some(
                json!({"lastStatus": "RUNNING", "podName": "t", "version": 1,
                        "startedAt": "2026-01-01T00:00:10Z"}),
            ),
        )
    }

    #[test]
    fn an_essential_container_restarting_in_place_keeps_its_task_running() {
        let t = was_running();
        // Ran 110 s (more than restartAttemptPeriod 60) and exited 1: ECS restarts it in place.
        let long_run = terminated(1, "2026-01-01T00:00:10Z", "2026-01-01T00:02:00Z");
        for web in [
            // Exited, not restarted yet.
            status("web", long_run.clone(), 0, json!({}), None),
            // Waiting to restart.
            status(
                "web",
                json!({"waiting": {"reason": "CrashLoopBackOff"}}),
                1,
                long_run.clone(),
                None,
            ),
            // Restarted.
            status(
                "web",
                json!({"running": {"startedAt": "2026-01-01T00:02:10Z"}}),
                1,
                long_run.clone(),
                None,
            ),
        ] {
            let p = pod(
                "Running",
                Some("n"),
                json!([web, running("log", true)]),
                json!({}),
            );
            let o = observe_at(&t, Some(&p), &restarting(), at(130));
            assert_eq!(o.status.stop_code, None, "{:?}", o.status.stopped_reason);
            assert_eq!(
                o.status.last_status,
                Some(LastStatus::Running),
                "a restart never takes the task back to ACTIVATING"
            );
            assert_eq!(o.status.version, Some(1));
            assert!(!o.stop_pod);
        }
    }

    #[test]
    fn an_exit_ecs_would_not_restart_stops_the_task() {
        let t = was_running();
        let short_run = terminated(1, "2026-01-01T00:00:10Z", "2026-01-01T00:00:40Z");
        let ignored = terminated(0, "2026-01-01T00:00:10Z", "2026-01-01T00:02:00Z");
        for web in [
            // Ran 30 s, less than restartAttemptPeriod: ECS does not restart it.
            status("web", short_run.clone(), 0, json!({}), None),
            // The kubelet restarted it anyway.
            status(
                "web",
                json!({"running": {"startedAt": "2026-01-01T00:00:50Z"}}),
                1,
                short_run.clone(),
                None,
            ),
            status(
                "web",
                json!({"waiting": {"reason": "CrashLoopBackOff"}}),
                1,
                short_run.clone(),
                None,
            ),
            // An ignored exit code is never restarted.
            status("web", ignored.clone(), 0, json!({}), None),
        ] {
            let p = pod(
                "Running",
                Some("n"),
                json!([web.clone(), running("log", true)]),
                json!({}),
            );
            let o = observe_at(&t, Some(&p), &restarting(), at(130));
            assert_eq!(
                o.status.stop_code,
                Some(StopCode::EssentialContainerExited),
                "{web}"
            );
            assert!(o.stop_pod);
        }
        // A non-essential container's exits never stop the task.
        let mut log_restarts = restarting();
        log_restarts.swap(0, 1);
        log_restarts[0].essential = true;
        log_restarts[1].essential = false;
        let p = pod(
            "Running",
            Some("n"),
            json!([
                status("web", short_run, 0, json!({}), None),
                running("log", true)
            ]),
            json!({}),
        );
        let o = observe_at(&t, Some(&p), &log_restarts, at(130));
        assert_eq!(o.status.stop_code, None);
    }

    #[test]
    fn an_essential_sidecar_restarted_by_the_kubelet_stopped_for_ecs() {
        let t = was_running();
        let sidecar = |restart_in_place: bool| {
            vec![
                meta("web", true, "regular", None),
                ContainerMeta {
                    restart_in_place,
                    restart_attempt_period: restart_in_place.then_some(60),
                    ..meta("log", true, "sidecar", None)
                },
            ]
        };
        let long_run = terminated(1, "2026-01-01T00:00:10Z", "2026-01-01T00:02:00Z");
        let p = pod(
            "Running",
            Some("n"),
            json!([running("web", true)]),
            json!({"status": {"initContainerStatuses": [status("log",
                json!({"running": {"startedAt": "2026-01-01T00:02:10Z"}}), 1, long_run, None)]}}),
        );
        let o = observe_at(&t, Some(&p), &sidecar(false), at(130));
        assert_eq!(o.status.stop_code, Some(StopCode::EssentialContainerExited));
        let o = observe_at(&t, Some(&p), &sidecar(true), at(130));
        assert_eq!(o.status.stop_code, None);
    }
}
