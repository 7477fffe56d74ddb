//! An independent invariant watcher: it watches a namespace's Services, Tasks, Pods and Events with its
//! own kube watchers (none of the operator's code or caches) for the whole of a scenario, and records
//! every breach of the invariants users rely on (docs/reliability.md lists them and how each is judged).
//!
//! ```ignore
//! let inv = Invariants::watch(&client, &ns.name);
//! // ... apply objects, inject faults ...
//! inv.wait_converged("web", "web:2", 4, deadline).await;
//! inv.quiet(Duration::from_secs(10)).await; // zero writes once converged
//! inv.finish().assert_ok();
//! ```
//!
//! Bounds that depend on desiredCount are judged against the settings in effect around the moment of
//! the observation (see [`CACHE_LAG`], [`STOP_ALLOWANCE`], [`OBSERVATION_LAG`]): the operator acts on
//! a cache and stopping a task takes a few round trips, so a bound that changed a moment ago cannot
//! have been seen yet, and tasks above a lowered bound need time to reach STOPPED.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ecs_operator::api::service::{DeploymentStatus, RolloutState};
use ecs_operator::api::task::LastStatus;
use ecs_operator::api::{Service, Task};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};

/// How stale the operator's view of a Service may be when it creates or stops a task: a creation is
/// judged against the largest maximum, a stop against the smallest minimum, of the settings in effect
/// during this long before the observation.
pub const CACHE_LAG: Duration = Duration::from_secs(5);
/// How long tasks above a lowered maximum may take to reach STOPPED (operator pass, pod deletion, the
/// task's STOPPED status): the number of alive tasks is judged against the largest maximum in effect
/// during this long before the observation.
pub const STOP_ALLOWANCE: Duration = Duration::from_secs(30);
/// Our own watches lag the operator's: a Service change the operator has already acted on may reach
/// us after the resulting Task change, so settings that took effect this long after an observation
/// count too.
pub const OBSERVATION_LAG: Duration = Duration::from_secs(2);

/// ECS task lifecycle order; lastStatus may only move forward along it.
const LIFECYCLE: &[LastStatus] = &[
    LastStatus::Provisioning,
    LastStatus::Pending,
    LastStatus::Activating,
    LastStatus::Running,
    LastStatus::Deactivating,
    LastStatus::Stopping,
    LastStatus::Deprovisioning,
    LastStatus::Stopped,
];

const SERVICE_LABEL: &str = "ecs.operator.dev/service";

/// Handle on a running watcher; stops watching when dropped.
pub struct Invariants {
    shared: Arc<Mutex<State>>,
    changed: tokio::sync::watch::Receiver<u64>,
    watches: Vec<tokio::task::JoinHandle<()>>,
    started: Instant,
}

/// What one task looks like to the watcher (for scenario triggers, see [`Invariants::wait_until`]).
#[derive(Clone, Debug)]
pub struct TaskInfo {
    pub uid: String,
    pub name: String,
    pub service: Option<String>,
    /// `startedBy`: the deployment id for a service's task.
    pub started_by: Option<String>,
    /// `spec.taskDefinition`.
    pub task_definition: String,
    pub last_status: Option<LastStatus>,
    pub desired_stopped: bool,
    /// `status.availabilityZone`.
    pub zone: Option<String>,
    pub first_seen: Instant,
    rank: Option<usize>,
    observed_generation: Option<i64>,
    resource_version: String,
}

impl TaskInfo {
    /// Not STOPPED: it counts toward maximumPercent (src/service/plan: alive = PENDING, RUNNING, or
    /// on its way out).
    pub fn is_alive(&self) -> bool {
        self.last_status != Some(LastStatus::Stopped)
    }

    /// RUNNING and not asked to stop. The operator also waits for health (a health check, or some time
    /// RUNNING), so this counts at least as many tasks as the operator's own healthy count: a minimum
    /// that holds here may still be breached there, never the other way round.
    pub fn is_healthy(&self) -> bool {
        self.last_status == Some(LastStatus::Running) && !self.desired_stopped
    }
}

#[derive(Clone, Debug)]
struct PodInfo {
    name: String,
    /// uid of its controller owner, if it is a Task.
    task_uid: Option<String>,
    live: bool,
    resource_version: String,
}

/// desiredCount and percents from one generation of a Service, and since when.
#[derive(Clone, Debug)]
struct Setting {
    from: Instant,
    desired: i64,
    max_percent: i64,
    min_percent: i64,
}

