//! The frame every controller runs in, so that each controller's own file says only what it watches
//! and how those events map to its objects: the watch of its kind into its cache, the trigger
//! backoff, cache-synced signalling, the reconcile wrapper and error policy, graceful shutdown.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::decode::Decoded;
use super::{Kind, watches};
use crate::context::Context;
use crate::error::Error;

/// A controller of `K` being set up.
pub struct Frame<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    kind: Arc<Kind>,
    ctx: Arc<Context>,
    store: Store<Decoded<K>>,
    controller: Controller<Decoded<K>>,
}

impl<K> Frame<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    /// Watches `api` (the controller's own kind) into its cache.
    pub fn new(kind: Kind, api: Api<Decoded<K>>, ctx: Arc<Context>) -> Self {
        let (store, writer) = reflector::store();
        let watched = watches::watch(
            api.clone(),
            watcher::Config::default(),
            watches::name(kind.name, &api),
            ctx.admin.clone(),
        )
        .modify(super::trim::decoded)
        .reflect(writer)
        .applied_objects();
        let controller = Controller::for_stream(watched, store.clone())
            // Each watch retries on its own (`watches::RETRY`); kube's default here would pause every
            // trigger for up to a minute after errors such as the 410s that follow an API server
            // restart.
            .trigger_backoff(watches::Retry::new(format!("{} triggers", kind.name)));
        Self {
            kind: Arc::new(kind),
            ctx,
            store,
            controller,
        }
    }

    /// The cache of the controller's own kind.
    pub fn store(&self) -> Store<Decoded<K>> {
        self.store.clone()
    }

    /// A watch of `api` under this controller's name (health and metrics say whose watch failed).
    pub fn watch<C>(
        &self,
        api: &Api<C>,
        config: watcher::Config,
    ) -> impl Stream<Item = Result<watcher::Event<C>, watcher::Error>> + Send + 'static
    where
        C: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    {
        watches::watch(
            api.clone(),
            config,
            watches::name(self.kind.name, api),
            self.ctx.admin.clone(),
        )
    }

    /// Adds what else triggers a reconcile (owned objects, mapped watches).
    pub fn triggers(
        mut self,
        f: impl FnOnce(Controller<Decoded<K>>) -> Controller<Decoded<K>>,
    ) -> Self {
        self.controller = f(self.controller);
        self
    }

    /// Runs `reconcile` for every trigger until `shutdown` resolves. The operator counts this
    /// controller's caches as synced once its own kind is listed and `synced` (its other caches)
    /// has resolved.
    pub async fn run<F, Fut>(
        self,
        synced: impl Future<Output = ()> + Send + 'static,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
        reconcile: F,
    ) where
        F: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Action, Error>> + Send + 'static,
    {
        let Self {
            kind,
            ctx,
            store,
            controller,
        } = self;
        {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                crate::context::wait_synced(&store).await;
                synced.await;
                ctx.cache_synced();
            });
        }
        let reconcile = Arc::new(reconcile);
        let policy = kind.clone();
        let config = kube::runtime::controller::Config::default()
            .concurrency(ctx.config.concurrent_reconciles);
        controller
            .with_config(config)
            .graceful_shutdown_on(shutdown)
            .run(
                move |obj, ctx| {
                    let (kind, reconcile) = (kind.clone(), reconcile.clone());
                    // kube-runtime polls all of a controller's reconciles on the controller's own task,
                    // which also feeds its caches: spawned, they run on every core, and a long pass
                    // (a service planning over thousands of tasks) holds up neither the other
                    // reconciles nor the watch events behind it. A panic ends only this pass.
                    let pass = tokio::spawn(async move {
                        super::reconcile(obj, ctx, &kind, |k, c| (*reconcile)(k, c)).await
                    });
                    async move { pass.await.map_err(Error::from).and_then(|r| r) }
                },
                move |obj, error, ctx| super::error_policy(&policy, obj, error, ctx),
                ctx,
            )
            .for_each(|_| async {})
            .await;
    }
}
