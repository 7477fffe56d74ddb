//! The Service controller's I/O: reads the service, its tasks and the nodes, asks [`super::plan`] what
//! to do, and does it — creating and stopping Tasks, applying the load balancer Services, writing status
//! (only when it changed) and publishing ECS-worded events.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Service as KubeService};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use tracing::{info, warn};

use super::build;
use super::cache::{self, Caches};
use super::digests;
use super::eligibility::Eligibility;
use super::expect::Wrote;
use super::placed;
use super::plan::{self, HealthInputs, Input, Percents, TaskView, resolve_health};
use super::retention::{self, Retention};
use crate::api::service::{Deployment, RolloutState, ServiceEvent, ServiceState, ServiceStatus};
use crate::api::task::LastStatus;
use crate::api::{Service, Task, TaskDefinition, TaskDefinitionSpec};
use crate::conditions;
use crate::context::Context;
use crate::controller::Kind;
use crate::controller::decode::Decoded;
use crate::controller::frame::Frame;
use crate::error::{Error, is_conflict, is_not_found};
use crate::labels;
use crate::task_definition::revision::TaskDefinitionRef;

const STATUS_MANAGER: &str = "ecs-operator/service-status";
const TASK_MANAGER: &str = "ecs-operator/service-tasks";
const LB_MANAGER: &str = "ecs-operator/service-load-balancers";
/// ECS keeps the latest 100 service events; status keeps fewer (all are also Kubernetes Events).
const STATUS_EVENTS: usize = 50;

/// Runs the controller for `services` (one namespace, or all) until `shutdown` resolves.
pub async fn run(
    services: Api<Decoded<Service>>,
    tasks: Api<Decoded<Task>>,
    lbs: Api<KubeService>,
    task_definitions: Api<Decoded<TaskDefinition>>,
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let frame = Frame::new(
        Kind::new("service", true, |ctx| &ctx.service_events),
        services,
        ctx.clone(),
    );
    let store = frame.store();
    // Lifecycle hook tasks carry no service label: their own watch wakes the Service (their owner)
    // when one stops.
    let hook_tasks = frame
        .watch(
            &tasks,
            watcher::Config::default().labels(labels::LIFECYCLE_HOOK_OF),
        )
        .touched_objects();
    // Decisions read these caches, not the API: every task with a service label (what a service's
    // reconcile used to list), the operator's load balancer Services, the task definitions.
    let (task_store, task_writer) = reflector::store();
    let tasks = frame
        .watch(&tasks, watcher::Config::default().labels(labels::SERVICE))
        .modify(crate::controller::trim::decoded)
        .reflect(task_writer)
        .touched_objects();
    let (lb_store, lb_writer) = reflector::store();
    let lbs = frame
        .watch(
            &lbs,
            watcher::Config::default().labels(labels::MANAGED_SELECTOR),
        )
        .modify(cache::trim_lb)
        .reflect(lb_writer)
        .touched_objects();
    let (td_store, td_writer) = reflector::store();
    let task_definitions = frame
        .watch(&task_definitions, watcher::Config::default())
        .modify(crate::controller::trim::decoded)
        .reflect(td_writer)
        .touched_objects();
    let caches = Arc::new(Caches::new(task_store, lb_store, td_store));
    let node_api = Api::<Node>::all(ctx.client.clone());
    let nodes = super::fanout::triggers(
        frame.watch(&node_api, watcher::Config::default()),
        store.clone(),
        caches.clone(),
    );
    {
        let (store, ctx, caches) = (store.clone(), ctx.clone(), caches.clone());
        tokio::spawn(async move {
            crate::context::wait_synced(&store).await;
            // Keep the deployments-by-rolloutState gauge current.
            loop {
                caches.retain(&store.state());
                let mut counts = BTreeMap::<String, i64>::new();
                for svc in store.state() {
                    let Some(svc) = crate::controller::decoded(&svc) else {
                        continue;
                    };
                    for d in svc.status.iter().flat_map(|s| &s.deployments) {
                        let state = d.rollout_state.map_or("UNKNOWN", RolloutState::as_str);
                        *counts.entry(state.to_string()).or_default() += 1;
                    }
                }
                crate::admin::Metrics::set_states(&ctx.admin.metrics.deployments, counts);
                tokio::time::sleep(Duration::from_secs(10)).await;
            }
        });
    }
    let by_family = store;
    let synced = {
        let caches = caches.clone();
        async move { caches.wait_synced().await }
    };
    frame
        .triggers(|c| {
            c.owns_stream(tasks)
                .owns_stream(lbs)
                .owns_stream(hook_tasks)
                // A new revision of the family a service follows starts a deployment.
                .watches_stream(task_definitions, move |td: Decoded<TaskDefinition>| {
                    let family = td.name_any();
                    let ns = td.namespace();
                    by_family
                        .state()
                        .into_iter()
                        .filter(move |s| {
                            crate::controller::decoded(s).is_some_and(|s| {
                                s.namespace() == ns
                                    && TaskDefinitionRef::parse(&s.spec.task_definition)
                                        .is_some_and(|r| r.family == family)
                            })
                        })
                        .map(|s| ObjectRef::from_obj(s.as_ref()))
                        .collect::<Vec<_>>()
                })
                // Nodes coming and going change zones and daemon placements: only the services a
                // node event can affect are reconciled (`fanout`).
                .reconcile_on(nodes)
        })
        .run(synced, shutdown, move |svc, ctx| {
            reconcile(svc, ctx, caches.clone())
        })
        .await;
}