impl Setting {
    fn max_alive(&self) -> i64 {
        self.desired.max(0) * self.max_percent.max(0) / 100
    }
    fn min_healthy(&self) -> i64 {
        (self.desired.max(0) * self.min_percent.max(0) + 99) / 100
    }
}

#[derive(Default)]
struct ServiceInfo {
    uid: String,
    latest: Option<Service>,
    settings: Vec<Setting>,
    /// Every deployment id ever seen, as numbers (`ecs-svc/N`).
    deployment_ids: BTreeSet<u64>,
    deployments_now: BTreeSet<u64>,
    observed_generation: Option<i64>,
    resource_version: String,
    max_alive_seen: usize,
    /// Fewest healthy tasks left by a stop of the operator's.
    min_healthy_after_stop: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SampleKind {
    /// A new task appeared: judged against the maximum the operator may have seen.
    Created,
    /// The number of alive tasks rose or stayed above a bound.
    Held,
    /// The operator asked a healthy task to stop.
    Stopped,
}

#[derive(Clone, Debug)]
struct Sample {
    at: Instant,
    service: String,
    kind: SampleKind,
    alive: usize,
    healthy: usize,
    task: String,
}

#[derive(Default)]
struct State {
    /// Applying a list: bounds are judged once the whole snapshot is in ([`settle`]).
    replaying: bool,
    /// Healthy tasks the operator asked to stop, seen in a list (judged against the snapshot).
    listed_stops: Vec<TaskInfo>,
    /// Zones with a Ready, untainted node when the watch started (AZ balance is part of convergence).
    zones: BTreeSet<String>,
    services: BTreeMap<String, ServiceInfo>,
    tasks: BTreeMap<String, TaskInfo>,
    pods: BTreeMap<String, PodInfo>,
    events: BTreeMap<String, String>,
    /// uids listed by the current re-list of each kind (objects missing from it were deleted meanwhile).
    relisting: BTreeMap<&'static str, BTreeSet<String>>,
    violations: Vec<String>,
    /// (uid, what) pairs already reported, so a persistent breach is reported once.
    reported: BTreeSet<(String, &'static str)>,
    samples: Vec<Sample>,
    /// Every write seen: when, and what (kind/name).
    writes: Vec<(Instant, String)>,
    tasks_created: usize,
    external_stops: usize,
    watch_errors: usize,
    gone: usize,
    relists: usize,
}

/// The outcome of a scenario.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub violations: Vec<String>,
    /// How long the watcher ran.
    pub watched: Duration,
    /// Per service: most alive tasks seen at once, fewest healthy after an operator stop.
    pub max_alive: BTreeMap<String, usize>,
    pub min_healthy_after_stop: BTreeMap<String, Option<usize>>,
    pub tasks_created: usize,
    /// Healthy tasks that stopped without the operator asking (not held against minimumHealthyPercent).
    pub external_stops: usize,
    /// Errors our own watches saw, of which 410 Gone, and how many times they re-listed.
    pub watch_errors: usize,
    pub gone: usize,
    pub relists: usize,
    pub writes: usize,
}

impl Report {
    /// Fails the test with every violation.
    pub fn assert_ok(&self) {
        assert!(self.violations.is_empty(), "invariants broken: {self}");
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "watched {:.1}s: {} violations, {} tasks created, max alive {:?}, min healthy after an operator stop {:?}, {} external stops, {} writes, watch errors {} (410 Gone {}), relists {}",
            self.watched.as_secs_f64(),
            self.violations.len(),
            self.tasks_created,
            self.max_alive,
            self.min_healthy_after_stop,
            self.external_stops,
            self.writes,
            self.watch_errors,
            self.gone,
            self.relists
        )?;
        for v in &self.violations {
            write!(f, "\n  violation: {v}")?;
        }
        Ok(())
    }
}

impl Invariants {
    /// Starts watching `namespace`. Returns at once; watches that have not listed yet catch up with an
    /// initial list (what happened before is not judged).
    pub fn watch(client: &Client, namespace: &str) -> Self {
        let shared = Arc::new(Mutex::new(State::default()));
        let (tx, changed) = tokio::sync::watch::channel(0u64);
        let tx = Arc::new(tx);
        let watches = vec![
            spawn_watch::<Service>(client, namespace, &shared, &tx, "Service", on_service),
            spawn_watch::<Task>(client, namespace, &shared, &tx, "Task", on_task),
            spawn_watch::<Pod>(client, namespace, &shared, &tx, "Pod", on_pod),
            spawn_watch::<KubeEvent>(client, namespace, &shared, &tx, "Event", on_event),
            list_zones(client, &shared, &tx),
        ];
        Self {
            shared,
            changed,
            watches,
            started: Instant::now(),
        }
    }

