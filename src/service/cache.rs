//! What the Service controller reads, from caches: its tasks, the load balancer Services, the task
//! definitions and their registered revisions; and the records of its own writes the caches have not
//! shown yet ([`super::expect`]). A reconcile makes no read request on its usual path.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Service as KubeService;
use kube::api::Api;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};

use super::expect::{self, Expected, Written, Wrote};
use super::fanout::{Fingerprint, Summary};
use crate::api::service::SchedulingStrategy;
use crate::api::task::LastStatus;
use crate::api::{Service, Task, TaskDefinition, TaskDefinitionSpec};
use crate::context::Context;
use crate::controller::decode::Decoded;
use crate::error::Error;
use crate::labels;
use crate::task_definition::Unresolved;
use crate::task_definition::revision::{TaskDefinitionRef, object_name};

/// The caches of one Service controller (one namespace, or all).
pub struct Caches {
    /// Tasks with a service label, without managedFields.
    pub tasks: Store<Decoded<Task>>,
    /// The operator's load balancer Services, without managedFields.
    pub lbs: Store<KubeService>,
    pub task_definitions: Store<Decoded<TaskDefinition>>,
    synced: AtomicBool,
    /// Registered specs by namespace, revision object name and the task definition's uid: a revision
    /// never changes, and a family deleted and registered again has another uid.
    revisions: Mutex<HashMap<(String, String, String), Arc<TaskDefinitionSpec>>>,
    /// Per service uid.
    expected: Mutex<HashMap<String, Expected>>,
    /// Per service uid.
    written: Mutex<HashMap<String, Written>>,
    /// Per service, what node events are matched against ([`super::fanout`]).
    pub summaries: Mutex<HashMap<ObjectRef<Decoded<Service>>, Summary>>,
    /// Per node name.
    pub fingerprints: Mutex<HashMap<String, Fingerprint>>,
}

impl Caches {
    pub fn new(
        tasks: Store<Decoded<Task>>,
        lbs: Store<KubeService>,
        task_definitions: Store<Decoded<TaskDefinition>>,
    ) -> Self {
        Self {
            tasks,
            lbs,
            task_definitions,
            synced: AtomicBool::new(false),
            revisions: Mutex::default(),
            expected: Mutex::default(),
            written: Mutex::default(),
            summaries: Mutex::default(),
            fingerprints: Mutex::default(),
        }
    }

    /// Waits for the first list of every cache.
    pub async fn wait_synced(&self) {
        crate::context::wait_synced(&self.tasks).await;
        crate::context::wait_synced(&self.lbs).await;
        crate::context::wait_synced(&self.task_definitions).await;
        self.synced.store(true, Ordering::SeqCst);
    }

