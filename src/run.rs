//! Wiring: the controllers for the watched namespaces, sharing one context, until shutdown.

use std::future::Future;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Node, Pod, Service as KubeService};
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client};
use tracing::{info, warn};

use crate::api::{Service, Task, TaskDefinition};
use crate::context::{Config, Context};
use crate::controller::decode::Decoded;
use crate::controller::watches;

/// Where the operator works and how.
#[derive(Clone, Default)]
pub struct Options {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    pub config: Config,
    /// Health, readiness and metrics state (served by [`crate::admin::serve`] when the caller wants).
    pub admin: Arc<crate::admin::Admin>,
}

/// Runs every controller until `shutdown` resolves, then returns once they have stopped.
pub async fn run(
    client: Client,
    options: Options,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let shutdown = shutdown.boxed().shared();

    // A watch failing for longer than this makes /healthz fail.
    options
        .admin
        .watches
        .set_limit(options.config.watch_failure_limit);

    // Nodes (zones, readiness), for every namespace's tasks and services.
    let (nodes, writer) = reflector::store();
    let node_api = Api::<Node>::all(client.clone());
    let node_watch = watches::watch(
        node_api.clone(),
        watcher::Config::default(),
        watches::name("nodes", &node_api),
        options.admin.clone(),
    )
    .modify(trim_node)
    .reflect(writer)
    .applied_objects()
    .for_each(|_| async {})
    .boxed();
    let node_watch = tokio::spawn(futures::future::select(node_watch, shutdown.clone()));
    let scopes: Vec<Option<String>> = if options.namespaces.is_empty() {
        vec![None]
    } else {
        options.namespaces.iter().cloned().map(Some).collect()
    };
    // One cache per controller per scope, plus the nodes.
    let caches = 3 * scopes.len() + 1;
    let ctx = Arc::new(Context::new(
        client.clone(),
        options.config.clone(),
        nodes.clone(),
        options.admin.clone(),
        caches,
    ));
    {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            crate::context::wait_synced(&nodes).await;
            ctx.nodes_listed();
            ctx.cache_synced();
        });
    }
    let mut controllers = Vec::new();
    for ns in scopes {
        // Our kinds decode each object on its own (one bad object must not stop the watch); the
        // children are watched as metadata only.
        let api = |client: &Client| match &ns {
            Some(ns) => (
                Api::<Decoded<TaskDefinition>>::namespaced(client.clone(), ns),
                Api::<PartialObjectMeta<ControllerRevision>>::namespaced(client.clone(), ns),
                Api::<Decoded<Task>>::namespaced(client.clone(), ns),
                Api::<Pod>::namespaced(client.clone(), ns),
                Api::<Decoded<Service>>::namespaced(client.clone(), ns),
                Api::<KubeService>::namespaced(client.clone(), ns),
            ),
            None => (
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
                Api::all(client.clone()),
            ),
        };
        let (task_definitions, revisions, tasks, pods, services, lbs) = api(&client);
        info!(
            namespace = ns.as_deref().unwrap_or("*"),
            "starting controllers"
        );
        controllers.push(tokio::spawn(crate::task_definition::run(
            task_definitions.clone(),
            revisions,
            ctx.clone(),
            shutdown.clone(),
        )));
        controllers.push(tokio::spawn(crate::task::run(
            tasks.clone(),
            pods,
            task_definitions.clone(),
            ctx.clone(),
            shutdown.clone(),
        )));
        controllers.push(tokio::spawn(crate::service::run(
            services,
            tasks,
            lbs,
            task_definitions,
            ctx.clone(),
            shutdown.clone(),
        )));
    }
    // After the stop signal, wait for the reconciles in flight, not for the controllers' streams: a
    // kube-runtime controller in graceful shutdown still drains its scheduled requeues (a task's start
    // timeout, a stopped task's retention: minutes to an hour). STOP_GRACE caps a stuck reconcile.
    let stopped = async {
        for c in controllers {
            let _ = c.await;
        }
        let _ = node_watch.await;
    };
    let drained = async {
        shutdown.clone().await;
        let until = tokio::time::Instant::now() + STOP_GRACE;
        while options.admin.metrics.reconciles_in_flight() > 0 {
            if tokio::time::Instant::now() >= until {
                warn!(grace = ?STOP_GRACE, "reconciles still running after the grace period; stopping anyway");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::select! {
        _ = stopped => {}
        _ = drained => info!("in-flight reconciles finished; stopping"),
    }
}

/// A cached node keeps what decisions read (labels, spec, conditions, allocatable): not its
/// managedFields, image list, volumes or system info, which make up most of a Node.
fn trim_node(node: &mut Node) {
    crate::controller::trim::meta(&mut node.metadata);
    if let Some(status) = node.status.as_mut() {
        status.images = None;
        status.node_info = None;
        status.volumes_attached = None;
        status.volumes_in_use = None;
    }
}

/// How long controllers get to finish in-flight work after the stop signal.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
