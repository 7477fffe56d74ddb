//! What the three controllers share: watching with decode errors contained and watch health recorded,
//! per-object exponential backoff, and the reconcile wrapper.

pub mod backoff;
pub mod decode;
pub mod frame;
pub mod invalid;
pub mod slow_start;
pub mod trim;
pub mod version;
pub mod watches;

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use serde::de::DeserializeOwned;
use tracing::{debug, warn};

use crate::context::Context;
use crate::error::Error;
use backoff::Backoffs;
use decode::Decoded;

/// How long a reconcile that reads nodes waits for the node cache's first list before it requeues.
const NODES_WAIT: Duration = Duration::from_secs(2);

/// One controller's shared settings and state.
pub struct Kind {
    /// Bounded name for metrics and logs: `task`, `taskdefinition`, `service`.
    pub name: &'static str,
    /// Its reconciles read the node cache, so they wait until it is synced.
    pub reads_nodes: bool,
    /// Where its Events go.
    pub events: fn(&Context) -> &Recorder,
    pub backoffs: Backoffs,
}

impl Kind {
    pub fn new(name: &'static str, reads_nodes: bool, events: fn(&Context) -> &Recorder) -> Self {
        Self {
            name,
            reads_nodes,
            events,
            backoffs: Backoffs::default(),
        }
    }
}

fn key<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

/// One reconcile, as every controller runs it: counted and timed; an object that does not decode is
/// reported on itself instead; a controller that reads nodes waits for the node cache; a success
/// resets the object's backoff.
pub async fn reconcile<K, F, Fut>(
    obj: Arc<Decoded<K>>,
    ctx: Arc<Context>,
    kind: &Kind,
    f: F,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
    F: FnOnce(Arc<K>, Arc<Context>) -> Fut,
    Fut: Future<Output = Result<Action, Error>>,
{
    let work = async {
        match &obj.0 {
            Err(bad) => {
                invalid::report(&ctx.client, (kind.events)(&ctx), &obj, bad).await?;
                Ok(Action::await_change())
            }
            Ok(k) => {
                if kind.reads_nodes && !ctx.nodes_synced(NODES_WAIT).await {
                    debug!(controller = kind.name, object = %key(obj.as_ref()), "node cache not synced yet: requeued");
                    return Ok(Action::requeue(NODES_WAIT));
                }
                f(k.clone(), ctx.clone()).await
            }
        }
    };
    let result = ctx
        .admin
        .metrics
        .measure(kind.name, Error::category, work)
        .await;
    if result.is_ok() {
        kind.backoffs.succeeded(&key(obj.as_ref()));
    }
    result
}

/// The error policy of every controller: retry with the object's exponential backoff (an error's own
/// hint kept), and say why on the object with a Warning Event unless the error resolves by itself
/// (a conflict, throttling).
pub fn error_policy<K>(
    kind: &Kind,
    obj: Arc<Decoded<K>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action
where
    K: Resource<DynamicType = ()> + Clone + Debug + Send + Sync + 'static,
{
    let key = key(obj.as_ref());
    let delay = kind.backoffs.failed(&key, error.retry_hint());
    let failures = kind.backoffs.failures(&key);
    warn!(controller = kind.name, object = %key, category = error.category(), failures, retry_in = ?delay, %error, "reconcile failed");
    if !matches!(error.category(), "conflict" | "throttled") {
        let events = kind.events;
        let note = format!("{error} (retrying in {}s)", delay.as_secs().max(1));
        tokio::spawn(async move {
            crate::apply::event(
                events(&ctx),
                obj.as_ref(),
                true,
                "ReconcileError",
                &note,
                "Reconcile",
            )
            .await;
        });
    }
    Action::requeue(delay)
}

/// The decoded object, if it decoded (for mappers that look objects up in a store).
pub fn decoded<K>(obj: &Decoded<K>) -> Option<&K> {
    obj.0.as_ref().ok().map(|k| k.as_ref())
}