    /// Before its first list, an empty cache means "not known yet", not "no tasks".
    pub fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// The tasks labelled with the service's name in its namespace, as cached.
    pub fn tasks_of(&self, svc: &Service) -> Vec<Arc<Decoded<Task>>> {
        let (ns, name) = (svc.namespace(), svc.name_any());
        self.tasks.state_filter(|t| {
            t.meta().namespace == ns
                && t.meta()
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::SERVICE))
                    == Some(&name)
        })
    }

    /// The service's tasks to decide on: the cache's merged with this controller's writes it has not
    /// shown yet.
    pub fn merged(&self, svc: &Service, seen: Vec<Arc<Task>>) -> Vec<Arc<Task>> {
        let uid = svc.uid().unwrap_or_default();
        let mut all = self.expected.lock().expect("not poisoned");
        let (tasks, waiting) = expect::merge(
            seen,
            all.get(&uid).unwrap_or(&Expected::new()),
            Instant::now(),
        );
        if waiting.is_empty() {
            all.remove(&uid);
        } else {
            all.insert(uid, waiting);
        }
        tasks
    }

    /// Records a write about one of the service's tasks.
    pub fn wrote_task(&self, svc: &Service, name: &str, wrote: Wrote) {
        let uid = svc.uid().unwrap_or_default();
        let mut all = self.expected.lock().expect("not poisoned");
        expect::record(all.entry(uid).or_default(), name, wrote, Instant::now());
    }

    /// The service to decide on: the cached one, or, while the cache lags this controller's last
    /// status write, the cached one with the status and resourceVersion written.
    pub fn service_to_decide_on(&self, cached: &Service) -> Service {
        let uid = cached.uid().unwrap_or_default();
        let mut written = self.written.lock().expect("not poisoned");
        let Some(w) = written.get(&uid) else {
            return cached.clone();
        };
        match expect::status_to_decide_on(cached.resource_version().as_deref(), w, Instant::now()) {
            Some(w) => {
                let mut svc = cached.clone();
                svc.status = Some(w.status.clone());
                svc.metadata.resource_version = Some(w.resource_version.clone());
                svc
            }
            None => {
                written.remove(&uid);
                cached.clone()
            }
        }
    }

    /// Records a status write and the resourceVersion it returned.
    pub fn wrote_status(
        &self,
        svc: &Service,
        resource_version: Option<String>,
        status: &crate::api::service::ServiceStatus,
    ) {
        let uid = svc.uid().unwrap_or_default();
        let mut written = self.written.lock().expect("not poisoned");
        match resource_version {
            Some(rv) => {
                written.insert(
                    uid,
                    Written {
                        resource_version: rv,
                        status: status.clone(),
                        at: Instant::now(),
                    },
                );
            }
            None => {
                written.remove(&uid);
            }
        }
    }

    /// Records what node events are matched against for this service ([`super::fanout`]).
    pub fn summarize(&self, svc: &Service, constrained: bool, tasks: &[Arc<Task>]) {
        let alive = tasks
            .iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.last_status) != Some(LastStatus::Stopped));
        let mut summary = Summary {
            daemon: svc.spec.scheduling_strategy == SchedulingStrategy::Daemon,
            constrained,
            ..Summary::default()
        };
        for t in alive {
            match t.status.as_ref().and_then(|s| s.container_instance.clone()) {
                Some(node) => {
                    summary.nodes.insert(node);
                }
                None => summary.pending = true,
            }
        }
        let key = ObjectRef::new(&svc.name_any()).within(&svc.namespace().unwrap_or_default());
        self.summaries
            .lock()
            .expect("not poisoned")
            .insert(key, summary);
    }

    /// Drops the records of services no longer in `services` (the controller's cache).
    pub fn retain(&self, services: &[Arc<Decoded<Service>>]) {
        let uids: HashSet<String> = services.iter().filter_map(|s| s.uid()).collect();
        let keys: HashSet<ObjectRef<Decoded<Service>>> = services
            .iter()
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect();
        self.expected
            .lock()
            .expect("not poisoned")
            .retain(|uid, _| uids.contains(uid));
        self.written
            .lock()
            .expect("not poisoned")
            .retain(|uid, _| uids.contains(uid));
        self.summaries
            .lock()
            .expect("not poisoned")
            .retain(|k, _| keys.contains(k));
    }

    /// The task definition `family` in `ns`, as cached.
    pub fn task_definition(&self, ns: &str, family: &str) -> Option<Arc<Decoded<TaskDefinition>>> {
        self.task_definitions
            .get(&ObjectRef::new(family).within(ns))
    }

    /// Resolves a reference in `ns` as [`crate::task_definition::resolve`] does, from the cache.
    pub fn resolve(
        &self,
        ns: &str,
        reference: &str,
        in_use: Option<i64>,
    ) -> Result<(String, i64), Unresolved> {
        let Some(parsed) = TaskDefinitionRef::parse(reference) else {
            return Err(Unresolved {
                reason: "InvalidTaskDefinition",
                message: format!(
                    "taskDefinition {reference:?} is not 'family' or 'family:revision'"
                ),
            });
        };
        let found = self.task_definition(ns, &parsed.family);
        let Some(td) = found.as_deref().and_then(crate::controller::decoded) else {
            return Err(Unresolved {
                reason: "TaskDefinitionNotFound",
                message: format!("task definition {parsed} not found in namespace {ns}"),
            });
        };
        let status = td.status.clone().unwrap_or_default();
        crate::task_definition::pick(&parsed, &status, ns, in_use)
            .map(|revision| (parsed.family, revision))
    }

    /// The spec registered as `family:revision` in `ns`: read once, then kept (revisions are
    /// immutable).
    pub async fn registered_spec(
        &self,
        ctx: &Context,
        ns: &str,
        family: &str,
        revision: i64,
    ) -> Result<Option<Arc<TaskDefinitionSpec>>, Error> {
        let td_uid = self
            .task_definition(ns, family)
            .and_then(|td| td.uid())
            .unwrap_or_default();
        let key = (
            ns.to_string(),
            object_name(family, revision),
            td_uid.clone(),
        );
        if let Some(spec) = self.revisions.lock().expect("not poisoned").get(&key) {
            return Ok(Some(spec.clone()));
        }
        let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), ns);
        let Some(object) = api.get_opt(&key.1).await? else {
            return Ok(None);
        };
        let owner = object
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone());
        let data = object.data.map(|d| d.0).unwrap_or_default();
        let spec: TaskDefinitionSpec =
            serde_json::from_value(data["spec"].clone()).map_err(|source| Error::Decode {
                what: format!("revision {family}:{revision}"),
                source,
            })?;
        let spec = Arc::new(spec);
        // Kept only when it is known to belong to the family cached now.
        if !td_uid.is_empty() && owner.as_deref() == Some(td_uid.as_str()) {
            let mut revisions = self.revisions.lock().expect("not poisoned");
            revisions.retain(|(n, name, uid), _| !(n == ns && name == &key.1 && uid != &td_uid));
            revisions.insert(key, spec.clone());
        }
        Ok(Some(spec))
    }

    /// The operator's load balancer Services labelled with the service's name, as cached.
    pub fn lbs_of(&self, svc: &Service) -> Vec<KubeService> {
        let (ns, name) = (svc.namespace(), svc.name_any());
        self.lbs
            .state_filter(|s| s.namespace() == ns && s.labels().get(labels::SERVICE) == Some(&name))
            .into_iter()
            .map(|s| s.as_ref().clone())
            .collect()
    }
}

/// A cached load balancer Service trimmed to what decisions read.
pub fn trim_lb(svc: &mut KubeService) {
    crate::controller::trim::meta(&mut svc.metadata);
    svc.status = None;
}
