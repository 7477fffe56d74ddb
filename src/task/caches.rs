//! What the Task controller reads instead of the API server: its tasks, their pods and the task
//! definitions from watch caches, and what it wrote itself and the cache may not show yet.
//!
//! A cache can lag the controller's own writes, and works through watch events one at a time. Three
//! memories cover that, the Kubernetes way:
//! - the status last written per task: while the cache shows a version it was written over, or any
//!   older than the write's answer (see `controller::version`), the task is decided on what was
//!   written (never on the older view, which would take status back in time; the write's
//!   precondition is the version decided on);
//! - the pods created and not seen yet (an expectation): no second create while the first is on its
//!   way to the cache;
//! - a pod read from the API because its watch looked silent: while the cache shows an older
//!   version, the pod read is the one decided on (the older one would take the containers' states
//!   back to PENDING).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::task::TaskStatus;
use crate::api::{Task, TaskDefinition};
use crate::controller::decode::Decoded;
use crate::controller::version::behind;
use crate::task_definition::read::Reader;

/// The Task controller's caches.
pub struct Caches {
    pub tasks: Store<Decoded<Task>>,
    /// The operator's pods (label `app.kubernetes.io/managed-by`), trimmed to what decisions read.
    pub pods: Store<Pod>,
    pub definitions: Reader,
    listed: AtomicBool,
    written: Mutex<HashMap<String, Written>>,
    created: Mutex<HashMap<String, Created>>,
    /// Pods read from the API, by task uid.
    read: Mutex<HashMap<String, Read>>,
}

/// A pod read from the API, newer than the cache.
struct Read {
    /// The cached pod's resourceVersion it supersedes (None: the cache held no pod).
    superseded: Option<String>,
    pod: Arc<Pod>,
}

/// A status this controller wrote.
struct Written {
    /// The task's versions it was written over (the cache may still show them).
    superseded: Vec<String>,
    /// The task as written.
    task: Arc<Task>,
}

/// A pod created and not seen in the cache yet.
#[derive(Clone, Debug)]
pub struct Created {
    pub at: Instant,
    /// The status saying so, written if the pod is gone before it is ever seen.
    pub status: TaskStatus,
}

impl Caches {
    pub fn new(
        tasks: Store<Decoded<Task>>,
        pods: Store<Pod>,
        definitions: Store<Decoded<TaskDefinition>>,
        client: kube::Client,
    ) -> Self {
        Self {
            tasks,
            pods,
            definitions: Reader::new(client, definitions),
            listed: AtomicBool::new(false),
            written: Mutex::default(),
            created: Mutex::default(),
            read: Mutex::default(),
        }
    }

    /// Waits until every cache has its first list.
    pub async fn synced(&self) {
        crate::context::wait_synced(&self.tasks).await;
        crate::context::wait_synced(&self.pods).await;
        crate::context::wait_synced(self.definitions.definitions()).await;
        self.listed.store(true, Ordering::SeqCst);
    }

    /// Whether every cache has its first list (a pass before it would take "not listed yet" for
    /// "absent" and create pods that exist).
    pub fn ready(&self) -> bool {
        self.listed.load(Ordering::SeqCst)
    }

    /// The task to decide on: the cached one, or what this controller wrote if the cache is behind.
    pub fn current(&self, cached: Arc<Task>) -> Arc<Task> {
        let Some(uid) = cached.uid() else {
            return cached;
        };
        let mut written = lock(&self.written);
        match written.get(&uid) {
            Some(w)
                if behind(
                    cached.resource_version().as_deref(),
                    &w.superseded,
                    w.task.resource_version().as_deref(),
                ) =>
            {
                w.task.clone()
            }
            // The cache shows the write, or something newer (which keeps the status written).
            Some(_) => {
                written.remove(&uid);
                cached
            }
            None => cached,
        }
    }

    /// Records a status write: `before` is the task it was decided on, `after` the API's answer.
    pub fn wrote(&self, before: &Task, after: Task) {
        let (Some(uid), Some(rv)) = (before.uid(), before.resource_version()) else {
            return;
        };
        let mut written = lock(&self.written);
        let entry = written.entry(uid).or_insert_with(|| Written {
            superseded: Vec::new(),
            task: Arc::new(after.clone()),
        });
        entry.superseded.push(rv);
        entry.task = Arc::new(after);
    }

    /// Forgets what was written for a task (a write conflicted: someone else wrote; the cache
    /// will show it).
    pub fn forget_written(&self, task: &Task) {
        if let Some(uid) = task.uid() {
            lock(&self.written).remove(&uid);
        }
    }