    /// Waits until `condition` holds for what the watcher sees; fails the test after `deadline`.
    /// Reacts to each change (no polling).
    pub async fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        condition: impl Fn(&View) -> bool,
    ) -> Duration {
        let start = Instant::now();
        let until = tokio::time::Instant::now() + deadline;
        let mut changed = self.changed.clone();
        loop {
            {
                let state = self.shared.lock().unwrap();
                if condition(&View(&state)) {
                    return start.elapsed();
                }
            }
            // Woken by every change, and at least every 250 ms for conditions on elapsed time.
            let tick = tokio::time::Instant::now() + Duration::from_millis(250);
            match tokio::time::timeout_at(until.min(tick), changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("the invariant watcher stopped while waiting for {what}"),
                Err(_) if tokio::time::Instant::now() < until => {}
                Err(_) => {
                    let state = self.shared.lock().unwrap();
                    panic!(
                        "timed out after {deadline:?} waiting for {what}; so far {}\ntasks: {:#?}\nservices: {:#?}",
                        report(&state, self.started.elapsed()),
                        View(&state).tasks(),
                        state
                            .services
                            .values()
                            .filter_map(|s| s.latest.as_ref()?.status.clone())
                            .collect::<Vec<_>>()
                    )
                }
            }
        }
    }

    /// Reads what the watcher sees now.
    pub fn view<R>(&self, f: impl FnOnce(&View) -> R) -> R {
        let state = self.shared.lock().unwrap();
        f(&View(&state))
    }

    /// Waits until service `name` has converged, as seen by the watcher: its status is current
    /// (observedGeneration = generation), Ready, a COMPLETED PRIMARY deployment of `task_definition` and
    /// no other deployment but INACTIVE ones, zones balanced (skew ≤ 1) unless AZ rebalancing is off, and
    /// `desired` tasks alive, all RUNNING that definition, each with exactly one live pod. Returns the
    /// time it took.
    pub async fn wait_converged(
        &self,
        name: &str,
        task_definition: &str,
        desired: usize,
        deadline: Duration,
    ) -> Duration {
        self.wait_until(
            &format!("service {name} to converge on {desired} × {task_definition}"),
            deadline,
            |v| v.converged(name, task_definition, desired),
        )
        .await
    }

    /// Zero writes once converged: records every write (a resourceVersion change of a Service, Task or
    /// Pod, or a new or updated Event) seen during `window` from now as a violation. This is a
    /// measurement window, not synchronisation: the caller has already waited for the converged state.
    pub async fn quiet(&self, window: Duration) -> usize {
        let from = Instant::now();
        tokio::time::sleep(window).await;
        let mut state = self.shared.lock().unwrap();
        let writes: Vec<String> = state
            .writes
            .iter()
            .filter(|(at, _)| *at >= from)
            .map(|(at, what)| format!("{what} at +{:.1}s", (*at - from).as_secs_f64()))
            .collect();
        let n = writes.len();
        if n > 0 {
            state.violations.push(format!(
                "{n} write(s) during the {window:?} after convergence: {}",
                writes.join(", ")
            ));
        }
        n
    }

    /// The report so far (bounds judged with what is known now).
    pub fn check(&self) -> Report {
        let state = self.shared.lock().unwrap();
        report(&state, self.started.elapsed())
    }

    /// Stops watching and returns the report, including the orphan check (every pod's Task and every
    /// service task's Service exists).
    pub fn finish(self) -> Report {
        for w in &self.watches {
            w.abort();
        }
        let mut state = self.shared.lock().unwrap();
        let task_uids: BTreeSet<String> = state.tasks.keys().cloned().collect();
        let orphans: Vec<String> = state
            .pods
            .values()
            .filter(|p| p.live && p.task_uid.as_ref().is_some_and(|u| !task_uids.contains(u)))
            .map(|p| format!("pod {} outlives its Task", p.name))
            .collect();
        state.violations.extend(orphans);
        report(&state, self.started.elapsed())
    }
}

impl Drop for Invariants {
    fn drop(&mut self) {
        for w in &self.watches {
            w.abort();
        }
    }
}

/// Read access to what the watcher sees.
pub struct View<'a>(&'a State);