async fn reconcile(
    cached: Arc<Service>,
    ctx: Arc<Context>,
    caches: Arc<Caches>,
) -> Result<Action, Error> {
    if !caches.synced() {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let ns = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    // Decide on the cache, or on this controller's last status write while the cache lags it: the
    // breaker state and deployments in status must not go back in time.
    let svc = caches.service_to_decide_on(&cached);
    if svc.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let prev = svc.status.clone().unwrap_or_default();
    let mut problems: Vec<(&'static str, String)> = Vec::new();

    // The task definition the service asks for now; while it cannot be resolved, the service keeps
    // what its PRIMARY deployment runs.
    let mut specs = RevisionSpecs::new(&ctx, &caches, &ns);
    let target = match resolve(&svc, &caches) {
        Ok(target) => Some(target),
        Err((reason, message)) => {
            problems.push((reason, message));
            prev.deployments.first().map(|d| d.task_definition.clone())
        }
    };
    let Some(target) = target else {
        return finish(
            &svc,
            &ctx,
            &caches,
            &prev,
            status(&svc, &prev, None, problems),
            Some(Duration::from_secs(60)),
        )
        .await;
    };

    // Tasks of this service, from the cache with what this controller wrote and the cache has not
    // shown yet: counts decide how many more to start.
    let tasks_api: Api<Task> = Api::namespaced(ctx.client.clone(), &ns);
    let mut seen = Vec::new();
    // Tasks with this service's label that it does not control (e.g. left by an earlier service of
    // the same name deleted with --cascade=orphan) are never adopted, but their names are taken; so
    // are those of tasks that do not decode.
    let mut taken = BTreeSet::new();
    for t in caches.tasks_of(&svc) {
        match &t.0 {
            Ok(t) if build::controlled_by(t.as_ref(), &svc) => seen.push(t.clone()),
            _ => {
                taken.insert(t.name_any());
            }
        }
    }
    let tasks = caches.merged(&svc, seen);
    let now = crate::time::now().0;
    let grace = Duration::from_secs(
        svc.spec
            .health_check_grace_period_seconds
            .unwrap_or(0)
            .max(0) as u64,
    );
    let Views {
        views,
        healthy_targets,
        recheck,
    } = task_views(&tasks, &mut specs, &ctx, grace, now).await?;

    // Nodes count for the service only if its tasks can run there: the service's constraints and the
    // task definition's own (constraints, runtimePlatform), of the definition the PRIMARY will run.
    let force = svc
        .spec
        .force_new_deployment
        .as_ref()
        .map(|v| serde_json::to_string(&v.0).unwrap_or_default());
    let running = primary_definition(&prev.deployments, &target, force.as_deref(), now);
    let definition = specs.get(&running).await?;
    let eligibility = Eligibility::new(
        svc.spec
            .placement_constraints
            .as_deref()
            .unwrap_or_default(),
        definition.as_deref(),
        &build::selector(&svc),
    );
    if let Err(e) = &eligibility {
        problems.push(("InvalidPlacement", e.clone()));
    }
    let all_nodes = ctx.nodes.state();
    let eligible = eligibility
        .as_ref()
        .map(|e| e.split(all_nodes.iter().map(|n| n.as_ref())))
        .unwrap_or_default();
    // Lifecycle hooks of the stage the PRIMARY is in: their verdict holds or fails the stage.
    let hooks = super::hook_stage::run(&ctx, &svc, &prev.deployments, now).await?;
    problems.extend(hooks.problem.clone());
    let input = Input {
        service: name.clone(),
        scheduling: svc.spec.scheduling_strategy,
        desired_count: svc.spec.desired_count.unwrap_or(0),
        percents: Percents::resolve(
            svc.spec.scheduling_strategy,
            svc.spec.deployment_configuration.as_ref(),
        ),
        task_definition: target.clone(),
        force_new_deployment: force,
        deployments: prev.deployments.clone(),
        tasks: views,
        zones: eligible.zones,
        nodes: eligible.nodes,
        unavailable_nodes: eligible.unavailable,
        circuit_breaker: svc
            .spec
            .deployment_configuration
            .as_ref()
            .and_then(|d| d.deployment_circuit_breaker.clone())
            .unwrap_or_default(),
        az_rebalancing: super::az_rebalancing::effective(&svc.spec)
            == crate::api::service::AvailabilityZoneRebalancing::Enabled,
        zone_spread: super::az_rebalancing::spreads_zones_first(&svc.spec),
        previously_steady: conditions::get(&prev.conditions, "Ready")
            .is_some_and(|c| c.status == "True"),
        now,
        stop_request: stop_request(&svc),
        handled_stop_request: prev.handled_stop_request.clone(),
        strategy: match svc.spec.scheduling_strategy {
            crate::api::service::SchedulingStrategy::Replica => {
                super::strategy::Settings::from_config(
                    svc.spec.deployment_configuration.as_ref(),
                    ctx.config.deployment_minute,
                )
            }
            crate::api::service::SchedulingStrategy::Daemon => None,
        },
        hooks: hooks.verdicts.clone(),
    };
    let plan = if eligibility.is_ok() {
        Some(plan::plan(&input))
    } else {
        None
    };
    if let Some(why) = plan.as_ref().and_then(|p| p.stop_request_rejected.clone()) {
        problems.push(("InvalidStopRequest", why));
    }
    let cleanup = retention::select(
        &input.tasks,
        plan.as_ref()
            .map_or(input.desired_count, |p| p.desired_count)
            .try_into()
            .unwrap_or(0),
        Retention {
            keep_for: ctx.config.stopped_task_retention,
            min_bound: ctx.config.stopped_service_tasks_kept,
        },
        now,
    );

    // A deployment this pass creates is recorded in status before any of its tasks exists: a crash
    // in between would otherwise leave tasks of a deployment nobody knows, to be stopped and
    // started again under the next id. The next pass (this status write wakes it) acts.
    let recording = plan.as_ref().is_some_and(|p| {
        p.starts
            .iter()
            .any(|s| !prev.deployments.iter().any(|d| d.id == s.deployment))
    });
    // Traffic first (BLUE_GREEN, LINEAR, CANARY): a rollback moves production back to blue before green's
    // tasks stop, and pods carry the labels the load balancer selectors below ask for.
    let traffic = plan.as_ref().and_then(|p| p.traffic.clone());
    if let Some(t) = &traffic {
        super::traffic::label_pods(&ctx.client, &svc, &tasks, t).await?;
    }

    // Load balancers and service registry, for what the PRIMARY runs.
    let primary_td = plan
        .as_ref()
        .map(|p| p.primary().task_definition.clone())
        .unwrap_or(target);
    let mut target_groups = Vec::new();
    if let Some(spec) = specs.get(&primary_td).await? {
        match build::kube_services(&svc, &spec, traffic.as_ref()) {
            Ok(wanted) => {
                target_groups = wanted
                    .iter()
                    .filter(|k| {
                        k.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) != Some("None")
                    })
                    .map(|k| k.name_any())
                    .collect();
                let conflicts = apply_load_balancers(&svc, &ctx, &caches, wanted).await?;
                target_groups.retain(|g| !conflicts.contains(g));
                if !conflicts.is_empty() {
                    problems.push((
                        "LoadBalancerNameConflict",
                        format!(
                            "Kubernetes Service {} already exists and is not managed by service {name}: it was left untouched; delete it or choose another name in loadBalancers/serviceRegistries",
                            conflicts.join(", ")
                        ),
                    ));
                }
            }
            Err(why) => problems.push(("InvalidLoadBalancer", why)),
        }
    }
    // Listener rules that are Gateway API HTTPRoutes get the split as weights.
    if let Some(t) = &traffic {
        problems.extend(super::routes::shift(&ctx.client, &svc, t).await?);
    }

    // Act: stop first (frees room under maximumPercent in a later pass), then start.
    let started = match &plan {
        Some(_) if recording => Vec::new(),
        Some(plan) => {
            let acted = act(
                &svc,
                &caches,
                &tasks_api,
                &tasks,
                &taken,
                plan,
                &cleanup.delete,
            )
            .await?;
            if !acted.foreign.is_empty() {
                problems.push((
                    "TaskNameConflict",
                    format!(
                        "Tasks {} exist and do not belong to service {name}: they were left untouched and other names used",
                        acted.foreign.join(", ")
                    ),
                ));
            }
            acted.started
        }
        None => Vec::new(),
    };

    let mut next = status(&svc, &prev, plan.as_ref(), problems);
    // Tasks the scheduler cannot place: the TasksPlaced condition, and the ECS event once per episode.
    let placements: Vec<placed::Placement> =
        tasks.iter().filter_map(|t| placed::of_task(t)).collect();
    let verdict = placed::decide(
        &placements,
        conditions::get(&prev.conditions, placed::CONDITION),
    );
    placed::set_condition(&mut next.conditions, &verdict, svc.metadata.generation);
    pin_images(&mut next.deployments, &tasks, &mut specs).await?;
    if let Some((id, details)) = &hooks.details
        && let Some(d) = next.deployments.iter_mut().find(|d| &d.id == id)
    {
        d.lifecycle_hook_details.clone_from(details);
    }
    // Healthy tasks are the ready endpoints of the load balancer Services: report what changed.
    let mut target_events = Vec::new();
    if !target_groups.is_empty() {
        next.registered_targets = Some(healthy_targets);
        let before = prev.registered_targets.unwrap_or(0);
        for group in &target_groups {
            if healthy_targets > before {
                target_events.push(format!(
                    "(service {name}) registered {} targets in (target-group {group})",
                    healthy_targets - before
                ));
            } else if healthy_targets < before {
                target_events.push(format!(
                    "(service {name}) deregistered {} targets in (target-group {group})",
                    before - healthy_targets
                ));
            }
        }
    } else {
        next.registered_targets = None;
    }
    if let Some(plan) = &plan {
        let mut messages = Vec::new();
        for (warning, reason, message) in &hooks.events {
            publish(&ctx, &svc, *warning, reason, message).await;
            messages.push(message.clone());
        }
        for event in &plan.events {
            // Nothing was started or stopped in a recording pass: the next pass says so.
            if recording
                && matches!(
                    event,
                    plan::Event::StartedTasks | plan::Event::StoppedTasks { .. }
                )
            {
                continue;
            }
            let message = event.message(&name, &started);
            publish(&ctx, &svc, event.is_warning(), event.reason(), &message).await;
            messages.push(message);
        }
        if let placed::Verdict::Unplaceable { reason, new: true } = &verdict {
            let event = plan::Event::NoContainerInstance {
                reason: reason.clone(),
            };
            let message = event.message(&name, &[]);
            publish(&ctx, &svc, event.is_warning(), event.reason(), &message).await;
            messages.push(message);
        }
        for message in target_events {
            let reason = if message.contains(" registered ") {
                "TargetsRegistered"
            } else {
                "TargetsDeregistered"
            };
            publish(&ctx, &svc, false, reason, &message).await;
            messages.push(message);
        }
        let mut new_events: Vec<ServiceEvent> = messages
            .into_iter()
            .enumerate()
            .map(|(i, message)| ServiceEvent {
                id: format!("{}-{i}", now.as_second()),
                created_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
                message,
            })
            .collect();
        new_events.reverse();
        new_events.extend(prev.events.iter().cloned());
        new_events.truncate(STATUS_EVENTS);
        next.events = new_events;
    }
    let again = match &plan {
        Some(p) if !p.steady => Some(p.retry_after.unwrap_or(Duration::from_secs(10))),
        Some(p) => p.retry_after.or(recheck),
        None => Some(Duration::from_secs(60)),
    };
    // A kept stopped task is deleted once its retention ends.
    let recheck = match (recheck, cleanup.next) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let again = match (again, recheck) {
        (Some(a), Some(r)) => Some(a.min(r)),
        (a, r) => a.or(r),
    };
    let again = match (again, hooks.wake) {
        (Some(a), Some(w)) => Some(a.min(w)),
        (a, w) => a.or(w),
    };
    // What task scale-in protection held back may go once it expires.
    let expiry = plan
        .as_ref()
        .and_then(|p| p.protection_expires_at)
        .map(|until| {
            Duration::try_from(until.duration_since(now)).unwrap_or_default()
                + Duration::from_secs(1)
        });
    let again = match (again, expiry) {
        (Some(a), Some(e)) => Some(a.min(e)),
        (a, e) => a.or(e),
    };
    let wake = plan.as_ref().and_then(|p| p.wake_after);
    let again = match (again, wake) {
        (Some(a), Some(w)) => Some(a.min(w + Duration::from_millis(100))),
        (a, w) => a.or(w),
    };
    let again = if recording {
        Some(Duration::from_millis(100))
    } else {
        again
    };
    caches.summarize(
        &svc,
        eligibility
            .as_ref()
            .map_or(true, |e| *e != Eligibility::default()),
        &tasks,
    );
    finish(&svc, &ctx, &caches, &prev, next, again).await
}

/// The planner's view of each task, how many are healthy load balancer targets, and when health may
/// change with time alone.
struct Views {
    views: Vec<TaskView>,
    healthy_targets: i32,
    recheck: Option<Duration>,
}

async fn task_views(
    tasks: &[Arc<Task>],
    specs: &mut RevisionSpecs<'_>,
    ctx: &Context,
    grace: Duration,
    now: k8s_openapi::jiff::Timestamp,
) -> Result<Views, Error> {
    let mut recheck: Option<Duration> = None;
    let mut healthy_targets = 0;
    let mut views = Vec::new();
    for t in tasks {
        let td_ref = t
            .status
            .as_ref()
            .and_then(|s| s.task_definition.clone())
            .unwrap_or_else(|| t.spec.task_definition.clone());
        let has_health_check = specs.get(&td_ref).await?.is_some_and(|spec| {
            spec.container_definitions
                .iter()
                .any(|c| c.essential != Some(false) && c.health_check.is_some())
        });
        let st = t.status.as_ref();
        let running_since = st
            .filter(|s| s.last_status == Some(LastStatus::Running))
            .and_then(|s| s.started_at.as_ref())
            .map(|t| t.0);
        let healthy_since = st
            .and_then(|s| conditions::get(&s.conditions, "Ready"))
            .filter(|c| c.status == "True")
            .map(|c| c.last_transition_time.0);
        let (health, again) = resolve_health(
            &HealthInputs {
                running_since,
                has_health_check,
                health_status: st.and_then(|s| s.health_status),
                healthy_since,
                grace_period: grace,
                healthy_after_running: Some(ctx.config.healthy_after_running),
            },
            now,
        );
        if let Some(again) = again {
            recheck = Some(recheck.map_or(again, |r| r.min(again)));
        }
        if matches!(health, plan::Health::Healthy { .. })
            && t.spec.desired_status == Default::default()
        {
            healthy_targets += 1;
        }
        let created = t.metadata.creation_timestamp.as_ref().map_or(now, |t| t.0);
        views.push(TaskView::from_task(t, health, created));
    }

    Ok(Views {
        views,
        healthy_targets,
        recheck,
    })
}

/// What [`act`] did.
struct Acted {
    /// The tasks started.
    started: Vec<String>,
    /// Task names taken by Tasks this service does not control (skipped).
    foreign: Vec<String>,
}

/// How many names one start tries past names taken by others.
const NAME_TRIES: usize = 10;

/// Carries out a plan: stops (desiredStatus STOPPED with the reason), then starts (new Tasks with
/// deterministic names, skipping names `taken` by Tasks it does not control), then deletes the
/// stopped tasks past their retention (`expired`).
async fn act(
    svc: &Service,
    caches: &Caches,
    tasks_api: &Api<Task>,
    tasks: &[Arc<Task>],
    taken: &BTreeSet<String>,
    plan: &plan::Plan,
    expired: &[String],
) -> Result<Acted, Error> {
    let mut started = Vec::new();
    for stop in &plan.stops {
        let patch =
            serde_json::json!({"spec": {"desiredStatus": "STOPPED", "reason": stop.reason}});
        match tasks_api
            .patch(
                &stop.task,
                &PatchParams {
                    field_manager: Some(TASK_MANAGER.into()),
                    ..Default::default()
                },
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(stopped) => caches.wrote_task(svc, &stop.task, Wrote::Updated(stopped)),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut used: BTreeSet<String> = tasks.iter().map(|t| t.name_any()).collect();
    used.extend(taken.iter().cloned());
    let mut creates = Vec::with_capacity(plan.starts.len());
    for start in &plan.starts {
        let index = (0..)
            .find(|i| !used.contains(&build::task_name(svc, &start.deployment, *i)))
            .expect("an unused index exists");
        used.insert(build::task_name(svc, &start.deployment, index));
        creates.push((start, index));
    }
    // Batches of 1, 2, 4, …: a refused create (quota, admission, a bad spec) ends the pass after a
    // few requests instead of thousands; what is left is planned again on the next pass.
    let params = PostParams {
        field_manager: Some(TASK_MANAGER.into()),
        ..Default::default()
    };
    let foreign = std::sync::Mutex::new(Vec::new());
    let (created, failed) = crate::controller::slow_start::run(creates, 1, |(start, index)| {
        let (params, foreign) = (&params, &foreign);
        async move {
            let mut skipped = false;
            for i in index..index + NAME_TRIES {
                let name = build::task_name(svc, &start.deployment, i);
                match tasks_api
                    .create(
                        params,
                        &with_pinned_images(
                            build::task(svc, start, name.clone()),
                            &plan.deployments,
                            &start.deployment,
                        ),
                    )
                    .await
                {
                    Ok(created) => {
                        caches.wrote_task(svc, &name, Wrote::Created(created));
                        return Ok(Some(name));
                    }
                    // The name is deterministic: a duplicate create (a replay from a view the
                    // cache had not caught up with) is refused, and only then is the task read.
                    Err(e) if is_conflict(&e) => match tasks_api.get_opt(&name).await? {
                        // Ours under the name planned: a replay from a stale view; counted from
                        // now on. Past a skipped name, it is another start's of this pass.
                        Some(t) if build::controlled_by(&t, svc) && !skipped => {
                            caches.wrote_task(svc, &name, Wrote::Created(t));
                            return Ok(None);
                        }
                        Some(t) if build::controlled_by(&t, svc) => {}
                        // Someone else's: never touched; the next name is tried.
                        Some(_) => {
                            foreign.lock().expect("not poisoned").push(name);
                            skipped = true;
                        }
                        None => return Ok(None),
                    },
                    Err(e) => return Err(e),
                }
            }
            Ok(None)
        }
    })
    .await;
    started.extend(created.into_iter().flatten());
    if let Some(e) = failed {
        warn!(service = %svc.name_any(), started = started.len(), planned = plan.starts.len(), error = %e, "task creation failed; the rest is left for the next pass");
        return Err(e.into());
    }
    if !plan.starts.is_empty() || !plan.stops.is_empty() {
        info!(service = %svc.name_any(), started = plan.starts.len(), stopped = plan.stops.len(), "planned");
    }
    delete_stopped(svc, caches, tasks_api, expired).await?;
    let mut foreign = foreign.into_inner().expect("not poisoned");
    foreign.sort();
    foreign.dedup();
    Ok(Acted { started, foreign })
}

/// The task definition the PRIMARY deployment runs once this pass has followed the service's
/// (the planner's own rule: a definition the circuit breaker rolled back from is not followed).
fn primary_definition(
    deployments: &[Deployment],
    target: &str,
    force: Option<&str>,
    now: k8s_openapi::jiff::Timestamp,
) -> String {
    let mut deployments = plan::deployments::normalize(deployments.to_vec());
    plan::deployments::follow_target(&mut deployments, target, force, 0, now);
    deployments
        .first()
        .map_or_else(|| target.to_owned(), |d| d.task_definition.clone())
}

/// ECS versionConsistency: records, on each deployment not pinned yet, the image digests of its
/// first RUNNING task (or, for a rollback, those of the deployment it returns to).
async fn pin_images(
    deployments: &mut [Deployment],
    tasks: &[Arc<Task>],
    specs: &mut RevisionSpecs<'_>,
) -> Result<(), Error> {
    for i in 0..deployments.len() {
        if !deployments[i].pinned_images.is_empty() {
            continue;
        }
        if let Some(pins) = digests::inherited(&deployments[i], deployments).cloned() {
            deployments[i].pinned_images = pins;
            continue;
        }
        let d = &deployments[i];
        let Some(spec) = specs.get(&d.task_definition).await? else {
            continue;
        };
        let first = tasks
            .iter()
            .filter(|t| t.spec.started_by.as_deref() == Some(d.id.as_str()))
            .filter_map(|t| {
                let pins = digests::pins_from_task(&spec, t.status.as_ref()?)?;
                Some((t.metadata.creation_timestamp.as_ref().map(|c| c.0), pins))
            })
            .min_by_key(|(created, _)| *created);
        if let Some((_, pins)) = first {
            deployments[i].pinned_images = pins;
        }
    }
    Ok(())
}

/// A new task of `deployment` runs the images the deployment pinned (ECS versionConsistency).
fn with_pinned_images(mut task: Task, deployments: &[Deployment], deployment: &str) -> Task {
    let Some(d) = deployments.iter().find(|d| d.id == deployment) else {
        return task;
    };
    let pins = Some(&d.pinned_images)
        .filter(|p| !p.is_empty())
        .or_else(|| digests::inherited(d, deployments));
    if let Some(pins) = pins.filter(|p| !p.is_empty()) {
        task.annotations_mut().insert(
            labels::PINNED_IMAGES.to_string(),
            serde_json::to_string(pins).expect("serializable"),
        );
    }
    task
}

/// The stop request the service's annotations make (ECS StopServiceDeployment), if any.
fn stop_request(svc: &Service) -> Option<plan::StopRequest> {
    let annotations = svc.metadata.annotations.as_ref()?;
    let deployment = annotations.get(labels::STOP_DEPLOYMENT)?.trim();
    Some(plan::StopRequest {
        deployment: deployment.to_string(),
        stop_type: annotations
            .get(labels::STOP_DEPLOYMENT_TYPE)
            .map(|t| t.trim().to_string()),
    })
}

/// The status for this pass.
fn status(
    svc: &Service,
    prev: &ServiceStatus,
    plan: Option<&plan::Plan>,
    problems: Vec<(&'static str, String)>,
) -> ServiceStatus {
    let generation = svc.metadata.generation;
    let mut s = ServiceStatus {
        observed_generation: generation,
        availability_zone_rebalancing: Some(super::az_rebalancing::effective(&svc.spec)),
        status: Some(ServiceState::Active),
        selector: Some(build::selector_string(svc)),
        events: prev.events.clone(),
        conditions: prev.conditions.clone(),
        ..prev.clone()
    };
    if let Some(plan) = plan {
        s.desired_count = Some(plan.desired_count);
        s.running_count = plan.running_count;
        s.pending_count = plan.pending_count;
        s.deployments = plan.deployments.clone();
        s.task_definition = Some(plan.primary().task_definition.clone());
        s.rollout_state = plan.primary().rollout_state;
        s.handled_stop_request
            .clone_from(&plan.handled_stop_request);
    }
    let steady = plan.is_some_and(|p| p.steady) && problems.is_empty();
    // The newest deployment FAILED: the service is not running what it asks for (the PRIMARY
    // itself, or a BLUE_GREEN/LINEAR/CANARY deployment rolled back to blue).
    let newest = s
        .deployments
        .iter()
        .max_by_key(|d| plan::deployments::deployment_number(&d.id));
    let failed = newest.is_some_and(|d| d.rollout_state == Some(RolloutState::Failed));
    let in_progress = s.rollout_state == Some(RolloutState::InProgress);
    let c = &mut s.conditions;
    if steady {
        conditions::set(
            c,
            "Ready",
            true,
            "SteadyState",
            "the service has reached a steady state",
            generation,
        );
    } else if let Some((reason, message)) = problems.first() {
        conditions::set(c, "Ready", false, reason, message.clone(), generation);
    } else {
        conditions::set(
            c,
            "Ready",
            false,
            "Deploying",
            "tasks are being started or stopped",
            generation,
        );
    }
    conditions::set(
        c,
        "Progressing",
        in_progress,
        if in_progress {
            "DeploymentInProgress"
        } else {
            "NoDeploymentInProgress"
        },
        s.deployments
            .first()
            .map(progress_message)
            .unwrap_or_default(),
        generation,
    );
    match (problems.first(), failed) {
        (Some((reason, message)), _) => {
            conditions::set(c, "Degraded", true, reason, message.clone(), generation)
        }
        (None, true) => conditions::set(
            c,
            "Degraded",
            true,
            "DeploymentFailed",
            newest
                .and_then(|d| d.rollout_state_reason.clone())
                .unwrap_or_default(),
            generation,
        ),
        (None, false) => conditions::set(c, "Degraded", false, "AsExpected", "", generation),
    }
    s
}

/// The Progressing message: the PRIMARY's rolloutStateReason, and its lifecycle stage if it has one.
fn progress_message(d: &Deployment) -> String {
    let reason = d.rollout_state_reason.clone().unwrap_or_default();
    match (&d.lifecycle_stage, d.rollout_state) {
        (Some(stage), Some(RolloutState::InProgress)) => {
            format!("{reason} Lifecycle stage {stage}.")
        }
        _ => reason,
    }
}

async fn finish(
    svc: &Service,
    ctx: &Context,
    caches: &Caches,
    prev: &ServiceStatus,
    status: ServiceStatus,
    again: Option<Duration>,
) -> Result<Action, Error> {
    let degraded = |s: &ServiceStatus| {
        conditions::get(&s.conditions, "Degraded")
            .filter(|c| c.status == "True")
            .map(|c| c.reason.clone())
    };
    if let Some(reason) = degraded(&status).filter(|r| Some(r) != degraded(prev).as_ref()) {
        let message = conditions::get(&status.conditions, "Degraded")
            .map(|c| c.message.clone())
            .unwrap_or_default();
        publish(ctx, svc, true, &reason, &message).await;
    }
    if svc.status.as_ref() != Some(&status) {
        let written = crate::apply::status(&ctx.client, svc, STATUS_MANAGER, &status).await?;
        caches.wrote_status(svc, written.resource_version(), &status);
    }
    Ok(again.map_or_else(Action::await_change, Action::requeue))
}

/// The `family:revision` the service asks for now, or why it cannot have it.
fn resolve(svc: &Service, caches: &Caches) -> Result<String, (&'static str, String)> {
    let ns = svc.namespace().unwrap_or_default();
    // The revision the PRIMARY runs stays usable when it is deregistered (ECS).
    let primary = svc
        .status
        .as_ref()
        .and_then(|s| s.deployments.first())
        .and_then(|d| TaskDefinitionRef::parse(&d.task_definition));
    let in_use = primary
        .filter(|p| {
            TaskDefinitionRef::parse(&svc.spec.task_definition)
                .is_some_and(|r| r.family == p.family)
        })
        .and_then(|p| p.revision);
    caches
        .resolve(&ns, &svc.spec.task_definition, in_use)
        .map(|(family, revision)| format!("{family}:{revision}"))
        .map_err(|why| (why.reason, why.message))
}

/// Applies the wanted load balancer Services and deletes this service's others. A name held by a
/// Service this ECS Service does not control is left untouched: the names returned.
async fn apply_load_balancers(
    svc: &Service,
    ctx: &Context,
    caches: &Caches,
    wanted: Vec<KubeService>,
) -> Result<Vec<String>, Error> {
    let ns = svc.namespace().unwrap_or_default();
    let api: Api<KubeService> = Api::namespaced(ctx.client.clone(), &ns);
    let existing = caches.lbs_of(svc);
    let names: BTreeSet<String> = wanted
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    let mut conflicts = Vec::new();
    for lb in wanted {
        let name = lb.name_any();
        // Ours only if we control it: labels can be copied, the controller UID cannot.
        let current = match existing.iter().find(|e| e.name_any() == name) {
            Some(found) => Some(found.clone()),
            None => api.get_opt(&name).await?,
        };
        match current {
            Some(current) if !build::controlled_by(&current, svc) => {
                conflicts.push(name);
            }
            Some(current) if same_service(&current, &lb) => {}
            Some(current) => {
                // The resourceVersion makes the apply a precondition: if the object was replaced in
                // between (deleted and created by someone else), this fails instead of taking it.
                let mut body = serde_json::to_value(&lb).expect("serializable");
                body["apiVersion"] = "v1".into();
                body["kind"] = "Service".into();
                body["metadata"]["resourceVersion"] = current.resource_version().into();
                api.patch(
                    &name,
                    &PatchParams::apply(LB_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await?;
            }
            None => {
                // Create, never apply, a Service that does not exist: an apply would take over one
                // created by someone else a moment ago, a create fails with 409 instead.
                match api
                    .create(
                        &PostParams {
                            field_manager: Some(LB_MANAGER.into()),
                            ..Default::default()
                        },
                        &lb,
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_conflict(&e) => match api.get_opt(&name).await? {
                        Some(current) if !build::controlled_by(&current, svc) => {
                            conflicts.push(name);
                        }
                        _ => return Err(e.into()),
                    },
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    for old in existing
        .iter()
        .filter(|e| !names.contains(&e.name_any()) && build::controlled_by(*e, svc))
    {
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: old.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&old.name_any(), &dp).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) || is_conflict(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(conflicts)
}

/// Whether an existing Service already has what we would apply (so a converged service writes nothing).
fn same_service(existing: &KubeService, wanted: &KubeService) -> bool {
    let (Some(e), Some(w)) = (&existing.spec, &wanted.spec) else {
        return false;
    };
    let ports = |s: &k8s_openapi::api::core::v1::ServiceSpec| {
        s.ports
            .iter()
            .flatten()
            .map(|p| {
                (
                    p.name.clone(),
                    p.port,
                    p.target_port.clone(),
                    p.protocol.clone(),
                    p.app_protocol.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    e.selector == w.selector
        && e.type_.as_deref().unwrap_or("ClusterIP") == w.type_.as_deref().unwrap_or("ClusterIP")
        && ports(e) == ports(w)
        && (w.cluster_ip.as_deref() != Some("None") || e.cluster_ip.as_deref() == Some("None"))
}

/// Deletes the stopped tasks [`retention::select`] chose.
async fn delete_stopped(
    svc: &Service,
    caches: &Caches,
    api: &Api<Task>,
    names: &[String],
) -> Result<(), Error> {
    for name in names {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => caches.wrote_task(svc, name, Wrote::Deleted),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Registered specs by `family:revision`, looked up once per pass (from [`Caches`]).
struct RevisionSpecs<'a> {
    ctx: &'a Context,
    caches: &'a Caches,
    ns: &'a str,
    cache: HashMap<String, Option<Arc<TaskDefinitionSpec>>>,
}

impl<'a> RevisionSpecs<'a> {
    fn new(ctx: &'a Context, caches: &'a Caches, ns: &'a str) -> Self {
        Self {
            ctx,
            caches,
            ns,
            cache: HashMap::new(),
        }
    }

    async fn get(&mut self, reference: &str) -> Result<Option<Arc<TaskDefinitionSpec>>, Error> {
        if let Some(spec) = self.cache.get(reference) {
            return Ok(spec.clone());
        }
        let spec = match TaskDefinitionRef::parse(reference) {
            Some(TaskDefinitionRef {
                family,
                revision: Some(revision),
            }) => {
                self.caches
                    .registered_spec(self.ctx, self.ns, &family, revision)
                    .await?
            }
            _ => None,
        };
        self.cache.insert(reference.to_string(), spec.clone());
        Ok(spec)
    }
}

async fn publish(ctx: &Context, svc: &Service, warning: bool, reason: &str, message: &str) {
    crate::apply::event(
        &ctx.service_events,
        svc,
        warning,
        reason,
        message,
        "Schedule",
    )
    .await;
}