    /// The task's pod, if the cache holds it and it is this task's: the one read from the API while
    /// the cache is behind it.
    pub fn pod(&self, task: &Task) -> Option<Arc<Pod>> {
        let ns = task.namespace().unwrap_or_default();
        let cached = self
            .pods
            .get(&ObjectRef::new(&task.name_any()).within(&ns))
            .filter(|p| super::owned_by(p, task))?;
        let uid = task.uid()?;
        let mut read = lock(&self.read);
        match read.get(&uid) {
            Some(r)
                if behind(
                    cached.resource_version().as_deref(),
                    r.superseded.as_slice(),
                    r.pod.resource_version().as_deref(),
                ) =>
            {
                Some(r.pod.clone())
            }
            Some(_) => {
                read.remove(&uid);
                Some(cached)
            }
            None => Some(cached),
        }
    }

    /// Records `fresh`, read from the API for `task` while the cache showed `cached` (or no pod).
    pub fn read(&self, task: &Task, cached: Option<&Pod>, fresh: Arc<Pod>) {
        if let Some(uid) = task.uid() {
            lock(&self.read).insert(
                uid,
                Read {
                    superseded: cached.and_then(ResourceExt::resource_version),
                    pod: fresh,
                },
            );
        }
    }

    /// Records a pod created for `task`.
    pub fn expect(&self, task: &Task, status: TaskStatus) {
        if let Some(uid) = task.uid() {
            lock(&self.created).insert(
                uid,
                Created {
                    at: Instant::now(),
                    status,
                },
            );
        }
    }

    /// The pod created for `task` and not seen yet, if any.
    pub fn expected(&self, task: &Task) -> Option<Created> {
        lock(&self.created).get(&task.uid()?).cloned()
    }

    /// The pod is seen (or its creation recorded in status): nothing expected any more.
    pub fn observed(&self, task: &Task) {
        if let Some(uid) = task.uid() {
            lock(&self.created).remove(&uid);
        }
    }