impl View<'_> {
    pub fn tasks(&self) -> Vec<TaskInfo> {
        self.0.tasks.values().cloned().collect()
    }

    pub fn service(&self, name: &str) -> Option<&Service> {
        self.0.services.get(name)?.latest.as_ref()
    }

    /// Time since the last write of any kind was seen (zero if none was).
    pub fn since_last_write(&self) -> Duration {
        self.0
            .writes
            .last()
            .map_or(Duration::ZERO, |(at, _)| at.elapsed())
    }

    /// Live pods of a task.
    pub fn live_pods(&self, task_uid: &str) -> usize {
        self.0
            .pods
            .values()
            .filter(|p| p.live && p.task_uid.as_deref() == Some(task_uid))
            .count()
    }

    pub fn converged(&self, name: &str, task_definition: &str, desired: usize) -> bool {
        let Some(svc) = self.service(name) else {
            return false;
        };
        let Some(st) = &svc.status else { return false };
        let status_ok = st.observed_generation == svc.metadata.generation
            && svc.spec.desired_count == Some(desired as i32)
            && st.running_count == desired as i32
            && st.task_definition.as_deref() == Some(task_definition)
            && st
                .deployments
                .iter()
                .filter(|d| d.status != DeploymentStatus::Inactive)
                .map(|d| (d.status, d.rollout_state))
                .eq([(DeploymentStatus::Primary, Some(RolloutState::Completed))])
            && st
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
        if !status_ok {
            return false;
        }
        let alive: Vec<&TaskInfo> = self
            .0
            .tasks
            .values()
            .filter(|t| t.service.as_deref() == Some(name) && t.is_alive())
            .collect();
        // With AZ rebalancing (in use: status, the default for most services) the operator still has
        // work while zones differ by more than one task.
        let rebalancing = svc
            .status
            .as_ref()
            .and_then(|s| s.availability_zone_rebalancing)
            .map(|r| format!("{r:?}"))
            .as_deref()
            == Some("Enabled");
        let per_zone: Vec<usize> = self
            .0
            .zones
            .iter()
            .map(|z| alive.iter().filter(|t| t.zone.as_ref() == Some(z)).count())
            .collect();
        let balanced = !rebalancing
            || per_zone.iter().max().unwrap_or(&0) - per_zone.iter().min().unwrap_or(&0) <= 1;
        balanced
            && alive.len() == desired
            && alive.iter().all(|t| {
                t.is_healthy()
                    && t.task_definition == task_definition
                    && self.live_pods(&t.uid) == 1
            })
            && self
                .0
                .pods
                .values()
                .filter(|p| {
                    p.live
                        && p.task_uid.as_ref().is_some_and(|u| {
                            self.0
                                .tasks
                                .get(u)
                                .is_some_and(|t| t.service.as_deref() == Some(name))
                        })
                })
                .count()
                == desired
    }
}

/// Lists the zones with eligible nodes once (a scenario does not take nodes down).
fn list_zones(
    client: &Client,
    shared: &Arc<Mutex<State>>,
    tx: &Arc<tokio::sync::watch::Sender<u64>>,
) -> tokio::task::JoinHandle<()> {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let (shared, tx) = (shared.clone(), tx.clone());
    tokio::spawn(async move {
        let list = nodes
            .list(&Default::default())
            .await
            .expect("list the nodes");
        let zones = list.items.iter().filter_map(|n| {
            let ready = n
                .status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let tainted = n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .into_iter()
                .flatten()
                .any(|t| t.effect == "NoSchedule" || t.effect == "NoExecute");
            (ready && !tainted)
                .then(|| n.labels().get("topology.kubernetes.io/zone").cloned())
                .flatten()
        });
        shared.lock().unwrap().zones = zones.collect();
        tx.send_modify(|n| *n += 1);
    })
}

