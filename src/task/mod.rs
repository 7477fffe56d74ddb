//! The Task controller: one pod per task, the ECS lifecycle in status, ECS stop rules. A stopped task
//! is never restarted or replaced; stopped standalone tasks are deleted after the retention period.

pub mod build;
pub mod caches;
pub mod create;
pub mod expect;
pub mod lifecycle;
pub mod protection;
pub mod settle;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Resource, ResourceExt};
use tracing::info;

use crate::api::task::{DesiredStatus, LastStatus, StopCode};
use crate::api::{Service, Task, TaskDefinition, TaskDefinitionSpec, TaskStatus};
use crate::context::Context;
use crate::controller::Kind;
use crate::controller::decode::Decoded;
use crate::controller::frame::Frame;
use crate::error::{Error, is_conflict, is_not_found};
use crate::labels;
use crate::task_definition::revision::TaskDefinitionRef;
use caches::Caches;
use create::{CreateFailure, Existing};
use expect::PodStep;
use lifecycle::Observed;

/// Field manager of the status this controller writes.
const STATUS_MANAGER: &str = "ecs-operator/task-status";

/// Runs the controller for `tasks` (one namespace, or all) until `shutdown` resolves.
pub async fn run(
    tasks: Api<Decoded<Task>>,
    pods: Api<Pod>,
    task_definitions: Api<Decoded<TaskDefinition>>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let frame = Frame::new(
        Kind::new("task", true, |ctx| &ctx.task_events),
        tasks,
        ctx.clone(),
    );
    let (pod_store, pod_writer) = reflector::store();
    let pods = frame
        .watch(
            &pods,
            watcher::Config::default().labels(labels::MANAGED_SELECTOR),
        )
        .modify(caches::trim)
        .reflect(pod_writer)
        .touched_objects();
    let (definition_store, definition_writer) = reflector::store();
    let definitions = frame
        .watch(&task_definitions, watcher::Config::default())
        .modify(crate::controller::trim::decoded)
        .reflect(definition_writer)
        .touched_objects();
    let caches = Arc::new(Caches::new(
        frame.store(),
        pod_store,
        definition_store,
        ctx.client.clone(),
    ));
    tokio::spawn(gauge_and_prune(caches.clone(), ctx));
    let waiting = frame.store();
    let synced = caches.clone();
    frame
        .triggers(|c| {
            c.owns_stream(pods)
                // A task waiting for its task definition starts as soon as the definition (or a
                // revision) appears.
                .watches_stream(definitions, move |td: Decoded<TaskDefinition>| {
                    let family = td.name_any();
                    let ns = td.namespace();
                    waiting
                        .state()
                        .into_iter()
                        .filter(move |t| {
                            crate::controller::decoded(t).is_some_and(|t| {
                                t.namespace() == ns
                                    && TaskDefinitionRef::parse(&t.spec.task_definition)
                                        .is_some_and(|r| r.family == family)
                                    && t.status
                                        .as_ref()
                                        .and_then(|s| s.pod_name.as_ref())
                                        .is_none()
                            })
                        })
                        .map(|t| ObjectRef::from_obj(t.as_ref()))
                        .collect::<Vec<_>>()
                })
        })
        .run(
            async move { synced.synced().await },
            shutdown,
            move |task, ctx| reconcile(task, ctx, caches.clone()),
        )
        .await;
}

