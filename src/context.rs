//! What every reconcile shares: the client, settings, event recorders and caches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};

/// Operator settings (flags of `ecs-operator run`).
#[derive(Clone, Debug)]
pub struct Config {
    /// How long stopped standalone Tasks are kept before they are deleted (ECS: at least one hour).
    pub stopped_task_retention: Duration,
    /// Stopped tasks a service keeps (for `stopped_task_retention`) at most, when its desiredCount is
    /// lower: beyond max(desiredCount, this), the oldest are deleted first.
    pub stopped_service_tasks_kept: usize,
    /// How long a task may stay unplaced or not started before it stops with `TaskFailedToStart`.
    pub start_timeout: Duration,
    /// How long a service task without a health check must be RUNNING to count as healthy (ECS: 40 s).
    pub healthy_after_running: Duration,
    /// How long a watch may keep failing before `/healthz` fails (and the kubelet restarts us).
    pub watch_failure_limit: Duration,
    /// How long a minute of the deployment bake times lasts (`bakeTimeInMinutes`, canary and linear
    /// bake times): 60 s; shorter only to test deployments quickly.
    pub deployment_minute: Duration,
    /// Reconciles each controller runs at once at most (as kube-controller-manager's
    /// `--concurrent-*-syncs`): a thousand tasks arriving together wait their turn instead of each
    /// holding a reconcile in memory while it waits for the API server.
    pub concurrent_reconciles: u16,
}

/// The default of [`Config::concurrent_reconciles`]: well above what one connection to the API
/// server needs to stay busy (a reconcile mostly waits for one request), far below a reconcile per
/// task at a few thousand tasks.
pub const DEFAULT_CONCURRENT_RECONCILES: u16 = 64;

impl Default for Config {
    fn default() -> Self {
        Self {
            stopped_task_retention: Duration::from_secs(3600),
            stopped_service_tasks_kept: 100,
            start_timeout: Duration::from_secs(300),
            healthy_after_running: Duration::from_secs(40),
            watch_failure_limit: crate::health::DEFAULT_LIMIT,
            deployment_minute: Duration::from_secs(60),
            concurrent_reconciles: DEFAULT_CONCURRENT_RECONCILES,
        }
    }
}

/// Shared by every reconcile of every controller.
pub struct Context {
    pub client: Client,
    /// Health, readiness and metrics.
    pub admin: Arc<crate::admin::Admin>,
    /// Caches not yet synced; the operator is ready at zero.
    pending_caches: AtomicUsize,
    pub config: Config,
    /// Nodes: a task's availability zone, a service's zones and daemon nodes. Empty until its first
    /// list: read it only after [`Context::nodes_synced`].
    pub nodes: Store<Node>,
    nodes_listed: AtomicBool,
    pub task_definition_events: Recorder,
    pub task_events: Recorder,
    pub service_events: Recorder,
}

impl Context {
    pub fn new(
        client: Client,
        config: Config,
        nodes: Store<Node>,
        admin: Arc<crate::admin::Admin>,
        caches: usize,
    ) -> Self {
        let instance = std::env::var("POD_NAME").ok();
        let recorder = |controller: &str| {
            Recorder::new(
                client.clone(),
                Reporter {
                    controller: controller.to_string(),
                    instance: instance.clone(),
                },
            )
        };
        Self {
            task_definition_events: recorder("ecs-operator/taskdefinition"),
            task_events: recorder("ecs-operator/task"),
            service_events: recorder("ecs-operator/service"),
            client,
            config,
            nodes,
            nodes_listed: AtomicBool::new(false),
            admin,
            pending_caches: AtomicUsize::new(caches),
        }
    }

    /// Records that one more watch cache has synced; the operator is ready once all have.
    pub fn cache_synced(&self) {
        if self.pending_caches.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.admin.ready.store(true, Ordering::SeqCst);
            tracing::info!("caches synced: ready");
        }
    }

    /// Records that the node cache has its first full list.
    pub fn nodes_listed(&self) {
        self.nodes_listed.store(true, Ordering::SeqCst);
    }

    /// Whether the node cache holds its first full list, waiting for it at most `within`. Before it,
    /// an empty cache means "not known yet", not "no nodes": deciding from it would stop a DAEMON
    /// service's tasks or take a task's node for gone.
    pub async fn nodes_synced(&self, within: Duration) -> bool {
        if self.nodes_listed.load(Ordering::SeqCst) {
            return true;
        }
        tokio::time::timeout(within, wait_synced(&self.nodes))
            .await
            .is_ok()
    }

    /// Whether a node exists and can run tasks (Ready, schedulable, no NoSchedule/NoExecute taint).
    pub fn node_available(&self, node: &str) -> bool {
        self.nodes
            .get(&ObjectRef::new(node))
            .is_some_and(|n| crate::service::nodes::is_eligible(&n))
    }

    /// The zone of a node, from its `topology.kubernetes.io/zone` label.
    pub fn zone_of(&self, node: &str) -> Option<String> {
        let node = self.nodes.get(&ObjectRef::new(node))?;
        node.metadata
            .labels
            .as_ref()?
            .get(crate::placement::ZONE_LABEL)
            .cloned()
    }
}

/// Waits until a reflector store has its first full list. Re-polls instead of trusting one wakeup:
/// with kube-runtime 5.0, a waiter registered before the list completes was seen never to wake.
pub async fn wait_synced<K>(store: &Store<K>)
where
    K: kube::runtime::reflector::Lookup + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready()).await {
            Ok(Ok(())) => return,
            // The writer is gone: the controller stopped; never ready.
            Ok(Err(_)) => std::future::pending::<()>().await,
            Err(_) => {}
        }
    }
}