type Handler<K> = fn(&mut State, &'static str, Event<K>);

fn spawn_watch<K>(
    client: &Client,
    namespace: &str,
    shared: &Arc<Mutex<State>>,
    tx: &Arc<tokio::sync::watch::Sender<u64>>,
    kind: &'static str,
    handle: Handler<K>,
) -> tokio::task::JoinHandle<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    <K as Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let shared = shared.clone();
    let tx = tx.clone();
    tokio::spawn(async move {
        // Backoff on errors: while the API server is down, retry without spinning.
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        // A (re-)list is applied as one snapshot: object by object, a mix of listed and older states
        // would be judged (e.g. an old task already stopped next to a new one not yet seen RUNNING).
        let mut listing: Option<Vec<Event<K>>> = None;
        while let Some(item) = stream.next().await {
            let item = match (item, listing.as_mut()) {
                (Ok(Event::Init), _) => {
                    listing = Some(vec![Event::Init]);
                    continue;
                }
                (Ok(e @ Event::InitApply(_)), Some(buffer)) => {
                    buffer.push(e);
                    continue;
                }
                (item, _) => item,
            };
            {
                let mut state = shared.lock().unwrap();
                match item {
                    Ok(Event::InitDone) => {
                        state.replaying = true;
                        for e in listing.take().unwrap_or_default() {
                            handle(&mut state, kind, e);
                        }
                        state.replaying = false;
                        handle(&mut state, kind, Event::InitDone);
                        settle(&mut state);
                    }
                    Ok(event) => handle(&mut state, kind, event),
                    Err(e) => {
                        state.watch_errors += 1;
                        let text = format!("{e:?}");
                        if text.contains("code: 410") || text.contains("Expired") {
                            state.gone += 1;
                        }
                    }
                }
            }
            tx.send_modify(|n| *n += 1);
        }
    })
}

use watcher::watcher;

/// Shared bookkeeping of the watcher events common to all kinds: re-lists (objects missing from a
/// re-list were deleted while we were not watching) and writes (resourceVersion changes).
fn lifecycle<K: Resource>(
    state: &mut State,
    kind: &'static str,
    event: &Event<K>,
    known: impl Fn(&State) -> BTreeSet<String>,
) -> Vec<String> {
    match event {
        Event::Init => {
            state.relisting.insert(kind, BTreeSet::new());
            Vec::new()
        }
        Event::InitApply(o) => {
            if let Some(seen) = state.relisting.get_mut(kind) {
                seen.insert(o.uid().unwrap_or_default());
            }
            Vec::new()
        }
        Event::InitDone => {
            let seen = state.relisting.remove(kind).unwrap_or_default();
            state.relists += 1;
            known(state).difference(&seen).cloned().collect()
        }
        _ => Vec::new(),
    }
}

fn write(state: &mut State, what: String) {
    state.writes.push((Instant::now(), what));
}

fn violation(state: &mut State, uid: &str, what: &'static str, message: String) {
    if state.reported.insert((uid.to_string(), what)) {
        state.violations.push(message);
    }
}