/// Keeps the tasks-by-lastStatus gauge current and forgets what is kept for tasks that are gone.
async fn gauge_and_prune(caches: Arc<Caches>, ctx: Arc<Context>) {
    caches.synced().await;
    loop {
        let mut counts = std::collections::BTreeMap::<String, i64>::new();
        for t in caches.tasks.state() {
            let Some(t) = crate::controller::decoded(&t) else {
                continue;
            };
            let state = t
                .status
                .as_ref()
                .and_then(|s| s.last_status)
                .unwrap_or(LastStatus::Provisioning)
                .to_string();
            *counts.entry(state).or_default() += 1;
        }
        crate::admin::Metrics::set_states(&ctx.admin.metrics.tasks, counts);
        caches.prune();
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

/// How long a pass that finds the caches not listed yet waits before it runs again.
const CACHES_WAIT: Duration = Duration::from_millis(500);

async fn reconcile(
    cached: Arc<Task>,
    ctx: Arc<Context>,
    caches: Arc<Caches>,
) -> Result<Action, Error> {
    if !caches.ready() {
        return Ok(Action::requeue(CACHES_WAIT));
    }
    // Dereference: everything from the caches; a cache behind this controller's own status write is
    // read as what was written.
    let task = caches.current(cached);
    let prev = task.status.clone().unwrap_or_default();

    if prev.last_status == Some(LastStatus::Stopped) {
        return retain_or_delete(&task, &ctx).await;
    }

    let name = task.name_any();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());
    let had_pod = prev.pod_name.is_some();
    let expected = caches.expected(&task);
    let cached_pod = caches.pod(&task);
    let step = expect::pod_step(
        cached_pod.is_some(),
        expected.as_ref().map(|c| c.at.elapsed()),
        had_pod,
    );
    let mut pod = match step {
        PodStep::Observe => cached_pod,
        // Created a moment ago: its watch event is on its way (and reconciles the task).
        PodStep::Wait(rest) => return Ok(Action::requeue(rest)),
        // Its watch event is late (a burst of thousands): ask the API server, and write what the pod
        // shows rather than "created" now and its real state a moment later.
        PodStep::ReadCreated => match read_pod(&pods, &task, &caches, None).await? {
            Some(fresh) => Some(fresh),
            // Gone already: status says it was created; the next pass finds out why it went.
            None => {
                if let Some(created) = &expected {
                    write_status(&task, &ctx, &caches, &prev, created.status.clone(), None).await?;
                }
                return Ok(Action::requeue(TRANSITION_RECHECK));
            }
        },
        PodStep::Start => return start(&task, &ctx, &caches, &pods).await,
        // Asked once, at the end of the task's life (or after a change of leader, or when status
        // recorded the pod before its watch event came).
        PodStep::Confirm => read_pod(&pods, &task, &caches, None).await?,
    };

    // Decide. A pod seen before status recorded its creation: the lifecycle starts from what the
    // start decided (the task definition's cpu and memory, the group).
    let base = match (&expected, had_pod, &pod) {
        (_, true, _) | (_, _, None) => None,
        (Some(created), false, _) => Some(created.status.clone()),
        (None, false, Some(pod)) => started_from_pod(&task, &caches, pod).await?,
    };
    let observed_task = base.map(|base| {
        let mut t = (*task).clone();
        t.status = Some(TaskStatus {
            conditions: prev.conditions.clone(),
            ..base
        });
        t
    });
    let observing = observed_task.as_ref().unwrap_or(&task);
    let mut outcome = decide(observing, pod.as_deref(), &ctx);
    // A task on its way to RUNNING or to STOPPED looks at its pod again within a while even if no
    // event comes: after an API server restart, watches can stay silent for half a minute while the
    // new server's watch cache fills, and the task (and the service waiting for it) would wait too.
    let transitional = |o: &lifecycle::Outcome| {
        !matches!(
            o.status.last_status,
            Some(LastStatus::Running | LastStatus::Stopped)
        )
    };
    // So a pod between states for longer than that is read fresh, in case its watch is silent.
    if step == PodStep::Observe
        && let Some(cached) = pod.as_deref()
        && transitional(&outcome)
        && age_of(cached) > TRANSITION_RECHECK
    {
        let fresh = read_pod(&pods, &task, &caches, Some(cached)).await?;
        if fresh.as_deref().map(ResourceExt::resource_version) != Some(cached.resource_version()) {
            pod = fresh;
            outcome = decide(observing, pod.as_deref(), &ctx);
        }
    }
    let transitional = transitional(&outcome);
    // How long the pod has been at its current step: since its creation, or since the scheduler
    // placed it (a pod that waited in the scheduler's queue starts its next brief state afresh).
    let pod_age = pod.as_deref().map(|p| {
        let created = expected
            .as_ref()
            .map_or_else(|| age_of(p), |created| created.at.elapsed());
        settle::at_step(p, created, k8s_openapi::jiff::Timestamp::now())
    });
    // Record why before acting: if the delete fails or the operator dies here, the next pass finds the
    // stop cause in status and deletes again, instead of mistaking the deletion for someone else's.
    let held = write_status(&task, &ctx, &caches, &prev, outcome.status, pod_age).await?;
    if outcome.stop_pod
        && let Some(pod) = &pod
    {
        // The grace period is the pod's terminationGracePeriodSeconds: ECS stopTimeout.
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: pod.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match pods.delete(&name, &dp).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let recheck = match (outcome.recheck_after, transitional) {
        (Some(after), true) => Some(after.min(TRANSITION_RECHECK)),
        (None, true) => Some(TRANSITION_RECHECK),
        (after, false) => after,
    };
    // Protection ends by itself at its expiry: status says so then.
    let expiry = protection::Protection::read(
        task.metadata.annotations.as_ref(),
        k8s_openapi::jiff::Timestamp::now(),
    )
    .until()
    .map(|until| {
        Duration::try_from(until.duration_since(k8s_openapi::jiff::Timestamp::now()))
            .unwrap_or_default()
            + Duration::from_secs(1)
    });
    let recheck = [recheck, expiry, held].into_iter().flatten().min();
    Ok(recheck.map_or_else(Action::await_change, Action::requeue))
}

/// The task's pod read from the API server (None: gone, or not this task's), while the cache shows
/// `cached` (or no pod). Until the cache reaches this version, later passes decide on it, not on the
/// older ones the cache may show first.
async fn read_pod(
    pods: &Api<Pod>,
    task: &Task,
    caches: &Caches,
    cached: Option<&Pod>,
) -> Result<Option<Arc<Pod>>, Error> {
    let fresh = pods
        .get_opt(&task.name_any())
        .await?
        .filter(|p| owned_by(p, task))
        .map(Arc::new);
    if let Some(fresh) = &fresh {
        caches.read(task, cached, fresh.clone());
    }
    Ok(fresh)
}

/// The lifecycle's verdict on `task` and its pod (None: gone).
fn decide(task: &Task, pod: Option<&Pod>, ctx: &Context) -> lifecycle::Outcome {
    let containers = pod.map(build::containers_of).unwrap_or_default();
    let zone = pod
        .and_then(|p| p.spec.as_ref()?.node_name.clone())
        .and_then(|n| ctx.zone_of(&n));
    lifecycle::observe(&Observed {
        task,
        pod,
        containers: &containers,
        zone,
        now: k8s_openapi::jiff::Timestamp::now(),
        start_timeout: ctx.config.start_timeout,
        owned_by_service: owned_by_service(task),
        node_unavailable: task
            .status
            .as_ref()
            .and_then(|s| s.container_instance.as_deref())
            .is_some_and(|node| !ctx.node_available(node)),
    })
}

/// How old a pod is, from its creation timestamp (whole seconds).
fn age_of(pod: &Pod) -> Duration {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .and_then(|t| {
            Duration::try_from(k8s_openapi::jiff::Timestamp::now().duration_since(t.0)).ok()
        })
        .unwrap_or_default()
}

/// What the start decided, for a pod found without a status recording it (the start's memory is
/// gone: an earlier leader created it): from the task definition revision the pod was built from.
async fn started_from_pod(
    task: &Task,
    caches: &Caches,
    pod: &Pod,
) -> Result<Option<TaskStatus>, Error> {
    let Some(reference) = pod
        .annotations()
        .get(labels::TASK_DEFINITION_REF)
        .and_then(|r| TaskDefinitionRef::parse(r))
    else {
        return Ok(None);
    };
    let Some(revision) = reference.revision else {
        return Ok(None);
    };
    let ns = task.namespace().unwrap_or_default();
    let spec = caches
        .definitions
        .spec(&ns, &reference.family, revision)
        .await?;
    Ok(spec.map(|spec| {
        let mut status = started(task, &reference.family, revision, &spec);
        status.pod_name = pod.metadata.name.clone();
        status
    }))
}

/// The status of a task whose pod is being created from `family:revision`.
fn started(task: &Task, family: &str, revision: i64, spec: &TaskDefinitionSpec) -> TaskStatus {
    let prev = task.status.clone().unwrap_or_default();
    let overrides = task.spec.overrides.as_ref();
    let mut status = TaskStatus {
        last_status: Some(LastStatus::Provisioning),
        created_at: task.metadata.creation_timestamp.clone(),
        started_by: task.spec.started_by.clone(),
        observed_generation: task.metadata.generation,
        conditions: prev.conditions.clone(),
        version: prev.version,
        task_definition: Some(format!("{family}:{revision}")),
        group: Some(build::group_of(task, family)),
        cpu: overrides.and_then(|o| o.cpu.clone()).or(spec.cpu.clone()),
        memory: overrides
            .and_then(|o| o.memory.clone())
            .or(spec.memory.clone()),
        ..Default::default()
    };
    status.desired_status = Some(DesiredStatus::Running);
    status
}

/// How long a task between states waits for an event before it looks at its pod again.
const TRANSITION_RECHECK: Duration = Duration::from_secs(10);

/// Resolves the task definition and creates the pod — or explains, in a condition, why it cannot.
async fn start(
    task: &Task,
    ctx: &Context,
    caches: &Caches,
    pods: &Api<Pod>,
) -> Result<Action, Error> {
    let prev = task.status.clone().unwrap_or_default();
    let mut status = TaskStatus {
        last_status: Some(LastStatus::Provisioning),
        created_at: task.metadata.creation_timestamp.clone(),
        started_by: task.spec.started_by.clone(),
        observed_generation: task.metadata.generation,
        conditions: prev.conditions.clone(),
        version: prev.version,
        ..Default::default()
    };
    if task.spec.desired_status == DesiredStatus::Stopped {
        let outcome = lifecycle::observe(&Observed {
            task,
            pod: None,
            containers: &[],
            zone: None,
            now: k8s_openapi::jiff::Timestamp::now(),
            start_timeout: ctx.config.start_timeout,
            owned_by_service: owned_by_service(task),
            node_unavailable: false,
        });
        write_status(task, ctx, caches, &prev, outcome.status, None).await?;
        return Ok(Action::await_change());
    }

    let resolved = match resolve(task, caches).await? {
        Ok(resolved) => resolved,
        Err((reason, message)) => {
            // Waiting, not failed: the definition may be applied after the task (GitOps order).
            crate::conditions::set(
                &mut status.conditions,
                "Ready",
                false,
                reason,
                &message,
                task.metadata.generation,
            );
            write_status(task, ctx, caches, &prev, status, None).await?;
            return Ok(Action::requeue(Duration::from_secs(60)));
        }
    };
    let (family, revision, spec) = resolved;
    let started = started(task, &family, revision, &spec);
    status = TaskStatus {
        desired_status: None,
        ..started.clone()
    };

    let (pod, _) = match build::build_pod(task, &family, revision, &spec) {
        Ok(built) => built,
        Err(why) => {
            fail_to_start(
                &mut status,
                format!("Task definition {family}:{revision} cannot run on Kubernetes: {why}"),
                task.metadata.generation,
            );
            write_status(task, ctx, caches, &prev, status, None).await?;
            return Ok(Action::await_change());
        }
    };
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let mut created = started;
    created.pod_name = pod.metadata.name.clone();
    crate::conditions::set(
        &mut created.conditions,
        "Ready",
        false,
        "Provisioning",
        format!("pod created for {family}:{revision}"),
        task.metadata.generation,
    );
    let blocked = match pods.create(&PostParams::default(), &pod).await {
        Ok(_) => {
            info!(task = %task.name_any(), taskdefinition = %format!("{family}:{revision}"), "pod created");
            // Its watch event follows within moments and reconciles the task: the first status
            // written is what the pod shows then (see `settle`), not "created".
            caches.expect(task, created);
            return Ok(Action::requeue(settle::SETTLE));
        }
        // The name is deterministic (the task's): a pod the cache has not shown yet answers 409.
        Err(e) => match create::classify_error(&e) {
            CreateFailure::NameTaken => match pods.get_opt(&pod_name).await? {
                // Gone again already: try once more on the next pass.
                None => Blocked::Wait(format!(
                    "pod {pod_name} existed a moment ago and is gone: starting again"
                )),
                Some(existing) => match create::classify_existing(&existing, task) {
                    Existing::Ours => {
                        write_status(task, ctx, caches, &prev, created, None).await?;
                        return Ok(Action::await_change());
                    }
                    Existing::EarlierTask => Blocked::Wait(format!(
                        "pod {pod_name} of an earlier task with this name is still terminating"
                    )),
                    Existing::Foreign => Blocked::Refused {
                        stopped_reason: create::foreign_reason(&pod_name),
                        api_message: None,
                    },
                },
            },
            CreateFailure::Refused { stopped_reason } => Blocked::Refused {
                api_message: stopped_reason
                    .strip_prefix(&format!("{}: ", create::CANNOT_CREATE_POD))
                    .map(str::to_string),
                stopped_reason,
            },
            CreateFailure::Transient { message } => Blocked::Retry(message),
        },
    };
    not_created(task, ctx, caches, &prev, status, blocked).await
}

/// Why a task's pod was not created in this pass.
enum Blocked {
    /// Refused for good: the task fails to start. `api_message` is what the API server said.
    Refused {
        stopped_reason: String,
        api_message: Option<String>,
    },
    /// The name is held by an earlier task's pod on its way out: wait for it to go.
    Wait(String),
    /// The API server failed for now (throttled, unavailable, a webhook that cannot be called).
    Retry(String),
}

/// How often a task waiting for an earlier pod of its name looks again (that pod's deletion is not
/// an event of this task's: it belongs to another UID).
const WAIT_FOR_EARLIER_POD: Duration = Duration::from_secs(2);
/// How soon a create the API server failed for now is tried again.
const RETRY_CREATE: Duration = Duration::from_secs(10);

/// Records why the pod was not created: a refused task stops with `TaskFailedToStart`; a waiting or
/// retrying one says so in its Ready condition until it starts or its start timeout passes.
async fn not_created(
    task: &Task,
    ctx: &Context,
    caches: &Caches,
    prev: &TaskStatus,
    mut status: TaskStatus,
    blocked: Blocked,
) -> Result<Action, Error> {
    let generation = task.metadata.generation;
    let pod_name = task.name_any();
    let started_waiting = task
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or_else(k8s_openapi::jiff::Timestamp::now, |t| t.0);
    let waited =
        Duration::try_from(k8s_openapi::jiff::Timestamp::now().duration_since(started_waiting))
            .unwrap_or_default();
    let timeout = ctx.config.start_timeout;
    let (reason, message, again) = match blocked {
        Blocked::Refused {
            stopped_reason,
            api_message,
        } => {
            if let Some(api_message) = api_message {
                let note = format!("the API server refused pod {pod_name}: {api_message}");
                crate::apply::event(
                    &ctx.task_events,
                    task,
                    true,
                    "FailedCreate",
                    &note,
                    "Create",
                )
                .await;
            }
            fail_to_start(&mut status, stopped_reason, generation);
            write_status(task, ctx, caches, prev, status, None).await?;
            return Ok(Action::await_change());
        }
        Blocked::Wait(message) | Blocked::Retry(message) if waited >= timeout => {
            let why = format!(
                "Task did not start within {}s: {message}",
                timeout.as_secs()
            );
            fail_to_start(&mut status, why, generation);
            write_status(task, ctx, caches, prev, status, None).await?;
            return Ok(Action::await_change());
        }
        Blocked::Wait(message) => ("WaitingForEarlierPod", message, WAIT_FOR_EARLIER_POD),
        Blocked::Retry(message) => (
            "PodCreateFailed",
            format!("cannot create pod {pod_name} yet, retrying: {message}"),
            RETRY_CREATE,
        ),
    };
    let before = crate::conditions::get(&prev.conditions, "Ready").map(|c| c.reason.clone());
    crate::conditions::set(
        &mut status.conditions,
        "Ready",
        false,
        reason,
        &message,
        generation,
    );
    if before.as_deref() != Some(reason) {
        // Waiting for an earlier pod to go is expected after re-creating a task; a failing API is not.
        let warning = reason == "PodCreateFailed";
        crate::apply::event(&ctx.task_events, task, warning, reason, &message, "Create").await;
    }
    write_status(task, ctx, caches, prev, status, None).await?;
    // Never beyond the start timeout, which then fails the task.
    Ok(Action::requeue(
        again
            .min(timeout.saturating_sub(waited))
            .max(Duration::from_millis(100)),
    ))
}

/// A task that never started: STOPPED with `TaskFailedToStart` and why, in status and its condition.
fn fail_to_start(status: &mut TaskStatus, stopped_reason: String, generation: Option<i64>) {
    status.stop_code = Some(StopCode::TaskFailedToStart);
    status.last_status = Some(LastStatus::Stopped);
    status.desired_status = Some(DesiredStatus::Stopped);
    status.stopped_at = Some(crate::time::now());
    crate::conditions::set(
        &mut status.conditions,
        "Ready",
        false,
        StopCode::TaskFailedToStart.as_str(),
        stopped_reason.clone(),
        generation,
    );
    status.stopped_reason = Some(stopped_reason);
}

type Resolved = (String, i64, Arc<TaskDefinitionSpec>);

/// The task definition revision and its registered spec, or why the task must wait.
async fn resolve(
    task: &Task,
    caches: &Caches,
) -> Result<Result<Resolved, (&'static str, String)>, Error> {
    let ns = task.namespace().unwrap_or_default();
    // A service keeps starting tasks of the revision it runs even once it is deregistered (ECS).
    let in_use = owned_by_service(task)
        .then(|| TaskDefinitionRef::parse(&task.spec.task_definition)?.revision)
        .flatten();
    let (family, revision) =
        match caches
            .definitions
            .resolve(&ns, &task.spec.task_definition, in_use)
        {
            Ok(found) => found,
            Err(why) => return Ok(Err((why.reason, why.message))),
        };
    match caches.definitions.spec(&ns, &family, revision).await? {
        Some(spec) => Ok(Ok((family, revision, spec))),
        None => Ok(Err((
            "TaskDefinitionNotFound",
            format!("task definition {family}:{revision} not found in namespace {ns}"),
        ))),
    }
}

/// Writes the status when it changed (never otherwise) and publishes events for transitions. A new
/// pod's brief state waits for its next step instead (see `settle`): how long is returned.
async fn write_status(
    task: &Task,
    ctx: &Context,
    caches: &Caches,
    prev: &TaskStatus,
    mut status: TaskStatus,
    pod_age: Option<Duration>,
) -> Result<Option<Duration>, Error> {
    with_protection(task, &mut status);
    match settle::decide(task.status.as_ref(), &status, pod_age) {
        settle::Write::Unchanged => return Ok(None),
        settle::Write::After(wait) => return Ok(Some(wait)),
        settle::Write::Now => {}
    }
    events(task, ctx, prev, &status).await;
    match crate::apply::status(&ctx.client, task, STATUS_MANAGER, &status).await {
        Ok(written) => {
            if status.pod_name.is_some() {
                // Status records the pod now: no more expectation of it.
                caches.observed(task);
            }
            caches.wrote(task, written);
            Ok(None)
        }
        Err(e) => {
            if is_conflict(&e) {
                caches.forget_written(task);
            }
            Err(e.into())
        }
    }
}

/// `status.protection` and the `ScaleInProtection` condition from the task's annotation.
fn with_protection(task: &Task, status: &mut TaskStatus) {
    let protection = protection::Protection::read(
        task.metadata.annotations.as_ref(),
        k8s_openapi::jiff::Timestamp::now(),
    );
    status.protection = protection.status(task.status.as_ref().and_then(|s| s.protection.as_ref()));
    let had = crate::conditions::get(&status.conditions, PROTECTION_CONDITION).is_some();
    if let Some((ok, reason, message)) = protection.condition(had) {
        crate::conditions::set(
            &mut status.conditions,
            PROTECTION_CONDITION,
            ok,
            reason,
            message,
            task.metadata.generation,
        );
    }
}

/// The condition telling whether the task is protected from scale-in.
const PROTECTION_CONDITION: &str = "ScaleInProtection";

async fn events(task: &Task, ctx: &Context, prev: &TaskStatus, status: &TaskStatus) {
    let ready =
        |s: &TaskStatus| crate::conditions::get(&s.conditions, "Ready").map(|c| c.reason.clone());
    let mut publish = Vec::new();
    if status.last_status != prev.last_status {
        match status.last_status {
            Some(LastStatus::Running) => publish.push((
                EventType::Normal,
                "Running",
                format!(
                    "task {} is RUNNING ({})",
                    task.name_any(),
                    status.task_definition.clone().unwrap_or_default()
                ),
            )),
            Some(LastStatus::Stopped) => publish.push((
                if status.stop_code == Some(StopCode::TaskFailedToStart) {
                    EventType::Warning
                } else {
                    EventType::Normal
                },
                "Stopped",
                format!(
                    "task {} STOPPED ({}): {}",
                    task.name_any(),
                    status.stop_code.map(StopCode::as_str).unwrap_or_default(),
                    status.stopped_reason.clone().unwrap_or_default()
                ),
            )),
            _ => {}
        }
    }
    if let Some(c) = crate::conditions::get(&status.conditions, "Ready")
        && status.last_status == Some(LastStatus::Provisioning)
        && c.status == "False"
        && ready(status) != ready(prev)
        && c.reason.starts_with("TaskDefinition")
    {
        publish.push((
            EventType::Warning,
            "TaskDefinitionUnavailable",
            c.message.clone(),
        ));
    }
    let protection = |s: &TaskStatus| {
        crate::conditions::get(&s.conditions, PROTECTION_CONDITION).map(|c| c.reason.clone())
    };
    if protection(status).as_deref() == Some(protection::INVALID_REASON)
        && protection(prev) != protection(status)
        && let Some(c) = crate::conditions::get(&status.conditions, PROTECTION_CONDITION)
    {
        publish.push((
            EventType::Warning,
            protection::INVALID_REASON,
            c.message.clone(),
        ));
    }
    for (type_, reason, note) in publish {
        let warning = type_ == EventType::Warning;
        crate::apply::event(&ctx.task_events, task, warning, reason, &note, "Reconcile").await;
    }
}

/// Stopped standalone tasks are kept for the retention period (ECS: at least one hour), then deleted.
/// A service's stopped tasks are the service's to clean up.
async fn retain_or_delete(task: &Task, ctx: &Context) -> Result<Action, Error> {
    if owned_by_service(task) {
        return Ok(Action::await_change());
    }
    let stopped = task
        .status
        .as_ref()
        .and_then(|s| s.stopped_at.as_ref())
        .map(|t| t.0)
        .unwrap_or_else(k8s_openapi::jiff::Timestamp::now);
    let age = Duration::try_from(k8s_openapi::jiff::Timestamp::now().duration_since(stopped))
        .unwrap_or_default();
    let retention = ctx.config.stopped_task_retention;
    if age < retention {
        return Ok(Action::requeue(retention - age + Duration::from_secs(1)));
    }
    let api: Api<Task> = Api::namespaced(ctx.client.clone(), &task.namespace().unwrap_or_default());
    match api
        .delete(&task.name_any(), &DeleteParams::background())
        .await
    {
        Ok(_) => info!(task = %task.name_any(), "stopped task deleted after its retention period"),
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Action::await_change())
}

fn owned_by(pod: &Pod, task: &Task) -> bool {
    pod.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && Some(&o.uid) == task.meta().uid.as_ref())
}

fn owned_by_service(task: &Task) -> bool {
    task.owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.kind == Service::kind(&()))
}