    /// Forgets whatever is kept for tasks and task definitions the caches no longer hold.
    pub fn prune(&self) {
        let live: std::collections::HashSet<String> = self
            .tasks
            .state()
            .iter()
            .filter_map(|t| t.0.as_ref().ok()?.uid())
            .collect();
        lock(&self.written).retain(|uid, _| live.contains(uid));
        lock(&self.created).retain(|uid, _| live.contains(uid));
        lock(&self.read).retain(|uid, _| live.contains(uid));
        self.definitions.prune();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A pod as the Task controller keeps it: what its decisions never read is dropped (the cache holds
/// every pod of every task).
pub fn trim(pod: &mut Pod) {
    crate::controller::trim::meta(&mut pod.metadata);
    if let Some(spec) = pod.spec.as_mut() {
        spec.volumes = None;
        spec.affinity = None;
        spec.tolerations = None;
        spec.topology_spread_constraints = None;
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            c.env = None;
            c.env_from = None;
            c.volume_mounts = None;
            c.command = None;
            c.args = None;
            c.liveness_probe = None;
            c.readiness_probe = None;
            c.startup_probe = None;
            c.resources = None;
            c.security_context = None;
            c.lifecycle = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::task::LastStatus;
    use kube::api::ObjectMeta;

    fn task(rv: &str, last: &str) -> Task {
        let mut t = Task::new(
            "web",
            serde_json::from_value(serde_json::json!({"taskDefinition": "web"})).unwrap(),
        );
        t.metadata = ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            uid: Some("u1".into()),
            resource_version: Some(rv.into()),
            ..Default::default()
        };
        t.status = Some(TaskStatus {
            last_status: LastStatus::parse(last),
            ..Default::default()
        });
        t
    }

    fn caches() -> Caches {
        caches_and_pods().0
    }

    /// Caches, and the writer of their pod cache.
    fn caches_and_pods() -> (Caches, kube::runtime::reflector::store::Writer<Pod>) {
        let (tasks, _) = kube::runtime::reflector::store();
        let (pods, pod_writer) = kube::runtime::reflector::store();
        let (tds, _) = kube::runtime::reflector::store();
        // Never used for a request in these tests.
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        let caches = Caches::new(tasks, pods, tds, kube::Client::try_from(config).unwrap());
        (caches, pod_writer)
    }

    #[tokio::test]
    async fn a_cache_behind_our_own_writes_is_read_as_what_was_written() {
        let c = caches();
        let v1 = task("1", "PENDING");
        c.wrote(&v1, task("2", "ACTIVATING"));
        c.wrote(&task("2", "ACTIVATING"), task("3", "RUNNING"));
        // The cache still shows either version written over: decide on the last write.
        for stale in ["1", "2"] {
            let current = c.current(Arc::new(task(stale, "PENDING")));
            assert_eq!(current.resource_version().as_deref(), Some("3"));
        }
        // The cache caught up (or moved past): it is read again, and the memory goes.
        let caught_up = c.current(Arc::new(task("3", "RUNNING")));
        assert_eq!(caught_up.resource_version().as_deref(), Some("3"));
        let again = c.current(Arc::new(task("1", "PENDING")));
        assert_eq!(again.resource_version().as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn a_cache_between_our_writes_and_someone_elses_is_still_behind() {
        let c = caches();
        // Written over 4; the API answered 6 (someone else wrote 5 in between).
        c.wrote(&task("4", "PENDING"), task("6", "RUNNING"));
        let current = c.current(Arc::new(task("5", "PENDING")));
        assert_eq!(current.resource_version().as_deref(), Some("6"));
        let moved_past = c.current(Arc::new(task("7", "RUNNING")));
        assert_eq!(moved_past.resource_version().as_deref(), Some("7"));
    }

    #[tokio::test]
    async fn a_conflicting_write_is_forgotten() {
        let c = caches();
        c.wrote(&task("1", "PENDING"), task("2", "RUNNING"));
        c.forget_written(&task("1", "PENDING"));
        let current = c.current(Arc::new(task("1", "PENDING")));
        assert_eq!(current.resource_version().as_deref(), Some("1"));
    }

    fn pod(rv: &str, phase: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "ns", "resourceVersion": rv,
                "ownerReferences": [{"apiVersion": "ecs.operator.dev/v1alpha1", "kind": "Task",
                    "name": "web", "uid": "u1", "controller": true}]},
            "status": {"phase": phase}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_pod_read_from_the_api_stands_until_the_cache_catches_up() {
        let (c, mut pod_writer) = caches_and_pods();
        let t = task("1", "ACTIVATING");
        let phase = |p: Option<Arc<Pod>>| p.and_then(|p| p.status.clone()?.phase);
        pod_writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(pod("10", "Pending")));
        c.read(
            &t,
            Some(&pod("10", "Pending")),
            Arc::new(pod("12", "Running")),
        );
        // The cache still shows the version read over: the pod read is decided on.
        assert_eq!(phase(c.pod(&t)).as_deref(), Some("Running"));
        assert_eq!(phase(c.pod(&t)).as_deref(), Some("Running"));
        // The cache moved, one event at a time, and is still older than the read: not read yet
        // (deciding on it would take the pod's containers back to PENDING).
        pod_writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(pod("11", "Pending")));
        assert_eq!(phase(c.pod(&t)).as_deref(), Some("Running"));
        // The cache caught up: it is read again.
        pod_writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(pod("12", "Running")));
        assert_eq!(c.pod(&t).unwrap().resource_version().as_deref(), Some("12"));
        pod_writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(pod("10", "Pending")));
        assert_eq!(phase(c.pod(&t)).as_deref(), Some("Pending"), "forgotten");
    }

    #[tokio::test]
    async fn a_pod_read_before_the_cache_had_it_stands_until_the_cache_catches_up() {
        let (c, mut pod_writer) = caches_and_pods();
        let t = task("1", "PROVISIONING");
        let phase = |p: Option<Arc<Pod>>| p.and_then(|p| p.status.clone()?.phase);
        c.read(&t, None, Arc::new(pod("12", "Running")));
        // Not in the cache: none (the pass asks the API server again; the pod may be gone).
        assert!(c.pod(&t).is_none());
        // The cache shows the pod as created, older than the read.
        pod_writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(pod("10", "Pending")));
        assert_eq!(phase(c.pod(&t)).as_deref(), Some("Running"));
        pod_writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(pod("13", "Running")));
        assert_eq!(c.pod(&t).unwrap().resource_version().as_deref(), Some("13"));
    }

    #[test]
    fn a_trimmed_pod_keeps_what_the_lifecycle_reads() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "annotations": {"a": "b"}, "managedFields": [{"manager": "x"}]},
            "spec": {"nodeName": "n1", "containers": [{"name": "web", "image": "nginx",
                "ports": [{"containerPort": 80}], "env": [{"name": "A", "value": "1"}]}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}
        }))
        .unwrap();
        let before = pod.clone();
        trim(&mut pod);
        assert_eq!(pod.metadata.managed_fields, None);
        assert_eq!(pod.metadata.annotations, before.metadata.annotations);
        assert_eq!(pod.status, before.status);
        let spec = pod.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(spec.containers[0].image.as_deref(), Some("nginx"));
        assert!(spec.containers[0].ports.is_some());
        assert_eq!(spec.containers[0].env, None);
    }
}