fn controllers(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Vec<(String, String)> {
    meta.owner_references
        .iter()
        .flatten()
        .filter(|o| o.controller == Some(true))
        .map(|o| (o.kind.clone(), o.uid.clone()))
        .collect()
}

fn on_service(state: &mut State, kind: &'static str, event: Event<Service>) {
    let gone = lifecycle(state, kind, &event, |s| {
        s.services.values().map(|v| v.uid.clone()).collect()
    });
    for uid in gone {
        state.services.retain(|_, v| v.uid != uid);
    }
    let svc = match event {
        Event::Apply(s) | Event::InitApply(s) => s,
        Event::Delete(s) => {
            write(state, format!("Service {} deleted", s.name_any()));
            state.services.remove(&s.name_any());
            return;
        }
        _ => return,
    };
    let name = svc.name_any();
    let uid = svc.uid().unwrap_or_default();
    let rv = svc.resource_version().unwrap_or_default();
    let now = Instant::now();
    let entry = state.services.entry(name.clone()).or_default();
    if entry.uid != uid {
        *entry = ServiceInfo {
            uid: uid.clone(),
            ..Default::default()
        };
    }
    let is_write = !entry.resource_version.is_empty() && entry.resource_version != rv;
    entry.resource_version = rv;
    let config = svc.spec.deployment_configuration.as_ref();
    let daemon = format!("{:?}", svc.spec.scheduling_strategy).to_uppercase() == "DAEMON";
    let setting = Setting {
        from: now,
        desired: i64::from(svc.spec.desired_count.unwrap_or(0)),
        max_percent: i64::from(config.and_then(|c| c.maximum_percent).unwrap_or(if daemon {
            100
        } else {
            200
        })),
        min_percent: i64::from(
            config
                .and_then(|c| c.minimum_healthy_percent)
                .unwrap_or(if daemon { 0 } else { 100 }),
        ),
    };
    let mut messages = Vec::new();
    if !daemon
        && entry.settings.last().is_none_or(|s| {
            (s.desired, s.max_percent, s.min_percent)
                != (setting.desired, setting.max_percent, setting.min_percent)
        })
    {
        entry.settings.push(setting);
    }
    let status = svc.status.as_ref();
    let observed = status.and_then(|s| s.observed_generation);
    if let (Some(before), Some(now)) = (entry.observed_generation, observed)
        && now < before
    {
        messages.push(format!(
            "service {name}: status.observedGeneration went back from {before} to {now}"
        ));
    }
    if observed.is_some() {
        entry.observed_generation = observed;
    }
    let ids: BTreeSet<u64> = status
        .map(|s| {
            s.deployments
                .iter()
                .filter_map(|d| d.id.rsplit('/').next()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let highest = entry.deployment_ids.last().copied();
    for id in ids.difference(&entry.deployments_now) {
        if highest.is_some_and(|h| *id <= h) {
            messages.push(format!(
                "service {name}: deployment ecs-svc/{id} appeared after ecs-svc/{} (ids must only grow)",
                highest.unwrap()
            ));
        }
    }
    entry.deployment_ids.extend(ids.iter().copied());
    entry.deployments_now = ids;
    entry.latest = Some(svc);
    if is_write {
        write(state, format!("Service {name}"));
    }
    state.violations.extend(messages);
}

fn lifecycle_rank(status: Option<LastStatus>) -> Option<usize> {
    LIFECYCLE.iter().position(|s| Some(*s) == status)
}

fn on_task(state: &mut State, kind: &'static str, event: Event<Task>) {
    let gone = lifecycle(state, kind, &event, |s| s.tasks.keys().cloned().collect());
    for uid in gone {
        if let Some(t) = state.tasks.remove(&uid) {
            leave(state, &t, None);
        }
    }
    let task = match event {
        Event::Apply(t) | Event::InitApply(t) => t,
        Event::Delete(t) => {
            let uid = t.uid().unwrap_or_default();
            write(state, format!("Task {} deleted", t.name_any()));
            if let Some(before) = state.tasks.remove(&uid) {
                leave(state, &before, None);
            }
            return;
        }
        _ => return,
    };
    let uid = task.uid().unwrap_or_default();
    let name = task.name_any();
    let status = task.status.as_ref();
    let info = TaskInfo {
        uid: uid.clone(),
        name: name.clone(),
        service: task.labels().get(SERVICE_LABEL).cloned(),
        started_by: task.spec.started_by.clone(),
        task_definition: task.spec.task_definition.clone(),
        last_status: status.and_then(|s| s.last_status),
        desired_stopped: format!("{:?}", task.spec.desired_status).to_uppercase() == "STOPPED",
        zone: status.and_then(|s| s.availability_zone.clone()),
        first_seen: Instant::now(),
        rank: lifecycle_rank(status.and_then(|s| s.last_status)),
        observed_generation: status.and_then(|s| s.observed_generation),
        resource_version: task.resource_version().unwrap_or_default(),
    };
    if info.service.is_some() {
        let owners = controllers(&task.metadata);
        if owners.len() != 1 || owners[0].0 != "Service" {
            violation(
                state,
                &uid,
                "owner",
                format!(
                    "task {name}: controller ownerReferences {owners:?}, want exactly one Service"
                ),
            );
        }
    }
    let before = state.tasks.get(&uid).cloned();
    let mut info = info;
    if let Some(b) = &before {
        info.first_seen = b.first_seen;
        if b.resource_version != info.resource_version {
            write(state, format!("Task {name}"));
        }
        if let (Some(r0), Some(r1)) = (b.rank, info.rank)
            && r1 < r0
        {
            violation(
                state,
                &uid,
                "lifecycle",
                format!(
                    "task {name}: lastStatus went back from {} to {}",
                    LIFECYCLE[r0], LIFECYCLE[r1]
                ),
            );
        }
        if info.rank.is_none() && b.rank.is_some() {
            info.rank = b.rank;
        }
        if let (Some(g0), Some(g1)) = (b.observed_generation, info.observed_generation)
            && g1 < g0
        {
            violation(
                state,
                &uid,
                "generation",
                format!("task {name}: status.observedGeneration went back from {g0} to {g1}"),
            );
        }
    }
    state.tasks.insert(uid.clone(), info.clone());
    let Some(service) = info.service.clone() else {
        return;
    };
    if state.replaying {
        if before.is_none() {
            state.tasks_created += 1;
        }
        if before.as_ref().is_some_and(|b| b.is_healthy()) && !info.is_healthy() {
            if info.desired_stopped {
                state.listed_stops.push(info.clone());
            } else {
                state.external_stops += 1;
            }
        }
        return;
    }
    let (alive, healthy) = counts(state, &service);
    let entry = state.services.entry(service.clone()).or_default();
    entry.max_alive_seen = entry.max_alive_seen.max(alive);
    let sample = |kind| Sample {
        at: Instant::now(),
        service: service.clone(),
        kind,
        alive,
        healthy,
        task: name.clone(),
    };
    match &before {
        None => {
            if info.is_alive() {
                state.tasks_created += 1;
                state.samples.push(sample(SampleKind::Created));
            }
        }
        Some(b) => {
            if !b.is_alive() && info.is_alive() {
                violation(
                    state,
                    &uid,
                    "revived",
                    format!("task {name}: alive again after STOPPED"),
                );
            }
            if b.is_healthy() && !info.is_healthy() {
                leave(state, b, Some(&info));
                return;
            }
        }
    }
    state.samples.push(sample(SampleKind::Held));
}

/// After a list: judges the snapshot once (alive per service, and the stops it revealed).
fn settle(state: &mut State) {
    let services: BTreeSet<String> = state
        .tasks
        .values()
        .filter_map(|t| t.service.clone())
        .collect();
    let now = Instant::now();
    for service in services {
        let (alive, healthy) = counts(state, &service);
        let entry = state.services.entry(service.clone()).or_default();
        entry.max_alive_seen = entry.max_alive_seen.max(alive);
        state.samples.push(Sample {
            at: now,
            service: service.clone(),
            kind: SampleKind::Held,
            alive,
            healthy,
            task: "(list)".into(),
        });
        for stopped in std::mem::take(&mut state.listed_stops) {
            if stopped.service.as_deref() != Some(service.as_str()) {
                state.listed_stops.push(stopped);
                continue;
            }
            let entry = state.services.entry(service.clone()).or_default();
            entry.min_healthy_after_stop = Some(
                entry
                    .min_healthy_after_stop
                    .map_or(healthy, |m| m.min(healthy)),
            );
            state.samples.push(Sample {
                at: now,
                service: service.clone(),
                kind: SampleKind::Stopped,
                alive,
                healthy,
                task: stopped.name,
            });
        }
    }
    state.listed_stops.clear();
}

/// A task left the healthy set (or disappeared): an operator stop (desiredStatus STOPPED) is judged
/// against minimumHealthyPercent; anything else stopped it from outside.
fn leave(state: &mut State, before: &TaskInfo, after: Option<&TaskInfo>) {
    let Some(service) = before.service.clone() else {
        return;
    };
    if !before.is_healthy() {
        return;
    }
    let by_operator = after.is_some_and(|a| a.desired_stopped);
    if !by_operator {
        state.external_stops += 1;
        return;
    }
    let (alive, healthy) = counts(state, &service);
    let entry = state.services.entry(service.clone()).or_default();
    entry.min_healthy_after_stop = Some(
        entry
            .min_healthy_after_stop
            .map_or(healthy, |m| m.min(healthy)),
    );
    state.samples.push(Sample {
        at: Instant::now(),
        service,
        kind: SampleKind::Stopped,
        alive,
        healthy,
        task: before.name.clone(),
    });
}

fn counts(state: &State, service: &str) -> (usize, usize) {
    let mine = || {
        state
            .tasks
            .values()
            .filter(move |t| t.service.as_deref() == Some(service))
    };
    (
        mine().filter(|t| t.is_alive()).count(),
        mine().filter(|t| t.is_healthy()).count(),
    )
}

fn on_pod(state: &mut State, kind: &'static str, event: Event<Pod>) {
    let gone = lifecycle(state, kind, &event, |s| s.pods.keys().cloned().collect());
    for uid in gone {
        state.pods.remove(&uid);
    }
    let pod = match event {
        Event::Apply(p) | Event::InitApply(p) => p,
        Event::Delete(p) => {
            write(state, format!("Pod {} deleted", p.name_any()));
            state.pods.remove(&p.uid().unwrap_or_default());
            return;
        }
        _ => return,
    };
    let uid = pod.uid().unwrap_or_default();
    let name = pod.name_any();
    let owners = controllers(&pod.metadata);
    if owners.len() != 1 || owners[0].0 != "Task" {
        violation(
            state,
            &uid,
            "owner",
            format!("pod {name}: controller ownerReferences {owners:?}, want exactly one Task"),
        );
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
    // Live until gone or terminated: a pod being deleted may still run its containers.
    let live = !matches!(phase.as_deref(), Some("Succeeded" | "Failed"));
    let info = PodInfo {
        name: name.clone(),
        task_uid: owners
            .iter()
            .find(|(k, _)| k == "Task")
            .map(|(_, u)| u.clone()),
        live,
        resource_version: pod.resource_version().unwrap_or_default(),
    };
    if let Some(b) = state.pods.get(&uid)
        && b.resource_version != info.resource_version
    {
        write(state, format!("Pod {name}"));
    }
    let task_uid = info.task_uid.clone();
    state.pods.insert(uid, info);
    if let Some(task_uid) = task_uid {
        let live: Vec<String> = state
            .pods
            .values()
            .filter(|p| p.live && p.task_uid.as_ref() == Some(&task_uid))
            .map(|p| p.name.clone())
            .collect();
        if live.len() > 1 {
            violation(
                state,
                &task_uid,
                "pods",
                format!(
                    "task uid {task_uid}: {} live pods at once: {live:?}",
                    live.len()
                ),
            );
        }
    }
}

fn on_event(state: &mut State, kind: &'static str, event: Event<KubeEvent>) {
    let gone = lifecycle(state, kind, &event, |s| s.events.keys().cloned().collect());
    for uid in gone {
        state.events.remove(&uid);
    }
    let ev = match event {
        Event::Apply(e) | Event::InitApply(e) => e,
        _ => return,
    };
    let uid = ev.uid().unwrap_or_default();
    let rv = ev.resource_version().unwrap_or_default();
    let what = format!(
        "Event {} ({}: {})",
        ev.name_any(),
        ev.reason.clone().unwrap_or_default(),
        ev.message.clone().unwrap_or_default()
    );
    match state.events.insert(uid, rv.clone()) {
        Some(before) if before == rv => {}
        _ => write(state, what),
    }
}

/// Judges the samples against the settings in effect around each, and builds the report.
fn report(state: &State, watched: Duration) -> Report {
    let mut violations = state.violations.clone();
    for s in &state.samples {
        let Some(svc) = state.services.get(&s.service) else {
            continue;
        };
        let in_effect = |back: Duration| -> Vec<&Setting> {
            let from = s.at.checked_sub(back).unwrap_or(s.at);
            let to = s.at + OBSERVATION_LAG;
            svc.settings
                .iter()
                .enumerate()
                .filter(|(i, st)| {
                    st.from <= to && svc.settings.get(i + 1).is_none_or(|next| next.from > from)
                })
                .map(|(_, st)| st)
                .collect()
        };
        match s.kind {
            SampleKind::Created | SampleKind::Held => {
                let back = if s.kind == SampleKind::Created {
                    CACHE_LAG
                } else {
                    STOP_ALLOWANCE
                };
                let settings = in_effect(back);
                let Some(bound) = settings.iter().map(|st| st.max_alive()).max() else {
                    continue;
                };
                if s.alive as i64 > bound {
                    violations.push(format!(
                        "service {}: {} tasks alive when {} was {}, maximumPercent allows {bound} (desiredCount {:?} in effect)",
                        s.service,
                        s.alive,
                        s.task,
                        if s.kind == SampleKind::Created { "created" } else { "updated" },
                        settings.iter().map(|st| st.desired).collect::<Vec<_>>()
                    ));
                }
            }
            SampleKind::Stopped => {
                let settings = in_effect(CACHE_LAG);
                let Some(bound) = settings.iter().map(|st| st.min_healthy()).min() else {
                    continue;
                };
                if (s.healthy as i64) < bound {
                    violations.push(format!(
                        "service {}: stopping {} left {} healthy tasks, minimumHealthyPercent needs {bound} (desiredCount {:?} in effect)",
                        s.service,
                        s.task,
                        s.healthy,
                        settings.iter().map(|st| st.desired).collect::<Vec<_>>()
                    ));
                }
            }
        }
    }
    // One breach is often seen by several samples; report each message once.
    let mut seen = BTreeSet::new();
    violations.retain(|v| seen.insert(v.clone()));
    Report {
        violations,
        watched,
        max_alive: state
            .services
            .iter()
            .map(|(n, s)| (n.clone(), s.max_alive_seen))
            .collect(),
        min_healthy_after_stop: state
            .services
            .iter()
            .map(|(n, s)| (n.clone(), s.min_healthy_after_stop))
            .collect(),
        tasks_created: state.tasks_created,
        external_stops: state.external_stops,
        watch_errors: state.watch_errors,
        gone: state.gone,
        relists: state.relists,
        writes: state.writes.len(),
    }
}
